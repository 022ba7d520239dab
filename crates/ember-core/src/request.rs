//! [`Request`]: the scheduler's view of one sequence, plus its status and finish reasons.
//!
//! A request owns its prompt and generated token ids, how many of them have K/V in the cache
//! (`num_computed_tokens`), and the chained hashes of its full blocks (extended incrementally
//! as tokens are appended; used for prefix-cache lookups). The scheduler is the only writer of
//! its state; the engine reads it.
//!
//! Invariants: `num_computed_tokens <= num_tokens()`; `block_hashes.len() ==
//! num_tokens() / block_size` after every [`Request::update_block_hashes`] call.

use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::block_hash::{BlockHash, hash_block_tokens};
use crate::ids::{RequestId, TokenId};
use crate::sampling_params::SamplingParams;

/// Where a request is in its life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestStatus {
    /// Queued, never scheduled.
    Waiting,
    /// Holds KV-cache blocks and is scheduled every step it has tokens to compute.
    Running,
    /// Was preempted (blocks freed, `num_computed_tokens = 0`); waiting to be recomputed.
    Preempted,
    /// Finished by EOS, a stop token id or a stop string.
    FinishedStopped,
    /// Finished by `max_tokens` or the context length.
    FinishedLength,
    /// Finished by an abort (client cancellation, error).
    FinishedAborted,
}

impl RequestStatus {
    /// Whether this is one of the three finished states.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            Self::FinishedStopped | Self::FinishedLength | Self::FinishedAborted
        )
    }

    /// The OpenAI finish reason of a finished state; `None` for unfinished ones.
    pub fn finish_reason(self) -> Option<FinishReason> {
        match self {
            Self::FinishedStopped => Some(FinishReason::Stop),
            Self::FinishedLength => Some(FinishReason::Length),
            Self::FinishedAborted => Some(FinishReason::Abort),
            Self::Waiting | Self::Running | Self::Preempted => None,
        }
    }
}

/// Why a request finished, as reported to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FinishReason {
    /// EOS, a stop token id or a stop string.
    Stop,
    /// `max_tokens` or the context length was reached.
    Length,
    /// The request was aborted.
    Abort,
}

impl FinishReason {
    /// The OpenAI string: `"stop"`, `"length"` or `"abort"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stop => "stop",
            Self::Length => "length",
            Self::Abort => "abort",
        }
    }

    /// The finished [`RequestStatus`] this reason maps to.
    pub fn status(self) -> RequestStatus {
        match self {
            Self::Stop => RequestStatus::FinishedStopped,
            Self::Length => RequestStatus::FinishedLength,
            Self::Abort => RequestStatus::FinishedAborted,
        }
    }
}

/// What matched when a request stopped with [`FinishReason::Stop`] (vLLM's `stop_reason`);
/// EOS is reported as no stop reason.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum StopReason {
    /// One of `stop_token_ids`.
    TokenId(TokenId),
    /// One of the `stop` strings (set by the engine).
    Str(String),
}

/// One sequence as the scheduler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) request_id: RequestId,
    pub(crate) prompt_token_ids: Vec<TokenId>,
    pub(crate) output_token_ids: Vec<TokenId>,
    pub(crate) sampling_params: Arc<SamplingParams>,
    pub(crate) eos_token_ids: Vec<TokenId>,
    pub(crate) status: RequestStatus,
    pub(crate) num_computed_tokens: usize,
    /// Tokens scheduled in steps whose outputs are not applied yet (with async scheduling, the
    /// step in flight while the next one is scheduled; 0 between steps otherwise).
    pub(crate) num_in_flight_tokens: usize,
    /// Tokens those steps sample, not yet appended to the output (0 or 1).
    pub(crate) num_pending_output_tokens: usize,
    pub(crate) num_cached_tokens: Option<usize>,
    pub(crate) num_preemptions: usize,
    pub(crate) arrival_index: u64,
    pub(crate) block_hashes: Vec<BlockHash>,
    pub(crate) fork_of: Option<RequestId>,
    pub(crate) max_tokens: usize,
    pub(crate) stop_reason: Option<StopReason>,
}

