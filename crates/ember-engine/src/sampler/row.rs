//! One row of the sampling batch as the host describes it: the request's parameters, the token
//! history penalties need, and the uniform number its generator drew for this step.

use ember_core::{SamplingParams, TokenId};

/// Host-side inputs for one sampled row.
#[derive(Debug, Clone)]
pub(crate) struct SamplingRow<'a> {
    /// The request's sampling parameters.
    pub params: &'a SamplingParams,
    /// Prompt tokens (repetition penalty).
    pub prompt: &'a [TokenId],
    /// Generated tokens so far (all penalties, min_tokens).
    pub output: &'a [TokenId],
    /// End-of-sequence ids masked while `min_tokens` is not reached (empty with `ignore_eos`).
    pub eos_token_ids: &'a [TokenId],
    /// Uniform number in (0, 1) from the request's generator (unused by greedy rows).
    pub uniform: f32,
}
