//! Parity of the CUDA kernels (`kernels/*.cu`) with the dense host oracle that the reference
//! attention is held to (`crates/ember-kernels/tests/attention_oracle/`): reshape_and_cache
//! exactly, paged attention within each dtype's rounding, over head_dim 16/64/128/256, GQA
//! groups of 1-16, on each kernel in turn (the default choice, which sends f16/bf16 with head_dim
//! 64/128 and groups up to 8 to `kernels/paged_attention_mma.cu`; then
//! the grouped kernel, the tensor-core kernel with two buffers, and the per-head kernel, each
//! where it applies), mixed decode/prefill batches, contexts long enough to split into partitions, Gemma2's
//! soft-capping and sliding windows; the linear layers' GEMV/GEMM against a host product; the
//! fused layer ops against their reference bodies (`ember_kernels::reference::layer_ops`).
//! Needs an NVIDIA GPU: runs when `EMBER_TEST_CUDA=1`
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
    use ember_kernels::cuda::{AttentionKernel, set_attention_kernel};
    let dtypes = [(DType::F32, 2e-5), (DType::F16, 2e-3), (DType::BF16, 1.6e-2)];
    let shapes = [(16, 4, 2, None, None), (64, 8, 2, None, None), (128, 8, 8, Some(1), None), (128, 32, 8, None, None), (256, 8, 4, Some(100), Some(50.0)), (128, 4, 4, Some(700), None), (128, 28, 4, None, None), (64, 16, 1, Some(300), None), (128, 16, 2, None, Some(30.0))];
    let kernels = [AttentionKernel::Auto, AttentionKernel::Grouped, AttentionKernel::MmaPipelined, AttentionKernel::Simple];
    let mut failures = Vec::new();
    for (kernel, (dtype, tolerance)) in kernels.iter().flat_map(|&k| dtypes.iter().map(move |&d| (k, d))) {
        set_attention_kernel(kernel);
        for (i, &(hd, h, kvh, window, softcap)) in shapes.iter().enumerate() {
            // The oracle's own assertion is relaxed so that every case is reported; the
            // tolerance is checked here.
            let before = ember_kernels::cuda::fallbacks();
            let err = run_case::<CudaBackend>(&case(hd, h, kvh, window, softcap), 100 + i as u64, dtype, f32::INFINITY);
            let line = format!("{kernel:?} {dtype:?} head_dim {hd} heads {h}/{kvh} window {window:?} softcap {softcap:?}: max abs error {err:.2e}");
            println!("{line} fallbacks {before:?} -> {:?} {}", ember_kernels::cuda::fallbacks(), ember_kernels::cuda::LAST_FALLBACK.lock().unwrap());
            if err >= tolerance {
                failures.push(format!("{line} (tolerance {tolerance:.0e})"));
            }
        }
    }
    set_attention_kernel(AttentionKernel::Auto);
    assert_eq!(ember_kernels::cuda::fallbacks(), (0, 0), "(reshape_and_cache, paged_attention) calls that ran the reference ops");
    assert!(failures.is_empty(), "kernel results off the oracle:\n{}", failures.join("\n"));
}

