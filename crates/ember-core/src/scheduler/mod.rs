//! [`Scheduler`]: vLLM-v1-style continuous batching over one token budget per step.
//!
//! There is no prefill phase and no decode phase: every request has `num_computed_tokens`, and
//! each step gives running requests (in admission order) then waiting requests (FCFS) as many
//! of their uncomputed tokens as the budget allows, mixing prefill chunks and decodes in one
//! batch. Running out of KV-cache blocks preempts the most recently admitted running request
//! (recompute: all its blocks are freed and it restarts from the waiting-queue front).
//!
//! Invariants, after every public call:
//! - `running.len() <= max_num_seqs`; every running request holds a block table, no waiting
//!   request does (waiting/preempted requests have `num_computed_tokens == 0`);
//! - a finished request is removed at once and its blocks released (cached ones stay in the
//!   prefix cache until evicted);
//! - `add_request` accepts only requests that fit the pool on their own, so the head of the
//!   running list can always make progress and scheduling never deadlocks.
//!
//! Calls per step: `schedule` -> run the model -> `update_from_output`. `finish_requests` may
//! be called between steps (stop strings, cancellation).
//!
//! Async scheduling (vLLM's `--async-scheduling`): the engine core may call `schedule` for
//! step N+1 while step N runs, before N's `update_from_output`. Each request counts the tokens
//! of steps not yet applied (`num_in_flight_tokens`) and the tokens they sample
//! (`num_pending_output_tokens`): step N+1 starts after them, its first input may be a token
//! N has not returned yet (`ScheduledRequest::input_token_pending`, which the model runner
//! takes from N's device output), and a request whose pending tokens will finish it by length
//! is not scheduled again.

mod schedule;
#[cfg(test)]
mod tests;
mod update;

use std::collections::{HashMap, VecDeque};

use tracing::debug;

use crate::config::{CacheConfig, SchedulerConfig};
use crate::error::CoreError;
use crate::ids::RequestId;
use crate::kv_cache_manager::KvCacheManager;
use crate::request::{FinishReason, Request, RequestStatus};

/// Point-in-time scheduler metrics (vLLM's `SchedulerStats`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SchedulerStats {
    /// Requests currently running.
    pub num_running: usize,
    /// Requests waiting (new or preempted).
    pub num_waiting: usize,
    /// Fraction of KV-cache blocks in use, in `[0, 1]`.
    pub kv_cache_usage: f32,
    /// Preemptions since start.
    pub num_preemptions_total: u64,
    /// Prefix-cache lookups since start, in tokens.
    pub prefix_cache_queries: u64,
    /// Prefix-cache hits since start, in tokens.
    pub prefix_cache_hits: u64,
}

/// Decides, step by step, which requests run and with which tokens and blocks.
#[derive(Debug, Clone)]
pub struct Scheduler {
    scheduler_config: SchedulerConfig,
    cache_config: CacheConfig,
    kv_cache_manager: KvCacheManager,
    requests: HashMap<RequestId, Request>,
    waiting: VecDeque<RequestId>,
    running: Vec<RequestId>,
    finished_req_ids: Vec<RequestId>,
    next_arrival_index: u64,
    num_preemptions_total: u64,
}

impl Scheduler {
    /// A scheduler with an empty KV cache of `cache_config.num_blocks` blocks.
    ///
    /// Errors if a config is invalid or the pool cannot hold one sequence of
    /// `max_model_len - 1` computed tokens (vLLM refuses to start in that case too).
    pub fn new(
        scheduler_config: SchedulerConfig,
        cache_config: CacheConfig,
    ) -> Result<Self, CoreError> {
        scheduler_config.validate()?;
        cache_config.validate()?;
        let max_blocks_per_seq = cache_config.blocks_for_tokens(scheduler_config.max_model_len - 1);
        if max_blocks_per_seq > cache_config.num_blocks {
            return Err(CoreError::InvalidConfig {
                field: "num_blocks",
                reason: format!(
                    "{} blocks of {} tokens cannot hold one sequence of max_model_len {} \
                     (needs {max_blocks_per_seq} blocks); lower max_model_len or give the KV \
                     cache more memory",
                    cache_config.num_blocks,
                    cache_config.block_size,
                    scheduler_config.max_model_len
                ),
            });
        }
        Ok(Self {
            kv_cache_manager: KvCacheManager::new(&cache_config),
            scheduler_config,
            cache_config,
            requests: HashMap::new(),
            waiting: VecDeque::new(),
            running: Vec::new(),
            finished_req_ids: Vec::new(),
            next_arrival_index: 0,
            num_preemptions_total: 0,
        })
    }

    /// The scheduler configuration.
    pub fn scheduler_config(&self) -> &SchedulerConfig {
        &self.scheduler_config
    }

    /// The cache configuration.
    pub fn cache_config(&self) -> &CacheConfig {
        &self.cache_config
    }

