//! The plain data exchanged around one step: [`SchedulerOutput`] (scheduler -> model runner),
//! [`ModelRunnerOutput`] (model runner -> scheduler) and [`EngineCoreOutput`] (scheduler ->
//! engine, per request).

use std::sync::Arc;

use crate::ids::{BlockId, RequestId, TokenId};
use crate::kv_cache_manager::BlockCopy;
use crate::logprobs::{PromptLogprobs, SampleLogprobs};
use crate::request::{FinishReason, StopReason};
use crate::sampling_params::SamplingParams;

/// One request's share of a step.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledRequest {
    /// The request's id.
    pub request_id: RequestId,
    /// Position of the first scheduled token (= tokens whose K/V is already cached).
    pub num_computed_tokens: usize,
    /// The tokens to run: positions `num_computed_tokens..num_computed_tokens + len` of
    /// prompt ++ output.
    pub token_ids: Vec<TokenId>,
    /// Whether the last of `token_ids` is the token this request samples in the step still in
    /// flight (async scheduling): unknown when scheduled (0 in `token_ids`), the model runner
    /// takes it from that step's output on the device.
    pub input_token_pending: bool,
    /// The whole block table (covers at least `num_computed_tokens + token_ids.len()` positions).
    pub block_table: Vec<BlockId>,
    /// Whether this step reaches the end of the known tokens, so a new token is sampled from
    /// the last position's logits (false for intermediate prefill chunks).
    pub sample: bool,
    /// Prompt length (positions below it are prompt tokens).
    pub num_prompt_tokens: usize,
    /// The request's sampling parameters.
    pub sampling_params: Arc<SamplingParams>,
}

impl ScheduledRequest {
    /// Number of tokens scheduled for this request.
    pub fn num_scheduled_tokens(&self) -> usize {
        self.token_ids.len()
    }
}

/// Everything the model runner needs for one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SchedulerOutput {
    /// Scheduled requests in batch order: running requests first, then newly admitted ones.
    pub scheduled: Vec<ScheduledRequest>,
    /// Sum of `token_ids.len()` over `scheduled` (at most `max_num_batched_tokens`).
    pub total_num_scheduled_tokens: usize,
    /// Copy-on-write orders `(src, dst)`: copy each device K/V block before the forward pass.
    pub blocks_to_copy: Vec<BlockCopy>,
    /// Requests finished or aborted since the previous step (drop their per-request state).
    pub finished_req_ids: Vec<RequestId>,
    /// Requests preempted by this step (their blocks were freed; drop their cached state).
    pub preempted_req_ids: Vec<RequestId>,
}

impl SchedulerOutput {
    /// Whether nothing is to be run (the engine may skip the forward pass).
    pub fn is_empty(&self) -> bool {
        self.scheduled.is_empty()
    }
}

/// The model runner's result for one scheduled request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestRunnerOutput {
    /// The sampled token when the request had `sample == true`; ignored otherwise.
    pub sampled_token_id: Option<TokenId>,
    /// Logprobs of the sampled token, when the request asked for them.
    pub logprobs: Option<SampleLogprobs>,
    /// Logprobs of the prompt positions computed this step, when asked for.
    pub prompt_logprobs: Option<PromptLogprobs>,
}

/// The model runner's result for one step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelRunnerOutput {
    /// One entry per `SchedulerOutput::scheduled` entry, in the same order.
    pub outputs: Vec<RequestRunnerOutput>,
}

/// What one request produced in a step, for the engine's detokenizer and client streams.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineCoreOutput {
    /// The request's id.
    pub request_id: RequestId,
    /// Tokens generated this step (empty for an intermediate prefill chunk).
    pub new_token_ids: Vec<TokenId>,
    /// Set when the request finished this step.
    pub finish_reason: Option<FinishReason>,
    /// The stop token id that ended it, when one did (EOS is reported as `None`).
    pub stop_reason: Option<StopReason>,
    /// Logprobs of the new token.
    pub new_logprobs: Option<SampleLogprobs>,
    /// Prompt logprobs computed this step.
    pub new_prompt_logprobs: Option<PromptLogprobs>,
    /// Prompt tokens served from the prefix cache or a fork at first schedule.
    pub num_cached_tokens: usize,
}

impl EngineCoreOutput {
    /// Whether the request finished this step.
    pub fn finished(&self) -> bool {
        self.finish_reason.is_some()
    }
}