/// `ember_kernels::LinearBackend::linear` on cuda (the GEMV kernel for up to 8 rows, the GEMM
/// above) against a host f32 product of the same dtype-rounded inputs (f32: both sides sum up
/// to 14,336 products in different orders, so 1e-4 of the row scale; burn's TF32 matmul would
/// be ~1e-3). The GEMM shapes cross its 128-row/column tiles and its 32-deep K steps; rows of
/// 1,032 or 300 elements are pitched by cubecl (padded row strides); half the shapes have a bias.
/// On Hopper, f16/bf16 shapes with N % 8 == 0 above 8 rows run `kernels/gemm_sm90.cu`: its
/// 64 x 128 tiles up to 300 rows, 128 x 128 at 1,100 x 1,032, 128 x 256 at 1,000 x 4,088 and
/// 128 x 192 at 1,000 x 6,136, with ragged edges and K tails of its 64-deep stages; split-K
/// (turned on here; 4 K ranges and the reduce kernel) at 100 x 1,000, 64 x 128 (with a bias), 256 x 512 and
/// 200 x 1,024 (K = 4,104: 65 K tiles in runs of 17, with a bias); the others, and every shape under
/// `EMBER_CUDA_GEMM=mma`, run `kernels/gemm.cu`.
#[test]
fn linear_matches_a_host_matmul_in_every_dtype() {
    use attention_oracle::Lcg;
    use burn_tensor::{Tensor, TensorData};
    use ember_kernels::LinearBackend;
    if !enabled() {
        return;
    }
    let device = Default::default();
    let mut failures = Vec::new();
    ember_kernels::cuda::set_gemm_split_k(true); // the default, unless EMBER_CUDA_GEMM_SPLIT_K=0; these shapes test it
    for (dtype, rel) in [(DType::F32, 1e-4f32), (DType::F16, 2e-3), (DType::BF16, 1.6e-2)] {
        let shapes = [(1, 4096, 1000), (3, 1024, 777), (8, 14336, 256), (9, 4096, 300), (100, 2048, 1000), (129, 1032, 777), (300, 512, 260), (64, 14336, 128), (300, 520, 264), (1100, 328, 1032), (1000, 328, 4088), (1000, 328, 6136), (256, 4096, 512), (200, 4104, 1024)];
        for (s, (m, k, n)) in shapes.into_iter().enumerate() {
            let mut rng = Lcg(7 + m as u64);
            let x = rng.vec(m * k, dtype);
            let w = rng.vec(n * k, dtype);
            // Every other shape with a bias (added before rounding, like torch's addmm).
            let bias = (s % 2 == 1).then(|| rng.vec(n, dtype));
            let xt = Tensor::<CudaBackend, 2>::from_data(TensorData::new(x.clone(), [m, k]), (&device, dtype));
            let wt = Tensor::<CudaBackend, 2>::from_data(TensorData::new(w.clone(), [n, k]), (&device, dtype));
            let bt = bias.clone().map(|b| Tensor::<CudaBackend, 1>::from_data(TensorData::new(b, [n]), (&device, dtype)));
            let y: Vec<f32> = <CudaBackend as LinearBackend>::linear(xt, wt, bt).into_data().convert::<f32>().to_vec().unwrap();
            let mut worst = 0f32;
            for i in 0..m {
                for j in 0..n {
                    let exact: f32 = (0..k).map(|t| x[i * k + t] * w[j * k + t]).sum::<f32>() + bias.as_ref().map_or(0.0, |b| b[j]);
                    // Relative to the row's scale: sums of k products of uniforms are ~sqrt(k/9).
                    let scale = (k as f32 / 9.0).sqrt();
                    worst = worst.max((y[i * n + j] - exact).abs() / scale);
                }
            }
            println!("linear {dtype:?} m {m} k {k} n {n}: max error / sqrt(k/9) = {worst:.2e}");
            if worst >= rel {
                failures.push(format!("{dtype:?} m {m} k {k} n {n}: {worst:.2e} (tolerance {rel:.0e})"));
            }
        }
    }
    assert_eq!(ember_kernels::cuda::linear_fallbacks(), 0, "linear products that ran on burn's matmul");
    let hopper = ember_kernels::cuda::gemm_sm90_available(0);
    println!("Hopper GEMM: available {hopper}, {} products on it", ember_kernels::cuda::gemm_sm90_launches());
    if hopper {
        assert!(ember_kernels::cuda::gemm_sm90_launches() >= 10, "the Hopper GEMM did not run");
    }
    assert!(failures.is_empty(), "linear off the host product:\n{}", failures.join("\n"));
}

