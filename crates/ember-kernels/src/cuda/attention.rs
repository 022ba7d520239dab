//! The CUDA launches of the paged attention: `kernels/paged_attention_mma.cu` (tensor cores,
//! one warp per token, KV head and partition; f16/bf16 with head_dim 64/128),
//! `kernels/paged_attention_grouped.cu` (one block per token, KV head and partition, for
//! head_dim 64/128/256 with up to 1024 / head_dim query heads per KV head) and
//! `kernels/paged_attention.cu` (one block per token and query head, any head_dim <= 256) for
//! the rest, plus the partition merge; `attention_kernel.rs` chooses. Cases none covers return
//! `None` and the caller runs the reference implementation.

use std::sync::OnceLock;

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_tensor::{DType, Shape};
use cubecl_cuda::CudaRuntime;

use super::attention_kernel::{AttentionKernel, attention_kernel, use_mma};
use super::ops::{PerDtype, kernels, suffix};
use super::raw_kernel::{RawCudaKernel, launch, pack_u32};
use crate::AttentionParams;

const PAGED_ATTENTION: &str = include_str!("../../../../kernels/paged_attention.cu");
const PAGED_ATTENTION_GROUPED: &str = include_str!("../../../../kernels/paged_attention_grouped.cu");
const PAGED_ATTENTION_MMA: &str = include_str!("../../../../kernels/paged_attention_mma.cu");

/// Most keys per partition of the attention kernels (one thread block each); the grouped
/// kernel's shared memory is sized for it.
pub const PARTITION_SIZE: usize = 512;
/// Fewest keys per partition: one turn of the grouped kernel (8 half-warps x 4 keys).
const MIN_PARTITION_SIZE: usize = 32;
/// Below this many (token, partition) pairs most SMs would idle (a KV head's block per pair).
const MIN_SPLITS: usize = 32;

/// How a step of `num_tokens` tokens splits contexts of up to `max_context_len` keys: `(keys
/// per partition, partitions launched)`. Large batches take 512-key partitions. Small ones
/// (decode at batch 1-31) halve the partition down to 32 keys until there are `MIN_SPLITS`
/// (token, partition) pairs, and launch a power-of-two number of partitions (the extra ones are
/// empty), so that a growing context changes the launch shape, and a captured step graph,
/// rarely. A pure function of its inputs: eager and graph steps split alike.
pub fn partitioning(num_tokens: usize, max_context_len: usize) -> (usize, usize) {
    let needed = |size: usize| max_context_len.div_ceil(size).max(1);
    let mut size = PARTITION_SIZE;
    while size > MIN_PARTITION_SIZE && num_tokens * needed(size) < MIN_SPLITS {
        size /= 2;
    }
    let partitions = if num_tokens < MIN_SPLITS { needed(size).next_power_of_two() } else { needed(size) };
    (size, partitions)
}
const ATTENTION_THREADS: u32 = 128;

fn attention_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_paged_attention_f32", "ember_paged_attention_f16", "ember_paged_attention_bf16"];
    kernels(&CELL, PAGED_ATTENTION, names, ATTENTION_THREADS)
}

fn reduce_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_paged_attention_reduce_f32", "ember_paged_attention_reduce_f16", "ember_paged_attention_reduce_bf16"];
    kernels(&CELL, PAGED_ATTENTION, names, ATTENTION_THREADS)
}

/// Threads of the tensor-core kernel's blocks: one warp.
const MMA_THREADS: u32 = 32;

/// The tensor-core kernel for f16/bf16 (`dtype` 1 or 2, as [`suffix`]), head_dim 64 or 128.
fn mma_kernel(dtype: usize, head_dim: usize, pipelined: bool) -> Option<&'static RawCudaKernel> {
    // [dtype f16 / bf16][head_dim 64 / 128][one buffer / two]
    static CELL: OnceLock<Vec<RawCudaKernel>> = OnceLock::new();
    let all = CELL.get_or_init(|| {
        let mut all = Vec::new();
        for dtype in ["f16", "bf16"] {
            for d in [64, 128] {
                for tag in ["", "_p"] {
                    let name: &'static str = Box::leak(format!("ember_paged_attention_mma_{dtype}_d{d}{tag}").into_boxed_str());
                    all.push(RawCudaKernel::new(PAGED_ATTENTION_MMA, name, MMA_THREADS));
                }
            }
        }
        all
    });
    let d = [64, 128].iter().position(|&d| d == head_dim)?;
    Some(&all[((dtype.checked_sub(1)?) * 2 + d) * 2 + pipelined as usize])
}

