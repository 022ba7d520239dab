//! Which paged-attention kernel a launch uses: the tensor-core kernel
//! (`kernels/paged_attention_mma.cu`) for f16/bf16 with head_dim 64/128 and up to 8 query
//! heads per KV head (on the H200 it beat the grouped kernel at every batch measured: 1, 8,
//! 32, 64 and 1000 sequences), the grouped kernel
//! (`kernels/paged_attention_grouped.cu`) for the other shapes it covers, and the per-head
//! kernel (`kernels/paged_attention.cu`) for the rest. `EMBER_CUDA_ATTENTION` (`simple`,
//! `grouped`, `mma`, `mma_pipelined`) or [`set_attention_kernel`] force one where it applies,
//! to compare them and to test each.

use std::sync::atomic::{AtomicU8, Ordering};

/// A paged-attention kernel, or `Auto` for the per-shape choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttentionKernel {
    /// The tensor-core kernel where it covers the shape, the grouped kernel otherwise.
    Auto,
    /// `paged_attention.cu` everywhere.
    Simple,
    /// `paged_attention_grouped.cu` wherever it covers the shape.
    Grouped,
    /// `paged_attention_mma.cu` (one buffer of 16 keys) wherever it covers the shape.
    Mma,
    /// `paged_attention_mma.cu` with the next 16 keys' loads in flight (two buffers).
    MmaPipelined,
}

const ALL: [AttentionKernel; 5] =
    [AttentionKernel::Auto, AttentionKernel::Simple, AttentionKernel::Grouped, AttentionKernel::Mma, AttentionKernel::MmaPipelined];
const UNSET: u8 = u8::MAX;
static CHOICE: AtomicU8 = AtomicU8::new(UNSET);

/// Forces `kernel` for the launches after this call (process-wide).
pub fn set_attention_kernel(kernel: AttentionKernel) {
    CHOICE.store(ALL.iter().position(|&k| k == kernel).unwrap_or(0) as u8, Ordering::Relaxed);
}

/// The forced kernel, from [`set_attention_kernel`] or else `EMBER_CUDA_ATTENTION`.
pub fn attention_kernel() -> AttentionKernel {
    let index = CHOICE.load(Ordering::Relaxed);
    if index != UNSET {
        return ALL[index as usize];
    }
    let kernel = match std::env::var("EMBER_CUDA_ATTENTION").as_deref() {
        Ok("simple") => AttentionKernel::Simple,
        Ok("grouped") => AttentionKernel::Grouped,
        Ok("mma") => AttentionKernel::Mma,
        Ok("mma_pipelined") => AttentionKernel::MmaPipelined,
        _ => AttentionKernel::Auto,
    };
    set_attention_kernel(kernel);
    kernel
}

/// What runs a launch: `Some(pipelined)` for the tensor-core kernel, `None` for the others.
/// `dtype` indexes f32 / f16 / bf16.
pub(super) fn use_mma(dtype: usize, head_dim: usize, group: usize) -> Option<bool> {
    let covered = dtype > 0 && matches!(head_dim, 64 | 128) && (1..=8).contains(&group);
    match attention_kernel() {
        _ if !covered => None,
        AttentionKernel::Auto | AttentionKernel::Mma => Some(false),
        AttentionKernel::MmaPipelined => Some(true),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::use_mma;

    #[test]
    fn the_tensor_core_kernel_takes_the_half_precision_shapes_it_covers() {
        // Under the default choice (no EMBER_CUDA_ATTENTION in the test environment).
        if std::env::var("EMBER_CUDA_ATTENTION").is_ok() {
            return;
        }
        assert_eq!(use_mma(2, 128, 4), Some(false));
        assert_eq!(use_mma(1, 64, 8), Some(false));
        assert_eq!(use_mma(0, 128, 4), None, "f32 keeps f32 products");
        assert_eq!(use_mma(2, 256, 2), None);
        assert_eq!(use_mma(2, 128, 16), None);
    }
}