    /// Queues a request at the back of the waiting queue.
    ///
    /// Resolves its `max_tokens` against `max_model_len` and computes its block hashes.
    /// Errors on a duplicate id, invalid sampling parameters, an empty prompt, a prompt that
    /// leaves no room to generate (`len >= max_model_len`), or a request whose worst case does
    /// not fit the whole pool.
    pub fn add_request(&mut self, mut request: Request) -> Result<(), CoreError> {
        let request_id = request.request_id.clone();
        if self.requests.contains_key(&request_id) {
            return Err(CoreError::DuplicateRequestId { request_id });
        }
        request.sampling_params.validate()?;
        let num_prompt_tokens = request.num_prompt_tokens();
        let max_model_len = self.scheduler_config.max_model_len;
        if num_prompt_tokens == 0 {
            return Err(CoreError::EmptyPrompt { request_id });
        }
        if num_prompt_tokens >= max_model_len {
            return Err(CoreError::PromptTooLong {
                request_id,
                num_prompt_tokens,
                max_model_len,
            });
        }
        let max_tokens = request
            .sampling_params
            .max_tokens
            .unwrap_or(usize::MAX)
            .min(max_model_len - num_prompt_tokens);
        // The last generated token is never computed, hence the -1.
        let num_needed_blocks = self
            .cache_config
            .blocks_for_tokens(num_prompt_tokens + max_tokens - 1);
        if num_needed_blocks > self.cache_config.num_blocks {
            return Err(CoreError::RequestTooLarge {
                request_id,
                num_needed_blocks,
                num_total_blocks: self.cache_config.num_blocks,
            });
        }
        request.max_tokens = max_tokens;
        request.status = RequestStatus::Waiting;
        request.num_computed_tokens = 0;
        request.arrival_index = self.next_arrival_index;
        self.next_arrival_index += 1;
        if self.kv_cache_manager.enable_prefix_caching() {
            request.update_block_hashes(self.cache_config.block_size);
        }
        debug!(request_id = %request_id, num_prompt_tokens, max_tokens, "request added");
        self.waiting.push_back(request_id.clone());
        self.requests.insert(request_id, request);
        Ok(())
    }

    /// Finishes the given requests now with `reason` (stop strings, cancellation), freeing
    /// their blocks. Unknown or already finished ids are ignored. Their ids are reported in the
    /// next `SchedulerOutput::finished_req_ids`.
    pub fn finish_requests<S: AsRef<str>>(&mut self, request_ids: &[S], reason: FinishReason) {
        for request_id in request_ids {
            let request_id = request_id.as_ref();
            if self.requests.contains_key(request_id) {
                self.finish_request(request_id, reason.status());
            }
        }
    }

    /// Aborts the given requests: [`Self::finish_requests`] with [`FinishReason::Abort`].
    pub fn abort_requests<S: AsRef<str>>(&mut self, request_ids: &[S]) {
        self.finish_requests(request_ids, FinishReason::Abort);
    }

    /// Removes a request that is known to the scheduler, frees its blocks and queues its id for
    /// the runner. Returns the request in its final state.
    fn finish_request(&mut self, request_id: &str, status: RequestStatus) -> Request {
        let mut request = self
            .requests
            .remove(request_id)
            .unwrap_or_else(|| panic!("finishing unknown request {request_id}"));
        match request.status {
            RequestStatus::Running => self.running.retain(|id| id != request_id),
            RequestStatus::Waiting | RequestStatus::Preempted => {
                self.waiting.retain(|id| id != request_id)
            }
            finished => panic!("request {request_id} finished twice (was {finished:?})"),
        }
        self.kv_cache_manager.free(request_id);
        request.status = status;
        debug!(request_id, ?status, "request finished");
        self.finished_req_ids.push(request.request_id.clone());
        request
    }

    /// Preempts the last running request: frees its blocks, resets it for recompute and puts
    /// it at the front of the waiting queue. Returns its id.
    fn preempt_last_running(&mut self) -> RequestId {
        let request_id = self
            .running
            .pop()
            .expect("preemption with no running request");
        let request = self
            .requests
            .get_mut(&request_id)
            .expect("running request is known");
        self.kv_cache_manager.free(&request_id);
        request.status = RequestStatus::Preempted;
        request.num_computed_tokens = 0;
        request.num_in_flight_tokens = 0;
        request.num_pending_output_tokens = 0;
        request.num_preemptions += 1;
        self.num_preemptions_total += 1;
        debug!(request_id = %request_id, "request preempted");
        self.waiting.push_front(request_id.clone());
        request_id
    }

    /// Whether any request is waiting or running.
    pub fn has_unfinished_requests(&self) -> bool {
        !self.requests.is_empty()
    }

    /// Number of running requests.
    pub fn num_running(&self) -> usize {
        self.running.len()
    }

    /// Number of waiting (new or preempted) requests.
    pub fn num_waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Running request ids in admission order (the last one is preempted first).
    pub fn running_ids(&self) -> &[RequestId] {
        &self.running
    }

    /// Waiting request ids in scheduling order.
    pub fn waiting_ids(&self) -> impl Iterator<Item = &str> {
        self.waiting.iter().map(String::as_str)
    }

    /// A request that has not finished yet.
    pub fn get_request(&self, request_id: &str) -> Option<&Request> {
        self.requests.get(request_id)
    }

    /// Fraction of KV-cache blocks in use, in `[0, 1]`.
    pub fn kv_cache_usage(&self) -> f32 {
        self.kv_cache_manager.usage()
    }

    /// The KV-cache manager (block tables, pool), read-only.
    pub fn kv_cache_manager(&self) -> &KvCacheManager {
        &self.kv_cache_manager
    }

    /// Forgets the prefix cache; only possible while no request holds blocks.
    pub fn reset_prefix_cache(&mut self) -> bool {
        self.kv_cache_manager.reset_prefix_cache()
    }

    /// Current metrics.
    pub fn stats(&self) -> SchedulerStats {
        let prefix = self.kv_cache_manager.prefix_cache_stats();
        SchedulerStats {
            num_running: self.running.len(),
            num_waiting: self.waiting.len(),
            kv_cache_usage: self.kv_cache_manager.usage(),
            num_preemptions_total: self.num_preemptions_total,
            prefix_cache_queries: prefix.queries_tokens,
            prefix_cache_hits: prefix.hits_tokens,
        }
    }
}
