//! The q/k/v GEMV with the rotary embedding and the cache write in its epilogue
//! (`PagedAttentionBackend::deferred_qkv_rope_and_cache`, `kernels/gemv_rope.cu`) against the
//! two kernels it replaces on the same device and inputs: the deferred norm's q/k/v GEMV, then
//! the fused split/rotary/cache kernel. The same bits: q, and both whole caches (the token's
//! slot written, every other slot untouched), in f32, f16 and bf16, with and without a bias,
//! head_dim 64 and 128, at a few positions. Needs an NVIDIA GPU: runs when
//! `EMBER_TEST_CUDA=1`, skips with the reason otherwise.

#![cfg(feature = "cuda")]

#[path = "../crates/ember-kernels/tests/attention_oracle/mod.rs"]
mod attention_oracle;

use attention_oracle::Lcg;
use burn_tensor::{DType, Int, Tensor, TensorData};
use ember::CudaBackend;
use ember_kernels::{AttentionMetadata, BatchLayout, KvCache, KvCacheSpec, LayerOpsBackend, LinearBackend, NormStyle, PagedAttentionBackend, QkvShape, RmsNormWeights};

type B = CudaBackend;

#[test]
fn rope_in_the_qkv_gemv_matches_the_gemv_then_the_rope_kernel() {
    if std::env::var("EMBER_TEST_CUDA").map_or(true, |v| v != "1") {
        eprintln!("skipping the CUDA q/k/v + rope test: set EMBER_TEST_CUDA=1 on a machine with an NVIDIA GPU");
        return;
    }
    let device = Default::default();
    let bits = |t: Tensor<B, 3>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
    let bits4 = |t: Tensor<B, 4>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        // (heads, kv heads, head_dim, hidden, bias, position)
        for (h, kvh, d, hidden, bias, pos) in [(32usize, 8usize, 128usize, 4096usize, false, 130usize), (8, 2, 64, 512, true, 5), (4, 4, 128, 256, false, 0)] {
            let (bs, num_blocks) = (16usize, 32usize);
            let mut rng = Lcg((h * d + hidden + pos) as u64);
            let tensor = |rng: &mut Lcg, dims: [usize; 2]| Tensor::<B, 2>::from_data(TensorData::new(rng.vec(dims[0] * dims[1], dtype), dims), (&device, dtype));
            let n = (h + 2 * kvh) * d;
            let (x, w_o, residual, w_qkv) = (tensor(&mut rng, [1, hidden]), tensor(&mut rng, [hidden, hidden]), tensor(&mut rng, [1, hidden]), tensor(&mut rng, [n, hidden]));
            let b_qkv = bias.then(|| Tensor::<B, 1>::from_data(TensorData::new(rng.vec(n, dtype), [n]), (&device, dtype)));
            let scale: Vec<f32> = (0..hidden).map(|_| 1.0 + 0.5 * rng.next()).collect();
            let norm = RmsNormWeights { scale: Tensor::from_data(TensorData::new(scale, [hidden]), (&device, DType::F32)), eps: 1e-5, style: NormStyle::Weight };
            let deferred = B::linear_residual_norm(&x, &w_o, None, &residual, &norm).expect("the producer takes one row");

            // One decode token at `pos`, its slot in the sequence's third block.
            let layout = BatchLayout::from_sequences(bs, vec![(pos, 1usize, vec![4u32, 9, 17, 2, 11, 6, 30, 21, 8, 13])]);
            let metadata = AttentionMetadata::<B>::new(&layout, &[None], &device);
            let max_pos = 512;
            let table = |f: fn(f32) -> f32| {
                let v: Vec<f32> = (0..max_pos * d / 2).map(|i| f((i / (d / 2)) as f32 / (1.0 + (i % (d / 2)) as f32))).collect();
                Tensor::<B, 2>::from_data(TensorData::new(v, [max_pos, d / 2]), (&device, DType::F32))
            };
            let positions = Tensor::<B, 1, Int>::from_data(TensorData::new(vec![pos as i32], [1]), (&device, DType::I32));
            let rope = B::rope_for_step(table(f32::cos), table(f32::sin), positions, dtype);
            let spec = KvCacheSpec { num_layers: 1, num_blocks, block_size: bs, num_kv_heads: kvh, head_dim: d, dtype };
            let old = rng.vec(num_blocks * bs * kvh * d, dtype);
            let fresh_layer = || {
                let mut cache = KvCache::<B>::new(spec, &device);
                let mut layer = cache.take_layer(0);
                layer.key = Tensor::from_data(TensorData::new(old.clone(), [num_blocks, bs, kvh, d]), (&device, dtype));
                layer.value = Tensor::from_data(TensorData::new(old.iter().map(|v| -v).collect::<Vec<f32>>(), [num_blocks, bs, kvh, d]), (&device, dtype));
                layer
            };
            let shape = QkvShape { num_heads: h, num_kv_heads: kvh, head_dim: d };
            let what = format!("{dtype:?} heads {h}/{kvh} head_dim {d} hidden {hidden} bias {bias} position {pos}");

            let (q, fused) = B::deferred_qkv_rope_and_cache(&deferred, &w_qkv, b_qkv.as_ref(), shape, &rope, fresh_layer(), &metadata)
                .unwrap_or_else(|_| panic!("{what}: the fused kernel did not take the inputs"));
            let qkv = B::linear_deferred_norm(&deferred, &w_qkv, b_qkv.as_ref()).expect("the consumer takes the producer's output");
            let (q_ref, separate) = B::split_qkv_rope_and_cache(qkv, shape, None, &rope, fresh_layer(), &metadata);
            assert_eq!(bits(q), bits(q_ref), "{what}: q differs");
            let (fk, sk) = (bits4(fused.key), bits4(separate.key));
            assert_ne!(fk, old, "{what}: no key was written");
            assert_eq!(fk, sk, "{what}: the key caches differ");
            assert_eq!(bits4(fused.value), bits4(separate.value), "{what}: the value caches differ");
            println!("q/k/v + rope in one kernel, {what}: the same q and caches as the two kernels");
        }
    }
    assert_eq!(ember_kernels::cuda::linear_fallbacks() + ember_kernels::cuda::layer_op_fallbacks(), 0, "a kernel fell back");
}
