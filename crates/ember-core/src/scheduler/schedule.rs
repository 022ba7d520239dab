//! `Scheduler::schedule`: one step's batch under the token budget.
//!
//! 1. Running requests, in admission order, each get `min(uncomputed tokens, budget,
//!    long_prefill_token_threshold)` tokens. When their slots cannot be allocated, the last
//!    running request is preempted (possibly the request itself, which then stops the loop).
//! 2. Only if nothing was preempted: waiting requests in FCFS order, while the budget and
//!    `max_num_seqs` allow. On first schedule a request reuses cached prefix blocks, or, as a
//!    fork child whose leader computed its prompt, the leader's blocks. A request whose slots
//!    cannot be allocated stops the loop (no overtaking); a fork child whose leader is still
//!    prefilling is skipped and keeps its place.

use std::collections::VecDeque;

use tracing::trace;

use super::Scheduler;
use crate::ids::{BlockId, RequestId};
use crate::request::{Request, RequestStatus};
use crate::scheduler_output::{ScheduledRequest, SchedulerOutput};

/// Where a waiting request's already-computed tokens come from.
enum ComputedSource {
    /// Keep waiting: the fork leader has not computed its prompt yet.
    WaitForLeader,
    /// Share the leader's blocks covering `num_tokens` positions.
    Fork {
        blocks: Vec<BlockId>,
        num_tokens: usize,
    },
    /// Not (or no longer) a fork: use the prefix cache.
    Normal,
}

impl Scheduler {
    /// Picks this step's requests and tokens, allocating their KV-cache slots.
    pub fn schedule(&mut self) -> SchedulerOutput {
        let mut output = SchedulerOutput {
            finished_req_ids: std::mem::take(&mut self.finished_req_ids),
            ..SchedulerOutput::default()
        };
        let mut budget = self.scheduler_config.max_num_batched_tokens;
        let mut scheduled: Vec<(RequestId, usize)> = Vec::new();

        // 1. Running requests.
        let mut index = 0;
        while index < self.running.len() && budget > 0 {
            let request_id = self.running[index].clone();
            let request = &self.requests[&request_id];
            let max_model_len = self.scheduler_config.max_model_len;
            let num_new_tokens = if request.finishes_when_pending_applied(max_model_len) {
                0
            } else {
                self.cap_new_tokens(
                    request.num_tokens_with_pending() - request.num_scheduled_through(),
                    budget,
                )
            };
            if num_new_tokens == 0 {
                index += 1;
                continue;
            }
            if !self.allocate_or_preempt(&request_id, num_new_tokens, &mut output) {
                break;
            }
            scheduled.push((request_id, num_new_tokens));
            budget -= num_new_tokens;
            index += 1;
        }

        // 2. Waiting requests, unless this step already had to preempt.
        if output.preempted_req_ids.is_empty() {
            self.schedule_waiting(&mut budget, &mut scheduled, &mut output);
        }

        for (request_id, num_new_tokens) in scheduled {
            let request = &self.requests[&request_id];
            let start = request.num_scheduled_through();
            let end = start + num_new_tokens;
            // A token the step in flight samples is not known yet: 0 here, and the runner
            // takes it from that step's device output.
            let mut token_ids = request.token_ids_in(start.min(request.num_tokens())..end.min(request.num_tokens()));
            let input_token_pending = end > request.num_tokens();
            token_ids.resize(num_new_tokens, 0);
            let sample = end == request.num_tokens_with_pending();
            output.total_num_scheduled_tokens += num_new_tokens;
            output.scheduled.push(ScheduledRequest {
                token_ids,
                input_token_pending,
                block_table: self.kv_cache_manager.get_block_ids(&request_id).to_vec(),
                num_computed_tokens: start,
                sample,
                num_prompt_tokens: request.num_prompt_tokens(),
                sampling_params: request.sampling_params.clone(),
                request_id: request_id.clone(),
            });
            let request = self.requests.get_mut(&request_id).expect("scheduled request is known");
            request.num_in_flight_tokens += num_new_tokens;
            request.num_pending_output_tokens += usize::from(sample);
        }
        trace!(
            num_scheduled = output.scheduled.len(),
            num_tokens = output.total_num_scheduled_tokens,
            num_preempted = output.preempted_req_ids.len(),
            "scheduled step"
        );
        output
    }