/// The gate/up GEMV with the activation fused in (`linear_act_and_mul`, one row) against the
/// GEMV followed by `act_and_mul`: the same sums in the same order and the same roundings, so
/// the same bits (both are held to the host product and the reference by the tests around).
#[test]
fn gated_gemv_matches_the_linear_then_act_and_mul() {
    use attention_oracle::Lcg;
    use burn_tensor::{Tensor, TensorData};
    use ember_kernels::{Activation, LayerOpsBackend, LinearBackend};
    type B = CudaBackend;
    if !enabled() {
        return;
    }
    let device = Default::default();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for (k, n, bias, act) in [(4096, 1024, false, Activation::Silu), (1032, 777, true, Activation::GeluTanh), (64, 8, true, Activation::Silu)] {
            let mut rng = Lcg(k as u64 + n as u64);
            let x = Tensor::<B, 2>::from_data(TensorData::new(rng.vec(k, dtype), [1, k]), (&device, dtype));
            let w = Tensor::<B, 2>::from_data(TensorData::new(rng.vec(2 * n * k, dtype), [2 * n, k]), (&device, dtype));
            let b = bias.then(|| Tensor::<B, 1>::from_data(TensorData::new(rng.vec(2 * n, dtype), [2 * n]), (&device, dtype)));
            let fused = B::linear_act_and_mul(&x, &w, b.as_ref(), act).expect("the gated GEMV takes one row");
            let separate = B::act_and_mul(B::linear(x, w, b), act);
            let bits = |t: Tensor<B, 2>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
            assert_eq!(bits(fused), bits(separate), "{dtype:?} k {k} n {n} bias {bias} {act:?}");
            println!("gated GEMV {dtype:?} k {k} n {n} bias {bias} {act:?}: the same bits as GEMV + act_and_mul");
        }
    }
    assert_eq!(ember_kernels::cuda::linear_fallbacks() + ember_kernels::cuda::layer_op_fallbacks(), 0, "a kernel fell back");
}

