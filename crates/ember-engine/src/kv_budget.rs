//! Sizing the KV cache: how many blocks the byte budget buys, logged like vLLM
//! ("# GPU blocks: N, maximum concurrency for L tokens per request: X").
//!
//! Budget: `--kv-cache-memory-bytes` when given; otherwise on cuda
//! `gpu_memory_utilization · total − memory already in use` (weights are loaded first), on cpu
//! 4 GiB and on wgpu 2 GiB (wgpu cannot report device memory). On wgpu each layer's K and V
//! tensor is kept under 128 MiB, the binding limit WebGPU guarantees (lavapipe's actual limit).
//! The pool is never made larger than `max_num_seqs` full-length sequences need.

use ember_kernels::KvCacheSpec;

use crate::args::{BackendKind, EngineArgs};
use crate::error::{EngineError, Result};

/// Default KV budget on the cpu backend.
pub const DEFAULT_CPU_KV_BYTES: usize = 4 << 30;
/// Default KV budget on the wgpu backend.
pub const DEFAULT_WGPU_KV_BYTES: usize = 2 << 30;
/// Largest buffer every WebGPU implementation must bind.
pub const WGPU_MAX_BINDING_BYTES: usize = 128 << 20;

/// Device memory `(free, total)` in bytes, when the backend can tell.
pub type MemoryInfo = Option<(usize, usize)>;

/// Number of blocks for `spec` (its `num_blocks` is ignored) when at most `max_num_seqs`
/// sequences run at once.
pub(crate) fn num_blocks(
    args: &EngineArgs,
    spec: &KvCacheSpec,
    max_model_len: usize,
    max_num_seqs: usize,
    memory: MemoryInfo,
) -> Result<usize> {
    let budget = match (args.kv_cache_memory_bytes, args.backend, memory) {
        (Some(bytes), _, _) => bytes,
        (None, BackendKind::Cuda, Some((free, total))) => {
            let allowed = (total as f64 * args.gpu_memory_utilization as f64) as usize;
            allowed.saturating_sub(total - free)
        }
        (None, BackendKind::Wgpu, _) => DEFAULT_WGPU_KV_BYTES,
        (None, _, _) => DEFAULT_CPU_KV_BYTES,
    };
    let max_buffer = (args.backend == BackendKind::Wgpu).then_some(WGPU_MAX_BINDING_BYTES);
    let per_seq = max_model_len.div_ceil(spec.block_size);
    let useful = max_num_seqs.saturating_mul(per_seq + 1);
    let blocks = spec.blocks_for_budget(budget, max_buffer).min(useful);
    if blocks < per_seq {
        return Err(EngineError::InvalidArgs(format!(
            "the KV cache budget ({budget} bytes, {blocks} blocks of {} tokens) cannot hold one sequence of \
             max_model_len {max_model_len}; lower --max-model-len or raise --kv-cache-memory-bytes / \
             --gpu-memory-utilization",
            spec.block_size
        )));
    }
    Ok(blocks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn_tensor::DType;

    fn spec() -> KvCacheSpec {
        KvCacheSpec { num_layers: 2, num_blocks: 0, block_size: 16, num_kv_heads: 2, head_dim: 16, dtype: DType::F32 }
    }

    #[test]
    fn budget_and_caps() {
        let mut args = EngineArgs::new("m");
        args.kv_cache_memory_bytes = Some(spec().block_bytes() * 100);
        assert_eq!(num_blocks(&args, &spec(), 64, 1000, None).unwrap(), 100);
        // 2 sequences of 4 blocks (+1 each) are all that is useful
        assert_eq!(num_blocks(&args, &spec(), 64, 2, None).unwrap(), 10);
        args.kv_cache_memory_bytes = Some(spec().block_bytes() * 3);
        assert!(num_blocks(&args, &spec(), 64, 1000, None).unwrap_err().to_string().contains("max_model_len 64"));
    }

    #[test]
    fn cuda_uses_memory_utilization() {
        let mut args = EngineArgs::new("m");
        args.backend = BackendKind::Cuda;
        args.gpu_memory_utilization = 0.5;
        let total = 1800 * spec().block_bytes();
        // 50% of total minus 400 blocks' worth in use = 500 blocks.
        let memory = Some((total - 400 * spec().block_bytes(), total));
        let blocks = num_blocks(&args, &spec(), 64, usize::MAX / 1024, memory).unwrap();
        assert_eq!(blocks, 500);
    }
}
