//! The reference paged attention against a naive dense attention written in plain Rust:
//! random caches, random block tables, GQA, mixed decode/prefill batches, sliding windows and
//! soft-capping. This is the oracle the custom kernels are later held to.

use burn_ndarray::NdArray;
use burn_tensor::{Tensor, TensorData};
use ember_kernels::{
    AttentionMetadata, AttentionParams, BatchLayout, KvCache, KvCacheSpec, PagedAttentionBackend,
};

type B = NdArray<f32>;

/// Deterministic pseudo-random floats in [-1, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.next()).collect()
    }
}

struct Case {
    block_size: usize,
    num_blocks: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    /// (num_computed, query_len, block_table)
    seqs: Vec<(usize, usize, Vec<u32>)>,
    window: Option<usize>,
    softcap: Option<f32>,
}

fn run_case(case: &Case, seed: u64) {
    let device = Default::default();
    let mut rng = Lcg(seed);
    let (bs, kvh, hd, h) = (case.block_size, case.kv_heads, case.head_dim, case.heads);
    let layout = BatchLayout::from_sequences(bs, case.seqs.clone());
    layout.validate(case.num_blocks).unwrap();
    let num_tokens = layout.num_tokens();

    // Host copies of the whole cache (old contents) and of the new tokens.
    let cache_len = case.num_blocks * bs * kvh * hd;
    let mut host_k = rng.vec(cache_len);
    let mut host_v = rng.vec(cache_len);
    let new_k = rng.vec(num_tokens * kvh * hd);
    let new_v = rng.vec(num_tokens * kvh * hd);
    let q = rng.vec(num_tokens * h * hd);

    let spec = KvCacheSpec {
        num_layers: 1,
        num_blocks: case.num_blocks,
        block_size: bs,
        num_kv_heads: kvh,
        head_dim: hd,
        dtype: burn_tensor::DType::F32,
    };
    let mut cache = KvCache::<B>::new(spec, &device);
    let mut layer = cache.take_layer(0);
    let shape = [case.num_blocks, bs, kvh, hd];
    layer.key = Tensor::from_data(TensorData::new(host_k.clone(), shape), &device);
    layer.value = Tensor::from_data(TensorData::new(host_v.clone(), shape), &device);

    let metadata = AttentionMetadata::<B>::new(&layout, &[case.window], &device);
    let tok = |v: &Vec<f32>, heads| Tensor::<B, 3>::from_data(TensorData::new(v.clone(), [num_tokens, heads, hd]), &device);
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
    let out: Vec<f32> = out.into_data().to_vec().unwrap();

    // Host: write new tokens, then dense attention per token.
    let slots = layout.slot_mapping();
    for (t, &slot) in slots.iter().enumerate() {
        let dst = slot as usize * kvh * hd;
        host_k[dst..dst + kvh * hd].copy_from_slice(&new_k[t * kvh * hd..(t + 1) * kvh * hd]);
        host_v[dst..dst + kvh * hd].copy_from_slice(&new_v[t * kvh * hd..(t + 1) * kvh * hd]);
    }
    let cached_k: Vec<f32> = layer.key.into_data().to_vec().unwrap();
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
    assert!(max_err < 1e-5, "max abs error {max_err}");
}

#[test]
fn decode_only_batch_with_gqa() {
    run_case(
        &Case {
            block_size: 4, num_blocks: 12, heads: 4, kv_heads: 2, head_dim: 8,
            seqs: vec![(5, 1, vec![3, 7]), (0, 1, vec![1]), (10, 1, vec![2, 0, 9])],
            window: None, softcap: None,
        },
        1,
    );
}

#[test]
fn mixed_prefill_and_decode_out_of_order() {
    // decode, prefill chunk with a cached prefix, decode, fresh prefill: groups are reordered.
    run_case(
        &Case {
            block_size: 4, num_blocks: 16, heads: 6, kv_heads: 3, head_dim: 4,
            seqs: vec![
                (6, 1, vec![4, 5]),
                (4, 7, vec![0, 11, 12]),
                (3, 1, vec![6]),
                (0, 5, vec![13, 14]),
            ],
            window: None, softcap: None,
        },
        2,
    );
}

#[test]
fn sliding_window_and_softcap() {
    run_case(
        &Case {
            block_size: 2, num_blocks: 20, heads: 2, kv_heads: 1, head_dim: 8,
            seqs: vec![(0, 9, vec![1, 2, 3, 4, 5]), (9, 1, vec![6, 7, 8, 9, 10])],
            window: Some(3), softcap: Some(0.5),
        },
        3,
    );
}

#[test]
fn copy_blocks_copies_whole_blocks() {
    let device = Default::default();
    let spec = KvCacheSpec { num_layers: 1, num_blocks: 4, block_size: 2, num_kv_heads: 1, head_dim: 2, dtype: burn_tensor::DType::F32 };
    let mut cache = KvCache::<B>::new(spec, &device);
    let mut layer = cache.take_layer(0);
    let values: Vec<f32> = (0..16).map(|i| i as f32).collect();
    layer.key = Tensor::from_data(TensorData::new(values.clone(), [4, 2, 1, 2]), &device);
    layer.value = layer.key.clone() * 10.0;
    let src = Tensor::from_data(TensorData::new(vec![1i64, 3], [2]), &device);
    let dst = Tensor::from_data(TensorData::new(vec![0i64, 2], [2]), &device);
    let layer = B::copy_blocks(layer, src, dst);
    let k: Vec<f32> = layer.key.into_data().to_vec().unwrap();
    assert_eq!(k, vec![4., 5., 6., 7., 4., 5., 6., 7., 12., 13., 14., 15., 12., 13., 14., 15.]);
    let v: Vec<f32> = layer.value.into_data().to_vec().unwrap();
    assert_eq!(v[0], 40.0);
}
