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

/// `ember_kernels::LinearBackend::linear` on cuda (the GEMV kernel for up to 8 rows) against a
/// host f32 product of the same dtype-rounded inputs (f32: both sides sum 14,336 products in
/// different orders, so 1e-4 of the row scale; burn's TF32 matmul would be ~1e-3).
#[test]
fn gemv_matches_a_host_matmul_in_every_dtype() {
    use attention_oracle::Lcg;
    use burn_tensor::{Tensor, TensorData};
    use ember_kernels::LinearBackend;
    if !enabled() {
        return;
    }
    let device = Default::default();
    let mut failures = Vec::new();
    for (dtype, rel) in [(DType::F32, 1e-4f32), (DType::F16, 2e-3), (DType::BF16, 1.6e-2)] {
        for (m, k, n) in [(1, 4096, 1000), (3, 1024, 777), (8, 14336, 256)] {
            let mut rng = Lcg(7 + m as u64);
            let x = rng.vec(m * k, dtype);
            let w = rng.vec(n * k, dtype);
            let xt = Tensor::<CudaBackend, 2>::from_data(TensorData::new(x.clone(), [m, k]), (&device, dtype));
            let wt = Tensor::<CudaBackend, 2>::from_data(TensorData::new(w.clone(), [n, k]), (&device, dtype));
            let y: Vec<f32> = <CudaBackend as LinearBackend>::linear(xt, wt).into_data().convert::<f32>().to_vec().unwrap();
            let mut worst = 0f32;
            for i in 0..m {
                for j in 0..n {
                    let exact: f32 = (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum();
                    // Relative to the row's scale: sums of k products of uniforms are ~sqrt(k/9).
                    let scale = (k as f32 / 9.0).sqrt();
                    worst = worst.max((y[i * n + j] - exact).abs() / scale);
                }
            }
            println!("gemv {dtype:?} m {m} k {k} n {n}: max error / sqrt(k/9) = {worst:.2e}");
            if worst >= rel {
                failures.push(format!("{dtype:?} m {m} k {k} n {n}: {worst:.2e} (tolerance {rel:.0e})"));
            }
        }
    }
    assert!(failures.is_empty(), "gemv off the host product:\n{}", failures.join("\n"));
}
