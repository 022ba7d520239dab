//! Default scheduler limits (`max_num_seqs`, `max_num_batched_tokens`) when the user gives
//! none: vLLM's `EngineArgs.get_batch_defaults` table, picked by the device and the usage
//! context, then `_set_default_max_num_seqs_and_batched_tokens_args`' two caps.
//!
//! | backend / device                       | LLM class (offline) | OpenAI server  |
//! |----------------------------------------|---------------------|----------------|
//! | cuda, ≥ 70 GiB and not an A100         | 16384 tok, 1024 seq | 8192, 1024     |
//! | cuda, smaller (or memory unknown)      | 8192, 256           | 2048, 256      |
//! | cpu, wgpu (Ember's choice)             | 2048, 256           | 2048, 256      |
//!
//! The cpu and wgpu rows are Ember's, not vLLM's: wgpu cannot report device memory, and on
//! both a step's latency grows with the chunk, so the bare scheduler's defaults stay.
//! A value the user gave always wins. When the token budget is defaulted it is capped at
//! `max_num_seqs · max_model_len`; when `max_num_seqs` is defaulted it is capped at the token
//! budget (a step cannot hold more sequences than tokens). Prefill is always chunked, so the
//! budget may be below `max_model_len`.

use std::fmt;

use ember_core::SchedulerConfig;

use crate::args::{BackendKind, EngineArgs};

/// Device memory from which vLLM uses its large-GPU defaults (H100, H200, MI300X).
pub const LARGE_GPU_MEMORY_BYTES: usize = 70 << 30;

/// Who builds the engine (vLLM's `UsageContext`): picks the default batch limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UsageContext {
    /// Offline use (vLLM's `LLM` class): [`crate::LLM`], `ember generate`,
    /// `ember bench throughput|latency`. Favours throughput: larger prefill chunks.
    #[default]
    LlmClass,
    /// The OpenAI-compatible server (`ember serve`). Favours inter-token latency: smaller
    /// chunks, so a long prefill delays running decodes less.
    OpenAiApiServer,
}

impl fmt::Display for UsageContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LlmClass => "LLM_CLASS",
            Self::OpenAiApiServer => "OPENAI_API_SERVER",
        })
    }
}

/// What a GPU backend reports about its device (cuda: `cuDeviceTotalMem`, `cuDeviceGetName`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceProps {
    /// Total device memory in bytes.
    pub total_memory: usize,
    /// Device name, e.g. "NVIDIA H200".
    pub name: String,
}

/// The scheduler limits an engine runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Most sequences in one step.
    pub max_num_seqs: usize,
    /// Token budget of one step.
    pub max_num_batched_tokens: usize,
}

/// The table above: defaults for `backend` on `device` (`None` when the backend cannot tell,
/// which on cuda means the small-GPU row, as vLLM does when the query fails).
pub fn default_batch_limits(backend: BackendKind, device: Option<&DeviceProps>, context: UsageContext) -> BatchLimits {
    let limits = |max_num_batched_tokens, max_num_seqs| BatchLimits { max_num_seqs, max_num_batched_tokens };
    match backend {
        BackendKind::Cpu | BackendKind::Wgpu => {
            limits(SchedulerConfig::DEFAULT_MAX_NUM_BATCHED_TOKENS, SchedulerConfig::DEFAULT_MAX_NUM_SEQS)
        }
        BackendKind::Cuda => {
            // vLLM PR #17885: the large defaults lower throughput on the 80 GB A100.
            let large = device
                .is_some_and(|d| d.total_memory >= LARGE_GPU_MEMORY_BYTES && !d.name.to_lowercase().contains("a100"));
            match (large, context) {
                (true, UsageContext::LlmClass) => limits(16384, 1024),
                (true, UsageContext::OpenAiApiServer) => limits(8192, 1024),
                (false, UsageContext::LlmClass) => limits(8192, 256),
                (false, UsageContext::OpenAiApiServer) => limits(2048, 256),
            }
        }
    }
}

/// The limits to run with: the explicit values where given, else the defaults with vLLM's caps.
pub fn resolve_batch_limits(
    backend: BackendKind,
    device: Option<&DeviceProps>,
    context: UsageContext,
    max_num_seqs: Option<usize>,
    max_num_batched_tokens: Option<usize>,
    max_model_len: usize,
) -> BatchLimits {
    let defaults = default_batch_limits(backend, device, context);
    let seqs = max_num_seqs.unwrap_or(defaults.max_num_seqs);
    let tokens = max_num_batched_tokens
        .unwrap_or_else(|| defaults.max_num_batched_tokens.min(seqs.saturating_mul(max_model_len.max(1))));
    let seqs = if max_num_seqs.is_some() { seqs } else { seqs.min(tokens) };
    BatchLimits { max_num_seqs: seqs, max_num_batched_tokens: tokens }
}

