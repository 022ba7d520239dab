//! Parity of the CUDA kernels (`kernels/*.cu`) with the dense host oracle that the reference
//! attention is held to (`crates/ember-kernels/tests/attention_oracle/`): reshape_and_cache
//! exactly, paged attention within each dtype's rounding, over head_dim 64/128/256, GQA,
//! mixed decode/prefill batches, contexts long enough to split into partitions, Gemma2's
//! soft-capping and sliding windows. Needs an NVIDIA GPU: runs when `EMBER_TEST_CUDA=1`
//! (run it with `scripts/gpu_check.sh` on the GPU machine), skips with the reason otherwise.

#![cfg(feature = "cuda")]

#[path = "../crates/ember-kernels/tests/attention_oracle/mod.rs"]
mod attention_oracle;

use attention_oracle::{Case, run_case};
use burn_tensor::DType;
use ember::CudaBackend;

fn enabled() -> bool {
    let on = std::env::var("EMBER_TEST_CUDA").is_ok_and(|v| v == "1");
    if !on {
        eprintln!("skipping the CUDA kernel parity tests: set EMBER_TEST_CUDA=1 on a machine with an NVIDIA GPU");
    }
    on
}

/// Distinct random-looking blocks for `n` sequences of `blocks` blocks each.
fn tables(lens: &[usize], block_size: usize) -> Vec<Vec<u32>> {
    let mut next = 0u32;
    lens.iter()
        .map(|&len| {
            (0..len.div_ceil(block_size))
                .map(|_| {
                    next += 1;
                    (next * 7919) % 4096
                })
                .collect()
        })
        .collect()
}

fn case(head_dim: usize, heads: usize, kv_heads: usize, window: Option<usize>, softcap: Option<f32>) -> Case {
    // (num_computed, query_len): decodes (one long enough for 3 partitions), a chunked prefill
    // over a cached prefix, and a fresh prompt.
    let shapes = [(1300usize, 1usize), (40, 1), (0, 1), (600, 37), (0, 70), (15, 1)];
    let block_size = 16;
    let lens: Vec<usize> = shapes.iter().map(|(c, q)| c + q).collect();
    let seqs = shapes.iter().zip(tables(&lens, block_size)).map(|(&(c, q), t)| (c, q, t)).collect();
    Case { block_size, num_blocks: 4096, heads, kv_heads, head_dim, seqs, window, softcap }
}

#[test]
fn paged_attention_matches_the_oracle_in_every_dtype() {
    if !enabled() {
        return;
    }
    let dtypes = [(DType::F32, 2e-5), (DType::F16, 2e-3), (DType::BF16, 1.6e-2)];
    let shapes = [(64, 8, 2, None, None), (128, 8, 8, Some(1), None), (128, 32, 8, None, None), (256, 8, 4, Some(100), Some(50.0)), (128, 4, 4, Some(700), None)];
    let mut failures = Vec::new();
    for (dtype, tolerance) in dtypes {
        for (i, &(hd, h, kvh, window, softcap)) in shapes.iter().enumerate() {
            // The oracle's own assertion is relaxed so that every case is reported; the
            // tolerance is checked here.
            let before = ember_kernels::cuda::fallbacks();
            let err = run_case::<CudaBackend>(&case(hd, h, kvh, window, softcap), 100 + i as u64, dtype, f32::INFINITY);
            let line = format!("{dtype:?} head_dim {hd} heads {h}/{kvh} window {window:?} softcap {softcap:?}: max abs error {err:.2e}");
            println!("{line} fallbacks {before:?} -> {:?} {}", ember_kernels::cuda::fallbacks(), ember_kernels::cuda::LAST_FALLBACK.lock().unwrap());
            if err >= tolerance {
                failures.push(format!("{line} (tolerance {tolerance:.0e})"));
            }
        }
    }
    assert_eq!(ember_kernels::cuda::fallbacks(), (0, 0), "(reshape_and_cache, paged_attention) calls that ran the reference ops");
    assert!(failures.is_empty(), "kernel results off the oracle:\n{}", failures.join("\n"));
}
