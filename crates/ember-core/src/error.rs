//! The crate's single error type, [`CoreError`].
//!
//! Every variant names what was wrong (a field, a request id, a size) so that the server can
//! turn it into a precise HTTP 400 message without re-deriving context. Internal invariant
//! violations are not errors: they panic with a message, because they mean a bug in this crate.

use thiserror::Error;

/// Everything that can go wrong in `ember-core` because of a user request or a configuration.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// A sampling parameter is out of range. `field` is the parameter's (OpenAI/vLLM) name.
    #[error("invalid sampling parameter `{field}`: {reason}")]
    InvalidSamplingParams {
        /// The offending field, e.g. `"temperature"`.
        field: &'static str,
        /// What is wrong, including the value received.
        reason: String,
    },

    /// A scheduler or cache configuration value is out of range.
    #[error("invalid configuration `{field}`: {reason}")]
    InvalidConfig {
        /// The offending field, e.g. `"block_size"`.
        field: &'static str,
        /// What is wrong, including the value received.
        reason: String,
    },

    /// A request was submitted without any prompt token.
    #[error("request `{request_id}` has an empty prompt")]
    EmptyPrompt {
        /// The request's id.
        request_id: String,
    },

    /// The prompt leaves no room for a single generated token within the context window.
    #[error(
        "request `{request_id}`: the prompt has {num_prompt_tokens} tokens, but the model's \
         context length is {max_model_len} tokens (the prompt must be shorter to generate anything)"
    )]
    PromptTooLong {
        /// The request's id.
        request_id: String,
        /// Length of the prompt in tokens.
        num_prompt_tokens: usize,
        /// The model's context length in tokens.
        max_model_len: usize,
    },

    /// The request could need more KV-cache blocks than the whole pool holds, so it could never
    /// run to completion even alone.
    #[error(
        "request `{request_id}` may need {num_needed_blocks} KV-cache blocks but the pool only \
         has {num_total_blocks}"
    )]
    RequestTooLarge {
        /// The request's id.
        request_id: String,
        /// Worst-case number of blocks the request needs.
        num_needed_blocks: usize,
        /// Number of blocks in the pool.
        num_total_blocks: usize,
    },

    /// A request with this id is already known to the scheduler.
    #[error("a request with id `{request_id}` already exists")]
    DuplicateRequestId {
        /// The duplicated id.
        request_id: String,
    },
}
