//! What the engine hands back, with vLLM's names: a [`RequestOutput`] per request holding one
//! [`CompletionOutput`] per sample (`n`). Fields are cumulative; `delta_*` fields carry what is
//! new since the previous output of the same request, for streaming.

use ember_core::{PositionLogprobs, PromptLogprobs, StopReason, TokenId};

/// One generated sequence of a request.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionOutput {
    /// Which of the `n` samples this is.
    pub index: usize,
    /// Generated text so far (stop strings removed unless `include_stop_str_in_output`).
    pub text: String,
    /// Generated token ids so far.
    pub token_ids: Vec<TokenId>,
    /// Text added since the previous output of this request.
    pub delta_text: String,
    /// Token ids added since the previous output.
    pub delta_token_ids: Vec<TokenId>,
    /// Sum of the sampled tokens' logprobs (only when `logprobs` was requested).
    pub cumulative_logprob: Option<f64>,
    /// Per generated token: its logprob, rank and the top alternatives (when requested).
    pub logprobs: Option<Vec<PositionLogprobs>>,
    /// "stop", "length" or "abort" once finished.
    pub finish_reason: Option<&'static str>,
    /// The stop string or stop token id that ended generation (vLLM's `stop_reason`).
    pub stop_reason: Option<StopReason>,
}

impl CompletionOutput {
    /// Whether this sample has finished.
    pub fn finished(&self) -> bool {
        self.finish_reason.is_some()
    }
}

/// The state of one request after an engine step.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestOutput {
    /// The id given when the request was added.
    pub request_id: String,
    /// The prompt text, when the request was given as text.
    pub prompt: Option<String>,
    /// The prompt's token ids.
    pub prompt_token_ids: Vec<TokenId>,
    /// Logprobs of the prompt tokens (first position `None`), when requested.
    pub prompt_logprobs: Option<PromptLogprobs>,
    /// One entry per sample, by index.
    pub outputs: Vec<CompletionOutput>,
    /// All samples finished.
    pub finished: bool,
    /// Prompt tokens served from the prefix cache (or shared with a sibling sample).
    pub num_cached_tokens: usize,
}
