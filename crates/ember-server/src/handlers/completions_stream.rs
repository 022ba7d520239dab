//! Streaming `/v1/completions`: one `text_completion` chunk per choice that changed, text
//! deltas only (the prompt first when echoing), the finishing chunk carrying `finish_reason`
//! and `stop_reason`, and the usage-only chunk when `stream_options.include_usage` is set.
//! Concatenating a choice's deltas gives exactly the non-streamed text.

use ember_engine::RequestOutput;

use super::completions::CompletionContext;
use crate::logprobs::{CompletionLogprobs, prompt_entries, tail};
use crate::protocol::common::{Usage, stop_reason_json};
use crate::protocol::completion::{CompletionChoice, CompletionResponse};
use crate::streaming::ChunkBuilder;

/// Stream state of one choice.
#[derive(Default, Clone)]
struct ChoiceState {
    started: bool,
    finished: bool,
    tokens: usize,
    text_offset: usize,
}

/// The completions [`ChunkBuilder`].
pub struct CompletionChunks {
    ctx: CompletionContext,
    choices: Vec<ChoiceState>,
}

impl CompletionChunks {
    /// A builder for the request described by `ctx`.
    pub fn new(ctx: CompletionContext) -> Self {
        let choices = vec![ChoiceState::default(); ctx.prompts.len() * ctx.n];
        Self { ctx, choices }
    }

    fn chunk(&self, choice: CompletionChoice, usage: Option<Usage>) -> String {
        let response = CompletionResponse {
            id: self.ctx.id.clone(),
            object: "text_completion",
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices: vec![choice],
            usage: self.ctx.usage_mode.include.then_some(usage),
        };
        serde_json::to_string(&response).unwrap_or_default()
    }
}

impl ChunkBuilder for CompletionChunks {
    fn on_output(&mut self, prompt_index: usize, out: &RequestOutput) -> Vec<String> {
        let mut events = Vec::new();
        let prompt_tokens = out.prompt_token_ids.len();
        for c in &out.outputs {
            let index = prompt_index * self.ctx.n + c.index;
            let Some(state) = self.choices.get(index).cloned() else { continue };
            if state.finished || (c.delta_text.is_empty() && c.delta_token_ids.is_empty() && c.finish_reason.is_none()) {
                continue;
            }
            let mut state = state;
            let mut text = String::new();
            let mut logprobs = self.ctx.logprobs.map(|_| CompletionLogprobs::default());
            if !state.started && self.ctx.echo {
                text.push_str(self.ctx.prompts.get(prompt_index).map(|p| p.0.as_str()).unwrap_or(""));
                if let (Some(lp), Some(k)) = (logprobs.as_mut(), self.ctx.logprobs) {
                    lp.extend(&prompt_entries(out), k, self.ctx.renderer(), &mut state.text_offset);
                }
            }
            text.push_str(&c.delta_text);
            if let (Some(lp), Some(k)) = (logprobs.as_mut(), self.ctx.logprobs) {
                let new = tail(c.logprobs.as_ref(), c.delta_token_ids.len());
                let entries: Vec<_> = new.iter().map(|p| (p.token.token_id, Some(p))).collect();
                lp.extend(&entries, k, self.ctx.renderer(), &mut state.text_offset);
            }
            state.started = true;
            state.tokens += c.delta_token_ids.len();
            state.finished = c.finish_reason.is_some();
            let choice = CompletionChoice {
                index,
                text,
                logprobs,
                finish_reason: c.finish_reason,
                stop_reason: stop_reason_json(c.stop_reason.as_ref()),
                prompt_logprobs: None,
            };
            let usage = self.ctx.usage_mode.continuous.then(|| Usage::new(prompt_tokens, state.tokens));
            self.choices[index] = state;
            events.push(self.chunk(choice, usage));
        }
        events
    }

    fn finish(&mut self) -> Vec<String> {
        if !self.ctx.usage_mode.include {
            return Vec::new();
        }
        let prompt_tokens = self.ctx.prompts.iter().map(|p| p.1).sum();
        let completion_tokens = self.choices.iter().map(|c| c.tokens).sum();
        let response = CompletionResponse {
            id: self.ctx.id.clone(),
            object: "text_completion",
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices: Vec::new(),
            usage: Some(Some(Usage::new(prompt_tokens, completion_tokens))),
        };
        vec![serde_json::to_string(&response).unwrap_or_default()]
    }
}