/// [`resolve_batch_limits`] for `args`, logging each defaulted value as vLLM does
/// ("Setting max_num_batched_tokens to N for X usage context").
pub(crate) fn resolve_for(args: &EngineArgs, device: Option<&DeviceProps>, max_model_len: usize) -> BatchLimits {
    let limits = resolve_batch_limits(
        args.backend,
        device,
        args.usage_context,
        args.max_num_seqs,
        args.max_num_batched_tokens,
        max_model_len,
    );
    let on = match device {
        Some(d) => format!("{} ({}, {:.1} GiB)", args.backend, d.name, d.total_memory as f64 / (1u64 << 30) as f64),
        None => args.backend.to_string(),
    };
    for (name, given, value) in [
        ("max_num_batched_tokens", args.max_num_batched_tokens, limits.max_num_batched_tokens),
        ("max_num_seqs", args.max_num_seqs, limits.max_num_seqs),
    ] {
        match given {
            None => tracing::info!("Setting {name} to {value} for {} usage context on {on}", args.usage_context),
            Some(_) => tracing::debug!("{name} = {value} (given)"),
        }
    }
    limits
}

#[cfg(test)]
mod tests {
    use super::*;
    use BackendKind::{Cpu, Cuda, Wgpu};
    use UsageContext::{LlmClass, OpenAiApiServer};

    const GIB: usize = 1 << 30;

    fn gpu(name: &str, gib: usize) -> DeviceProps {
        DeviceProps { total_memory: gib * GIB, name: name.into() }
    }

    fn limits(max_num_batched_tokens: usize, max_num_seqs: usize) -> BatchLimits {
        BatchLimits { max_num_seqs, max_num_batched_tokens }
    }

    fn defaults(backend: BackendKind, device: Option<&DeviceProps>, context: UsageContext) -> BatchLimits {
        resolve_batch_limits(backend, device, context, None, None, 4096)
    }

    #[test]
    fn large_gpus_get_vllm_large_defaults() {
        for name in ["NVIDIA H200", "NVIDIA H100 80GB HBM3", "AMD Instinct MI300X"] {
            let d = gpu(name, 140);
            assert_eq!(defaults(Cuda, Some(&d), LlmClass), limits(16384, 1024), "{name}");
            assert_eq!(defaults(Cuda, Some(&d), OpenAiApiServer), limits(8192, 1024), "{name}");
        }
        // The threshold is inclusive (vLLM: `>= 70 GiB`).
        assert_eq!(defaults(Cuda, Some(&gpu("NVIDIA H100", 70)), LlmClass), limits(16384, 1024));
    }

    #[test]
    fn a100_and_small_gpus_get_small_defaults() {
        for d in [gpu("NVIDIA A100-SXM4-80GB", 80), gpu("NVIDIA L4", 23), gpu("NVIDIA H100", 69)] {
            assert_eq!(defaults(Cuda, Some(&d), LlmClass), limits(8192, 256), "{}", d.name);
            assert_eq!(defaults(Cuda, Some(&d), OpenAiApiServer), limits(2048, 256), "{}", d.name);
        }
        // Memory unknown: vLLM's fallback is the small-GPU row.
        assert_eq!(defaults(Cuda, None, LlmClass), limits(8192, 256));
    }

    #[test]
    fn cpu_and_wgpu_keep_the_scheduler_defaults() {
        let big = gpu("whatever", 192);
        for backend in [Cpu, Wgpu] {
            for context in [LlmClass, OpenAiApiServer] {
                assert_eq!(defaults(backend, None, context), limits(2048, 256));
                assert_eq!(defaults(backend, Some(&big), context), limits(2048, 256));
            }
        }
    }

    #[test]
    fn explicit_values_win() {
        let h200 = gpu("NVIDIA H200", 140);
        let both = resolve_batch_limits(Cuda, Some(&h200), LlmClass, Some(8), Some(512), 4096);
        assert_eq!(both, limits(512, 8));
        // Only the budget given: max_num_seqs defaults and is capped at the budget (vLLM).
        assert_eq!(resolve_batch_limits(Cuda, Some(&h200), LlmClass, None, Some(512), 4096), limits(512, 512));
        assert_eq!(resolve_batch_limits(Cpu, None, LlmClass, None, Some(16), 256), limits(16, 16));
        // Only max_num_seqs given: the budget defaults, capped at max_num_seqs · max_model_len.
        assert_eq!(resolve_batch_limits(Cuda, Some(&h200), OpenAiApiServer, Some(4), None, 4096), limits(8192, 4));
        assert_eq!(resolve_batch_limits(Cuda, Some(&h200), LlmClass, Some(2), None, 1000), limits(2000, 2));
        // An explicit budget below max_model_len stays (prefill is chunked).
        assert_eq!(resolve_batch_limits(Cpu, None, OpenAiApiServer, Some(1), Some(1), 8192), limits(1, 1));
    }

    #[test]
    fn tiny_contexts_cap_the_default_budget() {
        // 256 sequences of at most 4 tokens never need more than 1024 tokens in one step.
        assert_eq!(resolve_batch_limits(Cpu, None, LlmClass, None, None, 4), limits(1024, 256));
    }
}
