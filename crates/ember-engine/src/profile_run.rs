//! Memory profiling before the KV cache is sized (vLLM's `profile_run`), the warm-up of the
//! small decode batches' kernels, and where the long-lived tensors are allocated.
//!
//! The KV cache takes what the memory budget leaves, so the activations of the largest step
//! must be known first: one dummy step at the biggest batch the scheduler can form
//! (`max_num_batched_tokens` prompt tokens spread over `max_num_seqs` sequences, each of which
//! then samples a token) runs on a throw-away cache. cubecl keeps the memory pages that step
//! reserved, so the device's free memory read afterwards already excludes the activations'
//! working set, and later steps reuse those pages.
//!
//! Weights and the KV cache are allocated in cubecl's persistent mode (exact-size buffers, see
//! [`persistent`]): in the default pools a 1.7 GB cache tensor would be carved out of an
//! 8.9 GB page (on a 141 GB GPU, pages are a quarter of memory divided by 4), and the leftover
//! of each page is too small for the next step's activations, which then ask for a fresh page
//! the budget did not plan for (measured: "can't allocate buffer" mid-run on the H200 with
//! 1024 sequences and 16,384-token steps before this change).

use std::sync::Arc;

use ember_core::{CacheConfig, Request, SamplingParams, Scheduler, SchedulerConfig};
use ember_kernels::{KvCacheSpec, PagedAttentionBackend};
use ember_models::DecoderModel;

use crate::batch_defaults::BatchLimits;
use crate::error::Result;
use crate::runner::ModelRunner;

/// Runs `allocate` with the backend allocating exact-size, long-lived buffers (weights, the KV
/// cache). Backends without an allocator mode just run it.
pub(crate) fn persistent<B: PagedAttentionBackend, O: Send>(device: &B::Device, allocate: impl FnOnce() -> O + Send) -> O {
    // burn takes an `Fn`; it calls it exactly once.
    let once = std::sync::Mutex::new(Some(allocate));
    B::memory_persistent_allocations(device, (), |()| {
        let allocate = once.lock().expect("not poisoned").take().expect("called once");
        allocate()
    })
}

/// The dummy step's shape: how many sequences, and prompt tokens per sequence.
pub(crate) fn profile_batch(limits: BatchLimits, max_model_len: usize) -> (usize, usize) {
    let seqs = limits.max_num_seqs.min(limits.max_num_batched_tokens).max(1);
    let per_seq = (limits.max_num_batched_tokens / seqs).clamp(1, max_model_len.saturating_sub(1).max(1));
    (seqs, per_seq)
}

/// Runs the dummy step on `model` with a cache just large enough for it, then drops that cache
/// and gives the model back.
pub(crate) fn profile_run<B: PagedAttentionBackend>(
    model: DecoderModel<B>,
    template: &KvCacheSpec,
    limits: BatchLimits,
    max_model_len: usize,
    device: &B::Device,
) -> Result<DecoderModel<B>> {
    let (seqs, per_seq) = profile_batch(limits, max_model_len);
    // Each sequence's prompt, its sampled token, and room for one sequence of max_model_len
    // (the scheduler refuses a pool smaller than that).
    let num_blocks = seqs * (per_seq + 1).div_ceil(template.block_size) + max_model_len.div_ceil(template.block_size);
    let spec = KvCacheSpec { num_blocks, ..template.clone() };
    let mut scheduler_config = SchedulerConfig::new(max_model_len);
    scheduler_config.max_num_seqs = seqs;
    scheduler_config.max_num_batched_tokens = limits.max_num_batched_tokens;
    let mut cache_config = CacheConfig::new(num_blocks);
    cache_config.block_size = template.block_size;
    cache_config.enable_prefix_caching = false;
    let mut scheduler = Scheduler::new(scheduler_config, cache_config)?;
    let params = Arc::new(SamplingParams { max_tokens: Some(1), ..SamplingParams::default() });
    for i in 0..seqs {
        scheduler.add_request(Request::new(format!("profile-run-{i}"), vec![0; per_seq], params.clone(), Vec::new()))?;
    }
    let step = scheduler.schedule();
    tracing::debug!(seqs, per_seq, tokens = step.total_num_scheduled_tokens, "profile run");
    let mut runner = ModelRunner::new(model, spec, device.clone(), 0);
    // The runner reads the sampled tokens back, so the step has finished when this returns.
    runner.execute_model(&step, &scheduler);
    // Small decode batches run kernels the big step does not (the one-row and multi-row
    // GEMVs, the small-batch token pick); backends that compile at first use (cuda) do it
    // here instead of in a real step (the last steps of an offline run paid 0.15-0.27 s).
    for seqs in [1, ember_kernels::gemv_max_rows().max(1)] {
        warm_decode(&mut runner, seqs, spec.num_blocks, spec.block_size, max_model_len)?;
    }
    Ok(runner.into_model())
}

/// Runs `seqs` two-token prompts through their prefill and two decode steps on the profiling
/// runner's throw-away cache.
fn warm_decode<B: PagedAttentionBackend>(runner: &mut ModelRunner<B>, seqs: usize, num_blocks: usize, block_size: usize, max_model_len: usize) -> Result<()> {
    let mut cache_config = CacheConfig::new(num_blocks);
    cache_config.block_size = block_size;
    cache_config.enable_prefix_caching = false;
    let mut scheduler = Scheduler::new(SchedulerConfig::new(max_model_len), cache_config)?;
    let params = Arc::new(SamplingParams { max_tokens: Some(3), ignore_eos: true, ..SamplingParams::default() });
    for i in 0..seqs {
        scheduler.add_request(Request::new(format!("warm-up-{seqs}-{i}"), vec![0; 2], params.clone(), Vec::new()))?;
    }
    while scheduler.has_unfinished_requests() {
        let step = scheduler.schedule();
        let output = runner.execute_model(&step, &scheduler);
        scheduler.update_from_output(&step, &output);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dummy_batch_fills_the_token_budget() {
        let limits = |seqs, tokens| BatchLimits { max_num_seqs: seqs, max_num_batched_tokens: tokens };
        assert_eq!(profile_batch(limits(1024, 16384), 2048), (1024, 16));
        assert_eq!(profile_batch(limits(256, 2048), 4096), (256, 8));
        // One long sequence when the budget allows one: capped below the context length.
        assert_eq!(profile_batch(limits(1, 8192), 512), (1, 511));
        // More sequences than tokens: one token each.
        assert_eq!(profile_batch(limits(64, 16), 128), (16, 1));
    }
}
