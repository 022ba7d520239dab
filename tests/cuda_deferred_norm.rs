//! The deferred RMSNorm of single-stream decode on CUDA (`ember_kernels::DeferredNorm`,
//! `kernels/gemv.cu`) against the ops it replaces, on the same device and inputs: the o_proj /
//! down_proj GEMV with the residual add and the next norm's partial sums, then the q/k/v GEMV
//! or the gate/up GEMV applying that norm, against the GEMV, the fused add + RMSNorm kernel and
//! the next GEMV (or GEMV + act_and_mul). The residual sum is the same bits; the scaled row is
//! the host's rounding of `sum * scale`; the partials add up to the sum of squares; the
//! projections after the norm differ only by where the norm's 1/rms is rounded (inside the
//! row before the sum, or on the sum), within the dtype's rounding.
//! Needs an NVIDIA GPU: runs when `EMBER_TEST_CUDA=1`, skips with the reason otherwise.

#![cfg(feature = "cuda")]

#[path = "../crates/ember-kernels/tests/attention_oracle/mod.rs"]
mod attention_oracle;

use attention_oracle::{Lcg, round};
use burn_tensor::{DType, Tensor, TensorData};
use ember::CudaBackend;
use ember_kernels::{Activation, LayerOpsBackend, LinearBackend, NormStyle, RmsNormWeights};

type B = CudaBackend;

fn host(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec().unwrap()
}

/// Largest |a - b| over the largest |b|.
fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max) / scale
}

#[test]
fn deferred_norm_matches_the_add_norm_and_linear() {
    if std::env::var("EMBER_TEST_CUDA").map_or(true, |v| v != "1") {
        eprintln!("skipping the CUDA deferred-norm test: set EMBER_TEST_CUDA=1 on a machine with an NVIDIA GPU");
        return;
    }
    let device = Default::default();
    let mut failures = Vec::new();
    // Tolerances on the projections after the norm, relative to their largest output: a few of
    // the dtype's ulps (the two forms round the normalised row differently).
    for (dtype, tol) in [(DType::F32, 1e-5f32), (DType::F16, 4e-3), (DType::BF16, 3e-2)] {
        // (o_proj input width, hidden, q/k/v outputs, gate/up outputs per half, bias, style)
        let shapes = [(4096, 4096, 6144, 1024, false, NormStyle::Weight), (512, 256, 384, 200, true, NormStyle::OnePlusWeight)];
        for (k_in, hidden, n_qkv, n_ff, bias, style) in shapes {
            let mut rng = Lcg((k_in + hidden + n_qkv) as u64);
            let tensor = |rng: &mut Lcg, dims: [usize; 2]| Tensor::<B, 2>::from_data(TensorData::new(rng.vec(dims[0] * dims[1], dtype), dims), (&device, dtype));
            let vector = |rng: &mut Lcg, n: usize| bias.then(|| Tensor::<B, 1>::from_data(TensorData::new(rng.vec(n, dtype), [n]), (&device, dtype)));
            let x = tensor(&mut rng, [1, k_in]);
            let w_o = tensor(&mut rng, [hidden, k_in]);
            let residual = tensor(&mut rng, [1, hidden]);
            let (w_qkv, w_ff) = (tensor(&mut rng, [n_qkv, hidden]), tensor(&mut rng, [2 * n_ff, hidden]));
            let (b_o, b_qkv, b_ff) = (vector(&mut rng, hidden), vector(&mut rng, n_qkv), vector(&mut rng, 2 * n_ff));
            let scale: Vec<f32> = (0..hidden).map(|_| 1.0 + 0.5 * rng.next()).collect();
            let norm = RmsNormWeights { scale: Tensor::from_data(TensorData::new(scale.clone(), [hidden]), (&device, DType::F32)), eps: 1e-5, style };

            let deferred = B::linear_residual_norm(&x, &w_o, b_o.as_ref(), &residual, &norm).expect("the producer takes one row");
            let qkv = B::linear_deferred_norm(&deferred, &w_qkv, b_qkv.as_ref()).expect("the consumer takes the producer's output");
            let act = B::linear_deferred_norm_act_and_mul(&deferred, &w_ff, b_ff.as_ref(), Activation::Silu).expect("the gated consumer too");

            let (normed, sum) = B::fused_add_rms_norm(B::linear(x, w_o, b_o), residual, &norm);
            let qkv_ref = B::linear(normed.clone(), w_qkv, b_qkv);
            let act_ref = B::act_and_mul(B::linear(normed, w_ff, b_ff), Activation::Silu);

            let what = format!("{dtype:?} k {k_in} hidden {hidden} bias {bias} {style:?}");
            let sum = host(sum);
            if host(deferred.residual.clone()) != sum {
                failures.push(format!("{what}: the residual sum differs from the add + norm kernel's"));
            }
            let scaled_ref: Vec<f32> = sum.iter().zip(&scale).map(|(r, s)| round(r * s, dtype)).collect();
            if host(deferred.scaled.clone()) != scaled_ref {
                failures.push(format!("{what}: the scaled row is not T(sum * scale)"));
            }
            let squares: f64 = sum.iter().map(|&r| (r as f64) * (r as f64)).sum();
            let partials: f64 = host(deferred.partials.clone()).iter().map(|&p| p as f64).sum();
            let squares_gap = ((partials - squares) / squares).abs();
            let (qkv_gap, act_gap) = (relative_gap(&host(qkv), &host(qkv_ref)), relative_gap(&host(act), &host(act_ref)));
            println!("deferred norm {what}: sum of squares {squares_gap:.1e}, q/k/v {qkv_gap:.2e}, gate/up {act_gap:.2e} (tolerance {tol:.0e})");
            if squares_gap > 1e-5 {
                failures.push(format!("{what}: the partials add up to {partials}, not {squares}"));
            }
            if qkv_gap > tol || act_gap > tol {
                failures.push(format!("{what}: q/k/v {qkv_gap:.2e}, gate/up {act_gap:.2e} over {tol:.0e}"));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(ember_kernels::cuda::linear_fallbacks() + ember_kernels::cuda::layer_op_fallbacks(), 0, "a kernel fell back");
}