/// The fused layer ops (`kernels/layer_ops.cu`) against their reference bodies on the same
/// device and inputs. They round where transformers rounds, so the gap is the order of f32
/// sums (a bf16/f16 ulp at most where a sum lands on a rounding boundary) and, for the
/// activations, the reference's rounding of each intermediate to the compute dtype.
#[test]
fn layer_ops_match_the_reference_bodies() {
    use attention_oracle::Lcg;
    use burn_tensor::{Int, Tensor, TensorData};
    use ember_kernels::reference::layer_ops as reference;
    use ember_kernels::{Activation, LayerOpsBackend, NormStyle, QkvShape, RmsNormWeights};
    type B = CudaBackend;
    if !enabled() {
        return;
    }
    let device = Default::default();
    let tensor = |v: Vec<f32>, dims: [usize; 2], dtype: DType| Tensor::<B, 2>::from_data(TensorData::new(v, dims), (&device, dtype));
    // Largest |a - b| relative to max(1, |b|).
    let diff = |a: Tensor<B, 2>, b: Tensor<B, 2>| -> f32 {
        let a: Vec<f32> = a.into_data().convert::<f32>().to_vec().unwrap();
        let b: Vec<f32> = b.into_data().convert::<f32>().to_vec().unwrap();
        assert_eq!(a.len(), b.len());
        a.iter().zip(&b).map(|(x, y)| (x - y).abs() / y.abs().max(1.0)).fold(0.0, f32::max)
    };
    let mut failures = Vec::new();
    for (dtype, tol) in [(DType::F32, 1e-5f32), (DType::F16, 2e-3), (DType::BF16, 1.6e-2)] {
        let mut rng = Lcg(11);
        // `slack`: the activations' reference rounds each intermediate (exp, the sum, the
        // division) to the compute dtype where the kernel rounds once, so they may differ by a
        // few ulps more than the norms.
        let mut check = |what: String, err: f32, slack: f32| {
            println!("layer ops {dtype:?} {what}: {err:.2e}");
            if err > tol * slack {
                failures.push(format!("{dtype:?} {what}: {err:.2e} (tolerance {:.1e})", tol * slack));
            }
        };
        for (rows, dim) in [(1, 4096), (7, 640), (300, 4096)] {
            for style in [NormStyle::Weight, NormStyle::OnePlusWeight] {
                let scale: Vec<f32> = rng.vec(dim, DType::BF16).into_iter().map(|v| v + 0.5).collect();
                let norm = RmsNormWeights { scale: Tensor::from_data(TensorData::new(scale, [dim]), (&device, DType::F32)), eps: 1e-5, style };
                let x = tensor(rng.vec(rows * dim, dtype).iter().map(|v| v * 4.0).collect(), [rows, dim], dtype);
                let r = tensor(rng.vec(rows * dim, dtype), [rows, dim], dtype);
                check(format!("rms_norm {rows}x{dim} {style:?}"), diff(B::rms_norm(x.clone(), &norm), reference::rms_norm(x.clone(), &norm)), 1.0);
                let (normed, sum) = B::fused_add_rms_norm(x.clone(), r.clone(), &norm);
                let expected_sum = r + x;
                check(format!("fused_add_rms_norm {rows}x{dim} {style:?} (sum)"), diff(sum, expected_sum.clone()), 1.0);
                check(format!("fused_add_rms_norm {rows}x{dim} {style:?} (norm)"), diff(normed, reference::rms_norm(expected_sum, &norm)), 1.0);
            }
            for act in [Activation::Silu, Activation::GeluTanh] {
                let gate_up = tensor(rng.vec(rows * 2 * dim, dtype).iter().map(|v| v * 8.0).collect(), [rows, 2 * dim], dtype);
                check(format!("act_and_mul {rows}x{dim} {act:?}"), diff(B::act_and_mul(gate_up.clone(), act), reference::act_and_mul(gate_up, act)), 3.0);
            }
        }
        for (tokens, h, kvh, d, qk_norm) in [(1, 32, 8, 128, false), (37, 8, 2, 64, true), (5, 4, 4, 256, false)] {
            let shape = QkvShape { num_heads: h, num_kv_heads: kvh, head_dim: d };
            let max_pos = 2048;
            let table = |f: fn(f32) -> f32| {
                let v: Vec<f32> = (0..max_pos * d / 2).map(|i| f((i / (d / 2)) as f32 / (1.0 + (i % (d / 2)) as f32))).collect();
                Tensor::<B, 2>::from_data(TensorData::new(v, [max_pos, d / 2]), (&device, DType::F32))
            };
            let positions: Vec<i32> = (0..tokens).map(|t| (t * 53 % max_pos) as i32).collect();
            let positions = Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [tokens]), (&device, DType::I32));
            let qkv = tensor(rng.vec(tokens * (h + 2 * kvh) * d, dtype).iter().map(|v| v * 3.0).collect(), [tokens, (h + 2 * kvh) * d], dtype);
            let norm = |rng: &mut Lcg| RmsNormWeights {
                scale: Tensor::from_data(TensorData::new(rng.vec(d, DType::BF16), [d]), (&device, DType::F32)),
                eps: 1e-6,
                style: NormStyle::Weight,
            };
            let (qn, kn) = (norm(&mut rng), norm(&mut rng));
            let norms = qk_norm.then_some((&qn, &kn));
            let kernel_rope = B::rope_for_step(table(f32::cos), table(f32::sin), positions.clone(), dtype);
            let reference_rope = reference::rope_for_step(table(f32::cos), table(f32::sin), positions, dtype);
            let (q, k, v) = B::split_qkv_rope(qkv.clone(), shape, norms, &kernel_rope);
            let (eq, ek, ev) = reference::split_qkv_rope(qkv, shape, norms, &reference_rope);
            let flat = |t: Tensor<B, 3>| t.flatten::<2>(1, 2);
            let what = format!("split_qkv_rope {tokens} tokens {h}/{kvh}x{d} qk_norm {qk_norm}");
            check(format!("{what} q"), diff(flat(q), flat(eq)), 1.0);
            check(format!("{what} k"), diff(flat(k), flat(ek)), 1.0);
            check(format!("{what} v"), diff(flat(v), flat(ev)), 1.0);
        }
    }
    assert_eq!(ember_kernels::cuda::layer_op_fallbacks(), 0, "layer-op calls that ran the reference body");
    assert!(failures.is_empty(), "layer ops off the reference:\n{}", failures.join("\n"));
}

