//! Streaming `/v1/chat/completions` in OpenAI's shape: for each choice a first chunk with
//! `delta: {"role": "assistant", "content": ""}`, then content deltas, the choice's last chunk
//! carrying `finish_reason` (and vLLM's `stop_reason`), then the usage-only chunk (empty
//! `choices`) when `stream_options.include_usage` is set.

use ember_engine::RequestOutput;

use super::chat::ChatContext;
use crate::logprobs::{ChatLogprobs, tail};
use crate::protocol::chat::{ChatChunk, ChatChunkChoice, Delta};
use crate::protocol::common::{Usage, stop_reason_json};
use crate::streaming::ChunkBuilder;

/// The chat [`ChunkBuilder`].
pub struct ChatChunks {
    ctx: ChatContext,
    finished: Vec<bool>,
    tokens: Vec<usize>,
}

impl ChatChunks {
    /// A builder for the request described by `ctx`.
    pub fn new(ctx: ChatContext) -> Self {
        let n = ctx.n;
        Self { ctx, finished: vec![false; n], tokens: vec![0; n] }
    }

    fn chunk(&self, choices: Vec<ChatChunkChoice>, usage: Option<Usage>) -> String {
        let chunk = ChatChunk {
            id: self.ctx.id.clone(),
            object: "chat.completion.chunk",
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices,
            usage: self.ctx.usage_mode.include.then_some(usage),
        };
        serde_json::to_string(&chunk).unwrap_or_default()
    }

    fn usage(&self, completion_tokens: usize) -> Option<Usage> {
        self.ctx.usage_mode.continuous.then(|| Usage::new(self.ctx.prompt_tokens, completion_tokens))
    }
}

impl ChunkBuilder for ChatChunks {
    fn start(&mut self) -> Vec<String> {
        let mut events = Vec::new();
        for index in 0..self.ctx.n {
            let delta = Delta { role: Some(self.ctx.role.clone()), content: Some(String::new()) };
            let choice = ChatChunkChoice { index, delta, logprobs: None, finish_reason: None, stop_reason: None };
            events.push(self.chunk(vec![choice], self.usage(0)));
        }
        if let Some(prefix) = self.ctx.echo_prefix.clone().filter(|p| !p.is_empty()) {
            for index in 0..self.ctx.n {
                let delta = Delta { role: None, content: Some(prefix.clone()) };
                let choice = ChatChunkChoice { index, delta, logprobs: None, finish_reason: None, stop_reason: None };
                events.push(self.chunk(vec![choice], self.usage(0)));
            }
        }
        events
    }

    fn on_output(&mut self, _prompt_index: usize, out: &RequestOutput) -> Vec<String> {
        let mut events = Vec::new();
        for c in &out.outputs {
            let i = c.index;
            if self.finished.get(i).copied().unwrap_or(true) {
                continue;
            }
            if c.delta_text.is_empty() && c.delta_token_ids.is_empty() && c.finish_reason.is_none() {
                continue;
            }
            let logprobs = self.ctx.top_logprobs.map(|k| {
                let mut lp = ChatLogprobs::default();
                lp.extend(tail(c.logprobs.as_ref(), c.delta_token_ids.len()), k, self.ctx.renderer());
                lp
            });
            self.tokens[i] += c.delta_token_ids.len();
            let finished = c.finish_reason.is_some();
            self.finished[i] = finished;
            let content = (!c.delta_text.is_empty() || !finished).then(|| c.delta_text.clone());
            let choice = ChatChunkChoice {
                index: i,
                delta: Delta { role: None, content },
                logprobs,
                finish_reason: c.finish_reason,
                stop_reason: finished.then(|| stop_reason_json(c.stop_reason.as_ref())),
            };
            events.push(self.chunk(vec![choice], self.usage(self.tokens[i])));
        }
        events
    }

    fn finish(&mut self) -> Vec<String> {
        if !self.ctx.usage_mode.include {
            return Vec::new();
        }
        let usage = Usage::new(self.ctx.prompt_tokens, self.tokens.iter().sum());
        let chunk = ChatChunk {
            id: self.ctx.id.clone(),
            object: "chat.completion.chunk",
            created: self.ctx.created,
            model: self.ctx.model.clone(),
            choices: Vec::new(),
            usage: Some(Some(usage)),
        };
        vec![serde_json::to_string(&chunk).unwrap_or_default()]
    }
}