    /// Allocates slots for a running request, preempting the last running request until it
    /// fits. Returns false when the request preempted itself.
    fn allocate_or_preempt(
        &mut self,
        request_id: &str,
        num_new_tokens: usize,
        output: &mut SchedulerOutput,
    ) -> bool {
        loop {
            let request = &self.requests[request_id];
            if let Some(copies) =
                self.kv_cache_manager
                    .allocate_slots(request, num_new_tokens, 0, &[])
            {
                output.blocks_to_copy.extend(copies);
                return true;
            }
            let preempted = self.preempt_last_running();
            let was_self = preempted == request_id;
            output.preempted_req_ids.push(preempted);
            if was_self {
                return false;
            }
        }
    }

    fn schedule_waiting(
        &mut self,
        budget: &mut usize,
        scheduled: &mut Vec<(RequestId, usize)>,
        output: &mut SchedulerOutput,
    ) {
        let mut skipped: VecDeque<RequestId> = VecDeque::new();
        while *budget > 0 && self.running.len() < self.scheduler_config.max_num_seqs {
            let Some(request_id) = self.waiting.front().cloned() else {
                break;
            };
            let (computed_blocks, num_computed_tokens, from_cache) =
                match self.computed_source(&request_id) {
                    ComputedSource::WaitForLeader => {
                        self.waiting.pop_front();
                        skipped.push_back(request_id);
                        continue;
                    }
                    ComputedSource::Fork { blocks, num_tokens } => (blocks, num_tokens, false),
                    ComputedSource::Normal => {
                        let (blocks, num_tokens) = self
                            .kv_cache_manager
                            .get_computed_blocks(&self.requests[&request_id]);
                        (blocks, num_tokens, true)
                    }
                };
            let request = &self.requests[&request_id];
            let num_new_tokens =
                self.cap_new_tokens(request.num_tokens() - num_computed_tokens, *budget);
            let Some(copies) = self.kv_cache_manager.allocate_slots(
                request,
                num_new_tokens,
                num_computed_tokens,
                &computed_blocks,
            ) else {
                break;
            };
            output.blocks_to_copy.extend(copies);
            if from_cache {
                let num_tokens = request.num_tokens();
                self.kv_cache_manager
                    .record_prefix_cache_lookup(num_tokens, num_computed_tokens);
            }
            self.waiting.pop_front();
            let request = self
                .requests
                .get_mut(&request_id)
                .expect("waiting request is known");
            request.status = RequestStatus::Running;
            request.num_computed_tokens = num_computed_tokens;
            request.fork_of = None;
            request.num_cached_tokens.get_or_insert(num_computed_tokens);
            self.running.push(request_id.clone());
            scheduled.push((request_id, num_new_tokens));
            *budget -= num_new_tokens;
        }
        while let Some(request_id) = skipped.pop_back() {
            self.waiting.push_front(request_id);
        }
    }

    /// Applies the per-step caps (budget, long-prefill threshold) to a token count.
    fn cap_new_tokens(&self, num_uncomputed_tokens: usize, budget: usize) -> usize {
        let threshold = self.scheduler_config.long_prefill_token_threshold;
        let mut n = num_uncomputed_tokens.min(budget);
        if threshold > 0 {
            n = n.min(threshold);
        }
        n
    }

    /// Resolves a waiting request's fork status, clearing `fork_of` when the fork is moot
    /// (leader gone, preempted, or with a different prompt).
    fn computed_source(&mut self, request_id: &str) -> ComputedSource {
        let request = &self.requests[request_id];
        let Some(leader_id) = request.fork_of.as_deref() else {
            return ComputedSource::Normal;
        };
        let num_prompt_tokens = request.num_prompt_tokens();
        match self.requests.get(leader_id) {
            Some(leader) if leader.prompt_token_ids != request.prompt_token_ids => {}
            Some(leader)
                if leader.status == RequestStatus::Running
                    && leader.num_computed_tokens >= num_prompt_tokens =>
            {
                let num_tokens = num_prompt_tokens - 1;
                if let Some(blocks) = self.kv_cache_manager.get_fork_blocks(leader_id, num_tokens) {
                    return ComputedSource::Fork { blocks, num_tokens };
                }
            }
            Some(Request {
                status: RequestStatus::Waiting | RequestStatus::Running,
                ..
            }) => {
                return ComputedSource::WaitForLeader;
            }
            _ => {}
        }
        // The leader finished, was preempted, or cannot be shared: run as a normal request.
        if let Some(request) = self.requests.get_mut(request_id) {
            request.fork_of = None;
        }
        ComputedSource::Normal
    }
}