/// The grouped kernel for `dtype` (index as [`suffix`]), `head_dim` and `group` query heads per
/// KV head, when one exists (and the simple kernel is not forced).
fn grouped_kernel(dtype: usize, head_dim: usize, group: usize) -> Option<&'static RawCudaKernel> {
    if attention_kernel() == AttentionKernel::Simple {
        return None;
    }
    // [dtype][head_dim 64 / 128 / 256][G * D <= 512 / <= 1024]
    static CELL: OnceLock<Vec<RawCudaKernel>> = OnceLock::new();
    let all = CELL.get_or_init(|| {
        let mut all = Vec::new();
        for dtype in ["f32", "f16", "bf16"] {
            for d in [64, 128, 256] {
                for tag in ["g", "gl"] {
                    let name: &'static str = Box::leak(format!("ember_paged_attention_grouped_{dtype}_d{d}_{tag}").into_boxed_str());
                    all.push(RawCudaKernel::new(PAGED_ATTENTION_GROUPED, name, ATTENTION_THREADS));
                }
            }
        }
        all
    });
    let d = [64, 128, 256].iter().position(|&d| d == head_dim)?;
    let wide = match group * head_dim {
        0 => return None,
        x if x <= 512 => 0,
        x if x <= 1024 => 1,
        _ => return None,
    };
    Some(&all[(dtype * 3 + d) * 2 + wide])
}

/// The last reason a call fell back to the reference (for tests and debugging).
pub static LAST_FALLBACK: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

fn unsupported<T>(reason: String) -> Option<T> {
    if let Ok(mut last) = LAST_FALLBACK.lock() {
        *last = reason;
    }
    None
}

/// What the attention kernel needs besides tensors.
pub struct AttentionShape {
    /// Tokens per block.
    pub block_size: usize,
    /// Longest context in the step.
    pub max_context_len: usize,
}

/// Whether the attention kernel covers these parameters.
pub fn attention_supported(params: &AttentionParams) -> bool {
    params.head_dim > 0 && params.head_dim <= 256 && params.num_heads % params.num_kv_heads == 0
}

