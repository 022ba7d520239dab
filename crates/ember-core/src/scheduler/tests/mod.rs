//! Unit tests of the scheduler, with shared helpers: `batching` (chunking, budgets, FCFS,
//! preemption), `lifecycle` (stops, aborts, admission errors, prefix hits, forks) and
//! `pipelined` (async scheduling: a step scheduled while the previous one is in flight).

mod batching;
mod lifecycle;
mod pipelined;

use std::sync::Arc;

use super::*;
use crate::EngineCoreOutput;
use crate::ids::TokenId;
use crate::sampling_params::SamplingParams;
use crate::scheduler_output::{ModelRunnerOutput, RequestRunnerOutput, SchedulerOutput};

const EOS: TokenId = 2;

struct Setup {
    budget: usize,
    max_seqs: usize,
    max_model_len: usize,
    block_size: usize,
    num_blocks: usize,
    caching: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            budget: 64,
            max_seqs: 16,
            max_model_len: 64,
            block_size: 4,
            num_blocks: 64,
            caching: true,
        }
    }
}

fn scheduler(s: Setup) -> Scheduler {
    let sc = SchedulerConfig {
        max_num_batched_tokens: s.budget,
        max_num_seqs: s.max_seqs,
        max_model_len: s.max_model_len,
        long_prefill_token_threshold: 0,
    };
    let cc = CacheConfig {
        block_size: s.block_size,
        num_blocks: s.num_blocks,
        enable_prefix_caching: s.caching,
    };
    Scheduler::new(sc, cc).expect("valid config")
}

fn params(max_tokens: usize) -> SamplingParams {
    SamplingParams {
        max_tokens: Some(max_tokens),
        ..SamplingParams::default()
    }
}

fn request(id: &str, prompt: Vec<TokenId>, p: SamplingParams) -> Request {
    Request::new(id, prompt, Arc::new(p), vec![EOS])
}

fn prompt(len: usize, base: TokenId) -> Vec<TokenId> {
    (0..len as TokenId).map(|i| base + 10 + i).collect()
}

/// Every sampling request samples `token`.
fn runner_output(out: &SchedulerOutput, token: TokenId) -> ModelRunnerOutput {
    ModelRunnerOutput {
        outputs: out
            .scheduled
            .iter()
            .map(|s| RequestRunnerOutput {
                sampled_token_id: s.sample.then_some(token),
                ..Default::default()
            })
            .collect(),
    }
}

fn step(s: &mut Scheduler, token: TokenId) -> (SchedulerOutput, Vec<EngineCoreOutput>) {
    let out = s.schedule();
    let results = s.update_from_output(&out, &runner_output(&out, token));
    (out, results)
}

fn shape(out: &SchedulerOutput) -> Vec<(&str, usize, usize, bool)> {
    out.scheduled
        .iter()
        .map(|r| {
            (
                r.request_id.as_str(),
                r.num_computed_tokens,
                r.token_ids.len(),
                r.sample,
            )
        })
        .collect()
}