/// The rope kernel with reshape_and_cache fused in (`split_qkv_rope_and_cache`) against the two
/// kernels it replaces, run one after the other on a copy of the same cache: the same q and the
/// same caches bit for bit (the same arithmetic; only where k and v are written differs). Both
/// kernels are held to the reference by the tests above.
#[test]
fn split_qkv_rope_and_cache_matches_the_two_ops() {
    use attention_oracle::Lcg;
    use burn_tensor::{Int, Tensor, TensorData};
    use ember_kernels::{AttentionMetadata, BatchLayout, KvCache, KvCacheSpec, LayerOpsBackend, PagedAttentionBackend, QkvShape};
    type B = CudaBackend;
    if !enabled() {
        return;
    }
    let device = Default::default();
    for dtype in [DType::F32, DType::BF16] {
        let (h, kvh, d, bs, num_blocks) = (8usize, 2usize, 64usize, 16usize, 64usize);
        // Decodes, a chunked prefill over a cached prefix and a fresh prompt.
        let seqs = vec![(40usize, 1usize, vec![3u32, 9, 4]), (20, 13, vec![7, 1, 30]), (0, 21, vec![12, 40]), (15, 1, vec![50])];
        let layout = BatchLayout::from_sequences(bs, seqs);
        layout.validate(num_blocks).unwrap();
        let tokens = layout.num_tokens();
        let mut rng = Lcg(5);
        let spec = KvCacheSpec { num_layers: 1, num_blocks, block_size: bs, num_kv_heads: kvh, head_dim: d, dtype };
        let shape = [num_blocks, bs, kvh, d];
        let old_k = rng.vec(num_blocks * bs * kvh * d, dtype);
        let old_v = rng.vec(num_blocks * bs * kvh * d, dtype);
        let fresh_layer = || {
            let mut cache = KvCache::<B>::new(spec, &device);
            let mut layer = cache.take_layer(0);
            layer.key = Tensor::from_data(TensorData::new(old_k.clone(), shape), (&device, dtype));
            layer.value = Tensor::from_data(TensorData::new(old_v.clone(), shape), (&device, dtype));
            layer
        };
        let qkv: Vec<f32> = rng.vec(tokens * (h + 2 * kvh) * d, dtype).iter().map(|v| v * 3.0).collect();
        let qkv = Tensor::<B, 2>::from_data(TensorData::new(qkv, [tokens, (h + 2 * kvh) * d]), (&device, dtype));
        let max_pos = 256;
        let table = |f: fn(f32) -> f32| {
            let v: Vec<f32> = (0..max_pos * d / 2).map(|i| f((i / (d / 2)) as f32 / (1.0 + (i % (d / 2)) as f32))).collect();
            Tensor::<B, 2>::from_data(TensorData::new(v, [max_pos, d / 2]), (&device, DType::F32))
        };
        let positions: Vec<i32> = layout.positions().iter().map(|&p| p as i32).collect();
        let positions = Tensor::<B, 1, Int>::from_data(TensorData::new(positions, [tokens]), (&device, DType::I32));
        let rope = B::rope_for_step(table(f32::cos), table(f32::sin), positions, dtype);
        let metadata = AttentionMetadata::<B>::new(&layout, &[None], &device);
        let qkv_shape = QkvShape { num_heads: h, num_kv_heads: kvh, head_dim: d };

        let before = ember_kernels::cuda::fallbacks().0 + ember_kernels::cuda::layer_op_fallbacks();
        let (q, fused) = B::split_qkv_rope_and_cache(qkv.clone(), qkv_shape, None, &rope, fresh_layer(), &metadata);
        let (eq, k, v) = B::split_qkv_rope(qkv, qkv_shape, None, &rope);
        let separate = B::reshape_and_cache(fresh_layer(), k, v, &metadata);
        assert_eq!(ember_kernels::cuda::fallbacks().0 + ember_kernels::cuda::layer_op_fallbacks(), before, "a kernel fell back");
        let bits = |t: Tensor<B, 3>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        let bits4 = |t: Tensor<B, 4>| t.into_data().convert::<f32>().to_vec::<f32>().unwrap();
        assert_eq!(bits(q), bits(eq), "{dtype:?}: q differs");
        let (fk, sk) = (bits4(fused.key), bits4(separate.key));
        assert_ne!(fk, old_k, "{dtype:?}: the fused op wrote no key");
        assert_eq!(fk, sk, "{dtype:?}: the key caches differ");
        assert_eq!(bits4(fused.value), bits4(separate.value), "{dtype:?}: the value caches differ");
        println!("split_qkv_rope_and_cache {dtype:?}: {tokens} tokens, the same q and caches as the two kernels");
    }
}

