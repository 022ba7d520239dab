//! The coupling between handlers and the engine: prompt checks against the context length
//! and vocabulary, submission of one engine request per prompt (each with its own output
//! channel), and reading them back, either to the end (non-streaming) or merged into one
//! stream of `(prompt index, output)` (streaming).
//!
//! Dropping a [`Generation`] (the client went away, a sibling prompt failed, the handler was
//! cancelled) drops its [`RequestStream`], which aborts the request and frees its KV blocks.

use std::pin::Pin;

use ember_engine::{AsyncEngine, EngineInfo, PromptInput, RequestOutput, RequestStream, SamplingParams, StreamItem};
use futures_util::stream::{self, Stream};

use crate::error::ApiError;
use crate::metrics::{Metrics, RequestTimer};

/// One engine request (one prompt, `n` choices) being generated.
pub struct Generation {
    /// Position of the prompt in the request.
    pub prompt_index: usize,
    stream: RequestStream,
    timer: RequestTimer,
}

impl Generation {
    /// The next output, or `None` once finished.
    pub async fn next(&mut self) -> Option<StreamItem> {
        let item = self.stream.next().await;
        match &item {
            Some(Ok(out)) => self.timer.observe(out),
            Some(Err(_)) => self.timer.discard(),
            None => {}
        }
        item
    }

    /// Waits for the final output.
    pub async fn finish(mut self) -> Result<RequestOutput, ApiError> {
        let mut last = None;
        while let Some(item) = self.next().await {
            last = Some(item?);
        }
        match last {
            Some(out) if out.finished => Ok(out),
            _ => Err(ApiError::Internal("the engine stopped before the request finished".into())),
        }
    }
}

/// Checks a tokenized prompt and resolves `max_tokens`: an explicit value that does not fit
/// in the context is a 400 (as in vLLM); a default is capped to what fits.
pub fn check_prompt(ids: &[u32], info: &EngineInfo, requested: Option<usize>, default: Option<usize>) -> Result<usize, ApiError> {
    if ids.is_empty() {
        return Err(ApiError::field("prompt", "the prompt is empty (no tokens)"));
    }
    if let Some(bad) = ids.iter().find(|&&t| t as usize >= info.vocab_size) {
        return Err(ApiError::field("prompt", format!("token id {bad} is out of vocabulary (size {})", info.vocab_size)));
    }
    let max_len = info.max_model_len;
    if ids.len() >= max_len {
        return Err(ApiError::BadRequest(format!(
            "This model's maximum context length is {max_len} tokens. However, your request has {} input tokens. \
             Please reduce the length of the input.",
            ids.len()
        )));
    }
    let room = max_len - ids.len();
    match requested {
        Some(0) => Err(ApiError::field("max_tokens", "max_tokens must be at least 1")),
        Some(n) if n > room => Err(ApiError::BadRequest(format!(
            "This model's maximum context length is {max_len} tokens. However, you requested {} tokens ({} in the \
             input, {n} in the completion). Please reduce the length of the input or completion.",
            ids.len() + n,
            ids.len()
        ))),
        Some(n) => Ok(n),
        None => Ok(default.map_or(room, |d| d.min(room))),
    }
}

/// Converts a JSON `max_tokens` (which may be negative or zero) into a count.
pub fn max_tokens_field(name: &str, value: Option<i64>) -> Result<Option<usize>, ApiError> {
    match value {
        None => Ok(None),
        Some(v) if v < 1 => Err(ApiError::field(name, format!("{name} must be at least 1, got {v}"))),
        Some(v) => Ok(Some(v as usize)),
    }
}

/// Submits one engine request per prompt; ids are `{request_id}-{i}`.
pub fn submit(engine: &AsyncEngine, metrics: &Metrics, request_id: &str, prompts: Vec<(Vec<u32>, SamplingParams)>) -> Vec<Generation> {
    prompts
        .into_iter()
        .enumerate()
        .map(|(i, (ids, params))| Generation {
            prompt_index: i,
            stream: engine.generate(format!("{request_id}-{i}"), PromptInput::Tokens(ids), params),
            timer: metrics.start_request(),
        })
        .collect()
}

/// Runs every generation to its end, concurrently; the first error aborts the rest.
pub async fn finish_all(generations: Vec<Generation>) -> Result<Vec<RequestOutput>, ApiError> {
    futures_util::future::try_join_all(generations.into_iter().map(Generation::finish)).await
}

/// A boxed stream of `(prompt index, output)`.
pub type MergedStream = Pin<Box<dyn Stream<Item = (usize, StreamItem)> + Send>>;

/// Merges generations into one stream, outputs in arrival order.
pub fn merge(generations: Vec<Generation>) -> MergedStream {
    let streams = generations.into_iter().map(|g| {
        Box::pin(stream::unfold(g, |mut g| async move {
            let item = g.next().await?;
            Some(((g.prompt_index, item), g))
        }))
    });
    Box::pin(stream::select_all(streams))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> EngineInfo {
        EngineInfo {
            task: ember_engine::Task::Generate,
            backend: "cpu".into(),
            dtype: "f32".into(),
            num_blocks: 8,
            block_size: 16,
            max_model_len: 10,
            vocab_size: 100,
            kv_cache_bytes: 0,
            max_num_seqs: 256,
            max_num_batched_tokens: 2048,
            embedding: None,
        }
    }

    #[test]
    fn prompt_and_max_tokens_checks() {
        assert_eq!(check_prompt(&[1, 2], &info(), None, None).unwrap(), 8);
        assert_eq!(check_prompt(&[1, 2], &info(), None, Some(16)).unwrap(), 8);
        assert_eq!(check_prompt(&[1, 2], &info(), None, Some(3)).unwrap(), 3);
        assert_eq!(check_prompt(&[1, 2], &info(), Some(8), None).unwrap(), 8);
        assert!(check_prompt(&[1, 2], &info(), Some(9), None).unwrap_err().to_string().contains("maximum context length"));
        assert!(check_prompt(&[1; 10], &info(), None, None).unwrap_err().to_string().contains("10 input tokens"));
        assert_eq!(check_prompt(&[100], &info(), None, None).unwrap_err().param(), Some("prompt"));
        assert_eq!(check_prompt(&[], &info(), None, None).unwrap_err().param(), Some("prompt"));
        assert_eq!(max_tokens_field("max_tokens", Some(-1)).unwrap_err().param(), Some("max_tokens"));
    }
}