impl Request {
    /// A new waiting request. `eos_token_ids` are the model's end-of-sequence ids (set by the
    /// engine from the model/tokenizer config). `max_tokens` is resolved against the context
    /// length when the scheduler accepts the request.
    pub fn new(
        request_id: impl Into<RequestId>,
        prompt_token_ids: Vec<TokenId>,
        sampling_params: Arc<SamplingParams>,
        eos_token_ids: Vec<TokenId>,
    ) -> Self {
        let max_tokens = sampling_params.max_tokens.unwrap_or(usize::MAX);
        Self {
            request_id: request_id.into(),
            prompt_token_ids,
            output_token_ids: Vec::new(),
            sampling_params,
            eos_token_ids,
            status: RequestStatus::Waiting,
            num_computed_tokens: 0,
            num_in_flight_tokens: 0,
            num_pending_output_tokens: 0,
            num_cached_tokens: None,
            num_preemptions: 0,
            arrival_index: 0,
            block_hashes: Vec::new(),
            fork_of: None,
            max_tokens,
            stop_reason: None,
        }
    }

    /// Marks this request as a fork child of `leader` (see [`crate::fan_out`]): it waits until
    /// the leader has computed its prompt, then shares the leader's prompt blocks.
    pub fn with_fork_of(mut self, leader: impl Into<RequestId>) -> Self {
        self.fork_of = Some(leader.into());
        self
    }

    /// The request's id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// Prompt token ids.
    pub fn prompt_token_ids(&self) -> &[TokenId] {
        &self.prompt_token_ids
    }

    /// Generated token ids so far.
    pub fn output_token_ids(&self) -> &[TokenId] {
        &self.output_token_ids
    }

