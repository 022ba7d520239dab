//! `Scheduler::update_from_output`: applies one step's model output.
//!
//! For each scheduled request still running: advance `num_computed_tokens` by the scheduled
//! count, register newly computed full blocks in the prefix cache, append the sampled token
//! (when the step sampled), check stop conditions, and release the blocks of requests that
//! finished. Requests finished or aborted between `schedule` and this call are skipped. A
//! sampling step that returns no token is retried: its last position is recomputed next step.
//!
//! With async scheduling the next step was scheduled before this one's output arrived: a
//! request finishing here may be in it (its token there is dropped), and the in-flight
//! counters `schedule` raised for this step come down here.

use tracing::warn;

use super::Scheduler;
use crate::request::RequestStatus;
use crate::scheduler_output::{EngineCoreOutput, ModelRunnerOutput, ScheduledRequest, SchedulerOutput};
use crate::stop_checker::check_stop;

impl Scheduler {
    /// Applies `model_output` (aligned with `scheduler_output.scheduled`) and returns one
    /// output per request that produced a token or prompt logprobs, or finished.
    ///
    /// Panics if the two outputs are not aligned (an engine bug).
    pub fn update_from_output(
        &mut self,
        scheduler_output: &SchedulerOutput,
        model_output: &ModelRunnerOutput,
    ) -> Vec<EngineCoreOutput> {
        assert_eq!(
            scheduler_output.scheduled.len(),
            model_output.outputs.len(),
            "model runner output must have one entry per scheduled request"
        );
        let block_size = self.cache_config.block_size;
        let hash_blocks = self.kv_cache_manager.enable_prefix_caching();
        let max_model_len = self.scheduler_config.max_model_len;
        let mut outputs = Vec::new();
        for (scheduled, runner) in scheduler_output.scheduled.iter().zip(&model_output.outputs) {
            let request_id = scheduled.request_id.as_str();
            let Some(request) = self.requests.get_mut(request_id) else {
                continue; // finished or aborted since it was scheduled
            };
            if request.status != RequestStatus::Running {
                continue; // preempted since it was scheduled: its counters were reset
            }
            request.num_in_flight_tokens -= scheduled.num_scheduled_tokens();
            request.num_pending_output_tokens -= usize::from(scheduled.sample);
            if request.num_computed_tokens != scheduled.num_computed_tokens {
                warn!(request_id, "stale scheduler output entry ignored");
                continue;
            }
            request.num_computed_tokens += scheduled.num_scheduled_tokens();
            let mut new_token_ids = Vec::new();
            let mut finished = None;
            match (scheduled.sample, runner.sampled_token_id) {
                (true, Some(token_id)) => {
                    request.append_output_token(token_id);
                    if hash_blocks {
                        request.update_block_hashes(block_size);
                    }
                    new_token_ids.push(token_id);
                    finished = check_stop(request, max_model_len);
                }
                (true, None) => {
                    // No token came back: recompute the last position next step rather than
                    // leave the request with nothing to schedule.
                    warn!(
                        request_id,
                        "sampling step returned no token; it will be retried"
                    );
                    request.num_computed_tokens -= 1;
                }
                (false, _) => {}
            }
            self.kv_cache_manager.cache_blocks(request);
            let has_output = !new_token_ids.is_empty() || runner.prompt_logprobs.is_some();
            if !has_output && finished.is_none() {
                continue;
            }
            let mut output = EngineCoreOutput {
                request_id: scheduled.request_id.clone(),
                new_token_ids,
                finish_reason: None,
                stop_reason: None,
                new_logprobs: if scheduled.sample {
                    runner.logprobs.clone()
                } else {
                    None
                },
                new_prompt_logprobs: runner.prompt_logprobs.clone(),
                num_cached_tokens: request.num_cached_tokens.unwrap_or(0),
            };
            if let Some((status, stop_reason)) = finished {
                request.stop_reason = stop_reason.clone();
                self.finish_request(request_id, status);
                output.finish_reason = status.finish_reason();
                output.stop_reason = stop_reason;
            }
            outputs.push(output);
        }
        outputs
    }
}

impl Scheduler {
    /// Async scheduling, when the step in flight was applied before `out` (scheduled while it
    /// ran) is run: fills the input tokens `schedule` left pending with the tokens that step
    /// sampled, and drops the entries of requests it finished (they would compute a token only
    /// to drop it). Returns whether any entry was dropped.
    pub fn resolve_pending_inputs(&mut self, out: &mut SchedulerOutput) -> bool {
        let before = out.scheduled.len();
        out.scheduled.retain_mut(|s| {
            if !s.input_token_pending {
                return true;
            }
            let Some(request) = self.requests.get_mut(&s.request_id) else {
                return false; // finished: its blocks are already free
            };
            let position = s.num_computed_tokens + s.token_ids.len() - 1;
            match (request.status, request.token_id(position)) {
                (RequestStatus::Running, Some(token)) => {
                    *s.token_ids.last_mut().expect("a pending input is a scheduled token") = token;
                    s.input_token_pending = false;
                    true
                }
                (RequestStatus::Running, None) => {
                    // The step returned no token (it is retried): undo this entry.
                    request.num_in_flight_tokens -= s.token_ids.len();
                    request.num_pending_output_tokens -= usize::from(s.sample);
                    false
                }
                _ => false,
            }
        });
        out.total_num_scheduled_tokens = out.scheduled.iter().map(ScheduledRequest::num_scheduled_tokens).sum();
        out.scheduled.len() != before
    }
}
