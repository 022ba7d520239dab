//! `/v1/completions`: the request (`prompt` as a string, a list of strings, token ids or a list
//! of token-id lists) and the response and stream-chunk shapes, with vLLM's `stop_reason` and
//! `prompt_logprobs` additions.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::common::{StreamOptions, Usage};
use crate::error::ApiError;
use crate::logprobs::{CompletionLogprobs, PromptLogprobsJson};

/// OpenAI's default `max_tokens` for completions (vLLM keeps it).
pub const DEFAULT_COMPLETION_MAX_TOKENS: usize = 16;

fn default_max_tokens() -> Option<i64> {
    Some(DEFAULT_COMPLETION_MAX_TOKENS as i64)
}

/// The endpoint's own fields; sampling fields are parsed separately
/// ([`crate::sampling::SamplingFields`]).
#[derive(Debug, Clone, Deserialize)]
pub struct CompletionRequest {
    /// Served model name (optional: the served model).
    #[serde(default)]
    pub model: Option<String>,
    /// The prompt(s); classified by [`parse_prompts`].
    pub prompt: Value,
    /// Text after the completion (fill-in-the-middle): rejected, not supported.
    #[serde(default)]
    pub suffix: Option<String>,
    /// Tokens to generate; 16 when absent, up to the context when `null`.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: Option<i64>,
    /// Prepend the prompt to each choice's text.
    #[serde(default)]
    pub echo: Option<bool>,
    /// Top logprobs per token (0-`--max-logprobs`).
    #[serde(default)]
    pub logprobs: Option<i64>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Usage reporting in streams.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// Tokenize text prompts with special tokens such as BOS (default true).
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
}

/// One prompt as the client gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptItem {
    /// Text, tokenized by the server.
    Text(String),
    /// Token ids, used as they are.
    Tokens(Vec<u32>),
}

/// Classifies `prompt`: a string, a list of strings, a list of token ids or a list of
/// token-id lists (never empty).
pub fn parse_prompts(prompt: &Value) -> Result<Vec<PromptItem>, ApiError> {
    fn bad<T>(m: &str) -> Result<T, ApiError> {
        Err(ApiError::field("prompt", m.to_string()))
    }
    match prompt {
        Value::String(s) => Ok(vec![PromptItem::Text(s.clone())]),
        Value::Array(items) if items.is_empty() => bad("prompt must not be an empty list"),
        Value::Array(items) => match &items[0] {
            Value::String(_) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(PromptItem::Text(s.clone())),
                    _ => bad("a list of prompts must hold only strings"),
                })
                .collect(),
            Value::Number(_) => Ok(vec![PromptItem::Tokens(token_ids(items)?)]),
            Value::Array(_) => items
                .iter()
                .map(|v| match v {
                    Value::Array(ids) if !ids.is_empty() => Ok(PromptItem::Tokens(token_ids(ids)?)),
                    Value::Array(_) => bad("a token-id prompt must not be empty"),
                    _ => bad("a list of token-id prompts must hold only lists of integers"),
                })
                .collect(),
            _ => bad("prompt must be a string, a list of strings, a list of token ids or a list of token-id lists"),
        },
        Value::Null => bad("prompt is required"),
        _ => bad("prompt must be a string, a list of strings, a list of token ids or a list of token-id lists"),
    }
}

fn token_ids(items: &[Value]) -> Result<Vec<u32>, ApiError> {
    items
        .iter()
        .map(|v| {
            v.as_u64().and_then(|id| u32::try_from(id).ok()).ok_or_else(|| {
                ApiError::field("prompt", format!("token ids must be non-negative integers, got {v}"))
            })
        })
        .collect()
}

/// One choice of a completion (or of a stream chunk, where `text` is the delta).
#[derive(Debug, Clone, Serialize)]
pub struct CompletionChoice {
    /// `prompt_index * n + sample index`.
    pub index: usize,
    /// The text (or its delta).
    pub text: String,
    /// Logprobs of the tokens in `text`.
    pub logprobs: Option<CompletionLogprobs>,
    /// `stop`, `length`, or null while running.
    pub finish_reason: Option<&'static str>,
    /// The stop string or token id that ended it (vLLM).
    pub stop_reason: Value,
    /// Logprobs of the prompt tokens (vLLM; only when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_logprobs: Option<PromptLogprobsJson>,
}

/// The response body (non-streaming) or one stream chunk.
#[derive(Debug, Clone, Serialize)]
pub struct CompletionResponse {
    /// `cmpl-…`, the same in every chunk of a stream.
    pub id: String,
    /// Always `text_completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model name.
    pub model: String,
    /// The choices.
    pub choices: Vec<CompletionChoice>,
    /// Token counts (null in stream chunks unless asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_prompt_form() {
        assert_eq!(parse_prompts(&json!("hi")).unwrap(), vec![PromptItem::Text("hi".into())]);
        assert_eq!(parse_prompts(&json!(["a", "b"])).unwrap().len(), 2);
        assert_eq!(parse_prompts(&json!([1, 2, 3])).unwrap(), vec![PromptItem::Tokens(vec![1, 2, 3])]);
        assert_eq!(parse_prompts(&json!([[1], [2, 3]])).unwrap().len(), 2);
        for bad in [json!([]), json!([[]]), json!([1, "a"]), json!(["a", 1]), json!([-1]), json!(3), json!(null), json!([{}])] {
            assert_eq!(parse_prompts(&bad).unwrap_err().param(), Some("prompt"), "{bad}");
        }
    }
}