/// Paged attention of `query` (`[tokens, heads, head_dim]`) over the caches; `None` when the
/// inputs don't fit the kernel.
#[allow(clippy::too_many_arguments)]
pub fn paged_attention(
    query: &CubeTensor<CudaRuntime>,
    key_cache: &CubeTensor<CudaRuntime>,
    value_cache: &CubeTensor<CudaRuntime>,
    block_tables: &CubeTensor<CudaRuntime>,
    token_seq: &CubeTensor<CudaRuntime>,
    token_pos: &CubeTensor<CudaRuntime>,
    shape: &AttentionShape,
    params: &AttentionParams,
) -> Option<CubeTensor<CudaRuntime>> {
    let index = suffix(query.dtype).or_else(|| unsupported(format!("dtype {:?}", query.dtype)))?;
    let ints = [block_tables, token_seq, token_pos];
    let floats = [query, key_cache, value_cache];
    if !attention_supported(params) {
        return unsupported(format!("{params:?}"));
    }
    // cubecl pitches the rows of 2-d allocations on CUDA: the block table is read through its
    // row stride; everything else must be dense.
    let table_stride = block_tables.meta.strides()[0];
    if block_tables.meta.strides()[1] != 1 {
        return unsupported("a block table with non-unit column stride".into());
    }
    if let Some(t) = floats.iter().chain(&ints[1..]).find(|t| !t.is_contiguous()) {
        return unsupported(format!("a non-contiguous input {:?} / {:?}", t.meta.shape(), t.meta.strides()));
    }
    if floats.iter().any(|t| t.dtype != query.dtype) || ints.iter().any(|t| t.dtype != DType::I32) {
        let dtypes: Vec<_> = floats.iter().chain(&ints).map(|t| t.dtype).collect();
        return unsupported(format!("dtypes {dtypes:?}"));
    }
    let [tokens, heads, head_dim] = query.meta.shape().dims::<3>();
    let client = query.client.clone();
    let device = query.device.clone();
    let out = empty_device_contiguous_dtype(client.clone(), device.clone(), Shape::new([tokens, heads, head_dim]), query.dtype);
    if tokens == 0 {
        return Some(out);
    }
    if super::ablation::ablated(super::ablation::Ablation::Attention, tokens) {
        return Some(query.clone());
    }
    let (partition_size, partitions) = partitioning(tokens, shape.max_context_len);
    let group = params.num_heads / params.num_kv_heads;
    let mma = use_mma(index, head_dim, group).and_then(|pipelined| mma_kernel(index, head_dim, pipelined));
    let grouped = grouped_kernel(index, head_dim, group);
    let p = pack_u32(&[
        heads as u32,
        params.num_kv_heads as u32,
        head_dim as u32,
        shape.block_size as u32,
        table_stride as u32,
        partition_size as u32,
        partitions as u32,
        params.sliding_window.unwrap_or(0) as u32,
        params.scale.to_bits(),
        params.logit_softcap.unwrap_or(0.0).to_bits(),
    ]);
    // Partial states when split; 1-element placeholders otherwise (never read).
    let split = partitions > 1;
    let tmp = |dims: Vec<usize>| empty_device_contiguous_dtype(client.clone(), device.clone(), Shape::from(dims), DType::F32);
    let tmp_out = tmp(if split { vec![tokens, heads, partitions, head_dim] } else { vec![1] });
    let tmp_max = tmp(if split { vec![tokens, heads, partitions] } else { vec![1] });
    let tmp_sum = tmp(if split { vec![tokens, heads, partitions] } else { vec![1] });
    let buffers = vec![
        query.handle.clone(),
        key_cache.handle.clone(),
        value_cache.handle.clone(),
        block_tables.handle.clone(),
        token_seq.handle.clone(),
        token_pos.handle.clone(),
        out.handle.clone(),
        tmp_out.handle.clone(),
        tmp_max.handle.clone(),
        tmp_sum.handle.clone(),
    ];
    let grid = (tokens as u32, params.num_kv_heads as u32, partitions as u32);
    match mma.or(grouped) {
        Some(kernel) => launch(&client, kernel, grid, buffers, p.clone()),
        None => launch(&client, &attention_kernels().0[index], (tokens as u32, heads as u32, partitions as u32), buffers, p.clone()),
    }
    if split {
        let buffers = vec![
            tmp_out.handle.clone(),
            tmp_max.handle.clone(),
            tmp_sum.handle.clone(),
            out.handle.clone(),
        ];
        launch(&client, &reduce_kernels().0[index], (tokens as u32, heads as u32, 1), buffers, p);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::partitioning;

    #[test]
    fn small_batches_get_short_partitions_in_power_of_two_counts() {
        // Batch 1 at 129..=256 keys: 32-key partitions, 8 launched (some empty), one shape.
        assert_eq!(partitioning(1, 129), (32, 8));
        assert_eq!(partitioning(1, 256), (32, 8));
        assert_eq!(partitioning(1, 257), (32, 16));
        // Long contexts stop halving once there are 32 splits.
        assert_eq!(partitioning(1, 2048), (64, 32));
        assert_eq!(partitioning(1, 20), (32, 1));
        assert_eq!(partitioning(8, 190), (32, 8));
        // Large batches keep 512-key partitions, exactly as many as needed.
        assert_eq!(partitioning(256, 190), (512, 1));
        assert_eq!(partitioning(256, 1100), (512, 3));
        for tokens in [1, 3, 8, 31, 32, 1000] {
            for ctx in [1, 17, 300, 513, 5000] {
                let (size, parts) = partitioning(tokens, ctx);
                assert!((32..=512).contains(&size) && size.is_power_of_two());
                assert!(size * parts >= ctx, "{tokens} x {ctx}: {size} x {parts} keys");
            }
        }
    }
}