/// `kernels/sampling.cu` against the reference token pick on the same device and inputs (f32
/// and bf16 logits, per-row temperatures): the same tokens for greedy and sampled rows, never
/// a truncated (-inf) token. The two sum the
/// probabilities in different orders, so a uniform landing within float rounding (~1e-7 of the
/// total) of a token boundary may pick the neighbouring token: accepted, and nothing else.
#[test]
fn sampling_matches_the_reference_pick() {
    use attention_oracle::Lcg;
    use burn_tensor::{Tensor, TensorData};
    use ember_kernels::SamplingBackend;
    use ember_kernels::reference::sampling as reference;
    type B = CudaBackend;
    if !enabled() {
        return;
    }
    let device = Default::default();
    // Up to 16 rows take the split path (three launches), more the one-block-per-row kernel.
    let cases = [
        (1usize, 128_256usize, DType::F32),
        (64, 128_256, DType::F32),
        (7, 1000, DType::F32),
        (3, 5, DType::F32),
        (64, 128_256, DType::BF16),
        (1, 128_256, DType::BF16),
        (16, 32_000, DType::BF16),
    ];
    for (rows, vocab, dtype) in cases {
        let mut rng = Lcg(vocab as u64 + rows as u64);
        let mut logits: Vec<f32> = rng.vec(rows * vocab, DType::F32).iter().map(|v| v * 12.0).collect();
        // Truncate every third row to its first tenth (at least one token).
        for r in (0..rows).step_by(3) {
            for v in (vocab / 10).max(1)..vocab {
                logits[r * vocab + v] = f32::NEG_INFINITY;
            }
        }
        let uniforms: Vec<f32> = (0..rows).map(|r| if r % 4 == 1 { -1.0 } else { (rng.next() + 0.5).clamp(1e-3, 0.999) }).collect();
        let temperatures: Vec<f32> = (0..rows).map(|r| if uniforms[r] < 0.0 { 1.0 } else { [0.5, 1.0, 1.7][r % 3] }).collect();
        let x = Tensor::<B, 2>::from_data(TensorData::new(logits.clone(), [rows, vocab]), (&device, DType::F32)).cast(dtype);
        // The values as the kernels see them (bf16 rounding makes ties at the maximum likely).
        let seen: Vec<f32> = x.clone().cast(DType::F32).into_data().to_vec().unwrap();
        let ours: Vec<i64> = B::sample_tokens(x.clone(), &uniforms, &temperatures).into_data().convert::<i64>().to_vec().unwrap();
        let theirs: Vec<i64> = reference::sample_tokens(x.clone(), &uniforms, &temperatures).into_data().convert::<i64>().to_vec().unwrap();
        // The other path over the same rows: the same chunks, sums in the same order, the same
        // tokens bit for bit.
        ember_kernels::cuda::set_sample_split_max_rows(if rows <= 16 { 0 } else { rows });
        let other: Vec<i64> = B::sample_tokens(x.clone(), &uniforms, &temperatures).into_data().convert::<i64>().to_vec().unwrap();
        ember_kernels::cuda::set_sample_split_max_rows(16);
        assert_eq!(ours, other, "{rows}x{vocab} {dtype:?}: the split and one-launch paths picked different tokens");
        println!("sampling {rows}x{vocab} {dtype:?}: kernel {:?}... reference {:?}...", &ours[..rows.min(4)], &theirs[..rows.min(4)]);
        let mut neighbours = 0;
        for (r, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            let tie = seen[r * vocab + *a as usize] == seen[r * vocab + *b as usize];
            if a != b && !(uniforms[r] < 0.0 && tie) {
                assert!(uniforms[r] >= 0.0 && (a - b).abs() == 1, "{rows}x{vocab} row {r}: kernel {a}, reference {b} (uniform {})", uniforms[r]);
                neighbours += 1;
            }
        }
        println!("  {neighbours} row(s) picked the neighbouring token at a rounding boundary");
        for (r, &t) in ours.iter().enumerate() {
            assert!(logits[r * vocab + t as usize].is_finite(), "{rows}x{vocab} row {r}: picked a truncated token {t}");
        }
    }
}
