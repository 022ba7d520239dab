//! A naive dense attention in plain Rust, the oracle for every paged-attention implementation:
//! random caches and block tables, GQA, mixed decode/prefill batches, sliding windows and
//! soft-capping. `run_case::<B>` runs `reshape_and_cache` then `paged_attention` of backend `B`
//! (reference ops or custom kernels) in a given dtype and compares with the host computation
//! on the same (dtype-rounded) inputs. Shared by `reference_attention.rs` and, through
//! `#[path]`, by the workspace's `tests/cuda_kernels.rs`.

#![allow(dead_code)]

use burn_tensor::{DType, Tensor, TensorData};
use ember_kernels::{AttentionMetadata, AttentionParams, BatchLayout, KvCache, KvCacheSpec, PagedAttentionBackend};

/// `x` rounded to `dtype`'s precision.
pub fn round(x: f32, dtype: DType) -> f32 {
    match dtype {
        DType::F16 => burn_tensor::f16::from_f32(x).to_f32(),
        DType::BF16 => burn_tensor::bf16::from_f32(x).to_f32(),
        _ => x,
    }
}

/// Deterministic pseudo-random floats in [-1, 1).
pub struct Lcg(pub u64);
impl Lcg {
    pub fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    /// `n` values, rounded to `dtype` so that host and device see the same numbers.
    pub fn vec(&mut self, n: usize, dtype: DType) -> Vec<f32> {
        (0..n).map(|_| round(self.next(), dtype)).collect()
    }
}

pub struct Case {
    pub block_size: usize,
    pub num_blocks: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    /// (num_computed, query_len, block_table)
    pub seqs: Vec<(usize, usize, Vec<u32>)>,
    pub window: Option<usize>,
    pub softcap: Option<f32>,
}

pub fn run_case<B: PagedAttentionBackend>(case: &Case, seed: u64, dtype: DType, tolerance: f32) -> f32 {
    let device: B::Device = Default::default();
    let mut rng = Lcg(seed);
    let (bs, kvh, hd, h) = (case.block_size, case.kv_heads, case.head_dim, case.heads);
    let layout = BatchLayout::from_sequences(bs, case.seqs.clone());
    layout.validate(case.num_blocks).unwrap();
    let num_tokens = layout.num_tokens();

    // Host copies of the whole cache (old contents) and of the new tokens.
    let cache_len = case.num_blocks * bs * kvh * hd;
    let mut host_k = rng.vec(cache_len, dtype);
    let mut host_v = rng.vec(cache_len, dtype);
    let new_k = rng.vec(num_tokens * kvh * hd, dtype);
    let new_v = rng.vec(num_tokens * kvh * hd, dtype);
    let q = rng.vec(num_tokens * h * hd, dtype);

    let spec = KvCacheSpec {
        num_layers: 1,
        num_blocks: case.num_blocks,
        block_size: bs,
        num_kv_heads: kvh,
        head_dim: hd,
        dtype,
    };
    let mut cache = KvCache::<B>::new(spec, &device);
    let mut layer = cache.take_layer(0);
    let shape = [case.num_blocks, bs, kvh, hd];
    layer.key = Tensor::from_data(TensorData::new(host_k.clone(), shape), (&device, dtype));
    layer.value = Tensor::from_data(TensorData::new(host_v.clone(), shape), (&device, dtype));

    let metadata = AttentionMetadata::<B>::new(&layout, &[case.window], &device);
    let tok = |v: &Vec<f32>, heads| Tensor::<B, 3>::from_data(TensorData::new(v.clone(), [num_tokens, heads, hd]), (&device, dtype));
    let layer = B::reshape_and_cache(layer, tok(&new_k, kvh), tok(&new_v, kvh), &metadata);
    let params = AttentionParams {
        num_heads: h,
        num_kv_heads: kvh,
        head_dim: hd,
        scale: 1.0 / (hd as f32).sqrt(),
        logit_softcap: case.softcap,
        sliding_window: case.window,
    };
    let out = B::paged_attention(tok(&q, h), &layer, &metadata, &params);
    let out: Vec<f32> = out.into_data().convert::<f32>().to_vec().unwrap();

    // Host: write new tokens, then dense attention per token.
    let slots = layout.slot_mapping();
    for (t, &slot) in slots.iter().enumerate() {
        let dst = slot as usize * kvh * hd;
        host_k[dst..dst + kvh * hd].copy_from_slice(&new_k[t * kvh * hd..(t + 1) * kvh * hd]);
        host_v[dst..dst + kvh * hd].copy_from_slice(&new_v[t * kvh * hd..(t + 1) * kvh * hd]);
    }
    let cached_k: Vec<f32> = layer.key.into_data().convert::<f32>().to_vec().unwrap();
    assert_eq!(cached_k, host_k, "reshape_and_cache wrote the wrong slots");

    let mut max_err = 0f32;
    for seq in &layout.seqs {
        for i in 0..seq.query_len {
            let t = seq.query_start + i;
            let pos = seq.first_position() + i;
            let lo = case.window.map_or(0, |w| (pos + 1).saturating_sub(w));
            for head in 0..h {
                let kv = head / (h / kvh);
                let qv = &q[(t * h + head) * hd..][..hd];
                let slot = |j: usize| seq.block_table[j / bs] as usize * bs + j % bs;
                let scores: Vec<f32> = (lo..=pos)
                    .map(|j| {
                        let kvec = &host_k[(slot(j) * kvh + kv) * hd..][..hd];
                        let mut s = qv.iter().zip(kvec).map(|(a, b)| a * b).sum::<f32>() * params.scale;
                        if let Some(cap) = case.softcap {
                            s = (s / cap).tanh() * cap;
                        }
                        s
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
                let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f32 = exps.iter().sum();
                for d in 0..hd {
                    let expected: f32 = (lo..=pos)
                        .zip(&exps)
                        .map(|(j, e)| e / sum * host_v[(slot(j) * kvh + kv) * hd + d])
                        .sum();
                    let got = out[(t * h + head) * hd + d];
                    max_err = max_err.max((got - expected).abs());
                }
            }
        }
    }
    assert!(max_err < tolerance, "max abs error {max_err} (tolerance {tolerance}, {dtype:?})");
    max_err
}

