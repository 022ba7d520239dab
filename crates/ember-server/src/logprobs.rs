//! The engine's per-position logprobs ([`PositionLogprobs`]) rendered in the three shapes
//! clients expect: the completions API's parallel lists (`tokens`, `token_logprobs`,
//! `top_logprobs`, `text_offset`), the chat API's `content` list with `bytes`, and vLLM's
//! `prompt_logprobs` (token id -> logprob, rank, decoded token).
//!
//! Tokens are decoded one by one (special tokens kept), or rendered as `token_id:N` when the
//! request asks for `return_tokens_as_token_ids`. `-inf` becomes -9999.0 (JSON has no infinity),
//! as in vLLM.

use ember_engine::{Logprob, PositionLogprobs, RequestOutput, TokenId, Tokenizer};
use serde::Serialize;
use serde_json::{Map, Value};

/// Logprobs are clamped here (vLLM's floor) so that JSON never sees `-inf`.
const FLOOR: f32 = -9999.0;

/// How logprob tokens are rendered.
#[derive(Clone, Copy)]
pub struct TokenRenderer<'a> {
    /// The model's tokenizer.
    pub tokenizer: &'a Tokenizer,
    /// Render `token_id:N` instead of the token's text.
    pub as_ids: bool,
}

impl TokenRenderer<'_> {
    /// The text of one token.
    pub fn render(&self, id: TokenId) -> String {
        if self.as_ids {
            return format!("token_id:{id}");
        }
        self.tokenizer.decode(&[id], false).unwrap_or_default()
    }
}

/// An f32 as a JSON number with the f32's shortest decimal form (as serde writes a bare
/// `f32`), so the same logprob reads the same in `token_logprobs` and `top_logprobs`.
fn f32_json(x: f32) -> Value {
    x.to_string().parse::<f64>().map(Value::from).unwrap_or(Value::Null)
}

fn clamp(lp: f32) -> f32 {
    if lp.is_nan() { FLOOR } else { lp.max(FLOOR) }
}

/// The completions API's logprobs object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompletionLogprobs {
    /// Character offset of each token in the choice's text.
    pub text_offset: Vec<usize>,
    /// The chosen token's logprob (null for the first prompt token when echoing).
    pub token_logprobs: Vec<Option<f32>>,
    /// The chosen tokens.
    pub tokens: Vec<String>,
    /// Per position: token -> logprob of the top alternatives and the chosen token.
    pub top_logprobs: Vec<Option<Map<String, Value>>>,
}

impl CompletionLogprobs {
    /// Appends positions: each a token id and its logprobs (`None` for the first prompt token,
    /// which has no distribution). `k` alternatives are kept per position.
    pub fn extend(&mut self, entries: &[(TokenId, Option<&PositionLogprobs>)], k: usize, r: TokenRenderer<'_>, offset: &mut usize) {
        for (id, lp) in entries {
            let token = r.render(*id);
            self.text_offset.push(*offset);
            *offset += token.chars().count();
            match lp {
                None => {
                    self.token_logprobs.push(None);
                    self.top_logprobs.push(None);
                }
                Some(lp) => {
                    self.token_logprobs.push(Some(clamp(lp.token.logprob)));
                    let mut top = Map::new();
                    for alt in lp.top.iter().take(k) {
                        top.insert(r.render(alt.token_id), f32_json(clamp(alt.logprob)));
                    }
                    top.entry(token.clone()).or_insert_with(|| f32_json(clamp(lp.token.logprob)));
                    self.top_logprobs.push(Some(top));
                }
            }
            self.tokens.push(token);
        }
    }
}

/// The prompt's positions as `extend` entries (for `echo`): each prompt token with its
/// logprobs (`None` for the first token, or when prompt logprobs were not computed).
pub fn prompt_entries(out: &RequestOutput) -> Vec<(TokenId, Option<&PositionLogprobs>)> {
    let prompt_lps = out.prompt_logprobs.as_deref().unwrap_or(&[]);
    out.prompt_token_ids.iter().enumerate().map(|(i, &id)| (id, prompt_lps.get(i).and_then(Option::as_ref))).collect()
}

/// One token of the chat API's logprobs.
#[derive(Debug, Clone, Serialize)]
pub struct ChatTokenLogprob {
    /// The token's text.
    pub token: String,
    /// Its logprob.
    pub logprob: f32,
    /// Its UTF-8 bytes.
    pub bytes: Vec<u8>,
    /// The `top_logprobs` most likely alternatives (empty for the alternatives themselves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_logprobs: Option<Vec<ChatTokenLogprob>>,
}

/// The chat API's logprobs object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChatLogprobs {
    /// One entry per generated token.
    pub content: Vec<ChatTokenLogprob>,
}

impl ChatLogprobs {
    /// Appends generated positions, `k` alternatives each.
    pub fn extend(&mut self, positions: &[PositionLogprobs], k: usize, r: TokenRenderer<'_>) {
        let entry = |lp: &Logprob, top: Option<Vec<ChatTokenLogprob>>| {
            let token = r.render(lp.token_id);
            ChatTokenLogprob { bytes: token.as_bytes().to_vec(), token, logprob: clamp(lp.logprob), top_logprobs: top }
        };
        for pos in positions {
            let top = pos.top.iter().take(k).map(|alt| entry(alt, None)).collect();
            self.content.push(entry(&pos.token, Some(top)));
        }
    }
}

/// vLLM's `prompt_logprobs`: per prompt position null (the first) or token id -> details.
pub type PromptLogprobsJson = Vec<Option<Map<String, Value>>>;

/// Renders prompt logprobs, `k` alternatives per position plus the prompt token itself.
pub fn prompt_logprobs_json(positions: &[Option<PositionLogprobs>], k: usize, r: TokenRenderer<'_>) -> PromptLogprobsJson {
    let detail = |lp: &Logprob| {
        serde_json::json!({"logprob": clamp(lp.logprob), "rank": lp.rank, "decoded_token": r.render(lp.token_id)})
    };
    positions
        .iter()
        .map(|pos| {
            pos.as_ref().map(|pos| {
                let mut map = Map::new();
                map.insert(pos.token.token_id.to_string(), detail(&pos.token));
                for alt in pos.top.iter().take(k) {
                    map.entry(alt.token_id.to_string()).or_insert_with(|| detail(alt));
                }
                map
            })
        })
        .collect()
}

/// The logprobs of the last `count` positions of a cumulative list (a stream delta).
pub fn tail(all: Option<&Vec<PositionLogprobs>>, count: usize) -> &[PositionLogprobs] {
    match all {
        Some(all) => &all[all.len().saturating_sub(count)..],
        None => &[],
    }
}