    /// Prompt then output token ids, without copying.
    pub fn all_token_ids(&self) -> impl Iterator<Item = TokenId> + '_ {
        self.prompt_token_ids
            .iter()
            .chain(&self.output_token_ids)
            .copied()
    }

    /// The token at `position` in prompt ++ output, if any.
    pub fn token_id(&self, position: usize) -> Option<TokenId> {
        let num_prompt = self.prompt_token_ids.len();
        if position < num_prompt {
            Some(self.prompt_token_ids[position])
        } else {
            self.output_token_ids.get(position - num_prompt).copied()
        }
    }

    /// Copies the tokens at `positions` of prompt ++ output. Panics if out of range.
    pub fn token_ids_in(&self, positions: Range<usize>) -> Vec<TokenId> {
        assert!(
            positions.end <= self.num_tokens(),
            "token range past the sequence end"
        );
        let num_prompt = self.prompt_token_ids.len();
        let mut out = Vec::with_capacity(positions.len());
        if positions.start < num_prompt {
            out.extend_from_slice(
                &self.prompt_token_ids[positions.start..positions.end.min(num_prompt)],
            );
        }
        if positions.end > num_prompt {
            let from = positions.start.max(num_prompt) - num_prompt;
            out.extend_from_slice(&self.output_token_ids[from..positions.end - num_prompt]);
        }
        out
    }

    /// The sampling parameters.
    pub fn sampling_params(&self) -> &Arc<SamplingParams> {
        &self.sampling_params
    }

    /// The model's end-of-sequence token ids.
    pub fn eos_token_ids(&self) -> &[TokenId] {
        &self.eos_token_ids
    }

    /// Current status.
    pub fn status(&self) -> RequestStatus {
        self.status
    }

    /// Prompt plus output length.
    pub fn num_tokens(&self) -> usize {
        self.prompt_token_ids.len() + self.output_token_ids.len()
    }

    /// Prompt length.
    pub fn num_prompt_tokens(&self) -> usize {
        self.prompt_token_ids.len()
    }

    /// Number of generated tokens.
    pub fn num_output_tokens(&self) -> usize {
        self.output_token_ids.len()
    }

    /// Number of leading tokens whose K/V is in the cache.
    pub fn num_computed_tokens(&self) -> usize {
        self.num_computed_tokens
    }

    /// Where the next step starts: positions computed, or being computed by a step in flight.
    pub fn num_scheduled_through(&self) -> usize {
        self.num_computed_tokens + self.num_in_flight_tokens
    }

    /// Prompt plus output length, counting the tokens a step in flight samples.
    pub fn num_tokens_with_pending(&self) -> usize {
        self.num_tokens() + self.num_pending_output_tokens
    }

    /// Whether the tokens a step in flight samples will finish this request by length, so
    /// that scheduling it again would only compute a token to be dropped.
    pub(crate) fn finishes_when_pending_applied(&self, max_model_len: usize) -> bool {
        self.num_pending_output_tokens > 0
            && (self.num_output_tokens() + self.num_pending_output_tokens >= self.max_tokens
                || self.num_tokens_with_pending() >= max_model_len)
    }

    /// Prompt tokens not computed at first schedule (prefix-cache hit or fork); `None` before
    /// the request was first scheduled.
    pub fn num_cached_tokens(&self) -> Option<usize> {
        self.num_cached_tokens
    }

    /// How many times the request was preempted.
    pub fn num_preemptions(&self) -> usize {
        self.num_preemptions
    }

    /// Order in which the scheduler accepted the request (0 for the first).
    pub fn arrival_index(&self) -> u64 {
        self.arrival_index
    }

    /// Chained hashes of the request's full blocks, in order.
    pub fn block_hashes(&self) -> &[BlockHash] {
        &self.block_hashes
    }

    /// The leader this request still waits to fork from; cleared once forked or given up.
    pub fn fork_of(&self) -> Option<&str> {
        self.fork_of.as_deref()
    }

    /// Cap on generated tokens, resolved against the context length once accepted
    /// (`usize::MAX` before that when the request sets none).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// What stopped the request, when it finished with [`FinishReason::Stop`] on a stop token.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop_reason.as_ref()
    }

    /// Appends one generated token (the scheduler then refreshes the block hashes).
    pub fn append_output_token(&mut self, token_id: TokenId) {
        self.output_token_ids.push(token_id);
    }

    /// Hashes every block that became full since the last call.
    pub fn update_block_hashes(&mut self, block_size: usize) {
        let num_full_blocks = self.num_tokens() / block_size;
        while self.block_hashes.len() < num_full_blocks {
            let i = self.block_hashes.len();
            let parent = self.block_hashes.last().copied();
            let tokens = self.token_ids_in(i * block_size..(i + 1) * block_size);
            self.block_hashes.push(hash_block_tokens(parent, tokens));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_hash::hash_request_tokens;

    fn req(prompt: Vec<TokenId>) -> Request {
        Request::new("r", prompt, Arc::new(SamplingParams::default()), vec![0])
    }

    #[test]
    fn token_views_span_prompt_and_output() {
        let mut r = req(vec![1, 2, 3]);
        r.append_output_token(4);
        r.append_output_token(5);
        assert_eq!(r.num_tokens(), 5);
        assert_eq!(r.num_prompt_tokens(), 3);
        assert_eq!(r.num_output_tokens(), 2);
        assert_eq!(r.all_token_ids().collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
        assert_eq!(r.token_ids_in(2..5), vec![3, 4, 5]);
        assert_eq!(r.token_ids_in(0..2), vec![1, 2]);
        assert_eq!(r.token_ids_in(3..4), vec![4]);
        assert_eq!(r.token_ids_in(4..4), Vec::<TokenId>::new());
        assert_eq!(r.token_id(3), Some(4));
        assert_eq!(r.token_id(5), None);
    }

    #[test]
    fn block_hashes_grow_incrementally_across_prompt_and_output() {
        let mut r = req(vec![1, 2, 3]);
        r.update_block_hashes(2);
        assert_eq!(r.block_hashes().len(), 1);
        r.append_output_token(4);
        r.update_block_hashes(2);
        assert_eq!(
            r.block_hashes(),
            hash_request_tokens(2, &[1, 2, 3, 4]).as_slice()
        );
    }

    #[test]
    fn status_helpers() {
        assert!(RequestStatus::FinishedAborted.is_finished());
        assert!(!RequestStatus::Preempted.is_finished());
        assert_eq!(
            RequestStatus::FinishedLength.finish_reason(),
            Some(FinishReason::Length)
        );
        assert_eq!(FinishReason::Stop.status(), RequestStatus::FinishedStopped);
        assert_eq!(FinishReason::Abort.as_str(), "abort");
    }
}
