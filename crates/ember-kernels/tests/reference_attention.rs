//! The reference paged attention (plain burn ops, on burn-ndarray) against the dense host
//! oracle in `attention_oracle/`. This is the oracle the custom kernels are held to as well.

mod attention_oracle;

use attention_oracle::{Case, run_case};
use burn_ndarray::NdArray;
use burn_tensor::{DType, Tensor, TensorData};
use ember_kernels::{KvCache, KvCacheSpec, PagedAttentionBackend};

type B = NdArray<f32>;

fn check(case: &Case, seed: u64) {
    run_case::<B>(case, seed, DType::F32, 1e-5);
}

#[test]
fn decode_only_batch_with_gqa() {
    check(
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
    check(
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
    check(
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
