//! Reference bodies of [`crate::LayerOpsBackend`] in plain burn ops: the RMSNorm, residual add,
//! gated activation and rotary embedding exactly as transformers computes them (f32 where it
//! upcasts, rounding to the compute dtype where it rounds).

use burn_tensor::{DType, FloatDType, Int, Tensor, activation, backend::Backend};

use crate::layer_ops::{Activation, NormStyle, QkvShape, RmsNormWeights, StepRope};

/// RMSNorm of each row of `x: [rows, dim]`.
pub fn rms_norm<B: Backend>(x: Tensor<B, 2>, norm: &RmsNormWeights<B>) -> Tensor<B, 2> {
    rms_norm_nd(x, norm)
}

/// RMSNorm over the last dim of `x` (any rank).
pub fn rms_norm_nd<B: Backend, const D: usize>(x: Tensor<B, D>, norm: &RmsNormWeights<B>) -> Tensor<B, D> {
    let dtype = x.dtype();
    let x = x.cast(FloatDType::F32);
    let variance = (x.clone() * x.clone()).mean_dim(D - 1); // x² (burn-ndarray's powi goes through powf)
    // A division, not `recip()`: burn-ndarray's SIMD recip is an approximation (~1e-4
    // relative on x86), enough to move logprobs by 1e-3 in deep models.
    let normed = x / (variance + norm.eps).sqrt();
    let scale = norm.scale.clone().unsqueeze::<D>();
    match norm.style {
        NormStyle::Weight => normed.cast(dtype) * scale.cast(dtype),
        NormStyle::OnePlusWeight => (normed * scale).cast(dtype),
    }
}

/// `act(gate) * up` over `gate_up: [rows, 2n]`.
pub fn act_and_mul<B: Backend>(gate_up: Tensor<B, 2>, act: Activation) -> Tensor<B, 2> {
    let n = gate_up.dims()[1] / 2;
    let gate = gate_up.clone().narrow(1, 0, n);
    let up = gate_up.narrow(1, n, n);
    activate(act, gate) * up
}

/// Applies `act` elementwise.
pub fn activate<B: Backend, const D: usize>(act: Activation, x: Tensor<B, D>) -> Tensor<B, D> {
    match act {
        // x / (1 + e^-x), as torch computes SiLU (burn's goes through log-sigmoid: 3x the work).
        Activation::Silu => x.clone() / (x.neg().exp() + 1.0),
        Activation::GeluTanh => activation::gelu_approximate(x),
        Activation::Gelu => activation::gelu(x),
    }
}

/// Gathers the step's cos/sin rows once, cast to `dtype`, for every layer to reuse.
pub fn rope_for_step<B: Backend>(
    cos_table: Tensor<B, 2>,
    sin_table: Tensor<B, 2>,
    positions: Tensor<B, 1, Int>,
    dtype: DType,
) -> StepRope<B> {
    let gather = |t: &Tensor<B, 2>| t.clone().select(0, positions.clone()).cast(dtype).unsqueeze_dim(1);
    let gathered = Some((gather(&cos_table), gather(&sin_table)));
    StepRope { positions, cos_table, sin_table, gathered }
}

/// Splits q/k/v, applies the optional q/k norms, rotates q and k.
pub fn split_qkv_rope<B: Backend>(
    qkv: Tensor<B, 2>,
    shape: QkvShape,
    qk_norm: Option<(&RmsNormWeights<B>, &RmsNormWeights<B>)>,
    rope: &StepRope<B>,
) -> (Tensor<B, 3>, Tensor<B, 3>, Tensor<B, 3>) {
    let QkvShape { num_heads: h, num_kv_heads: kvh, head_dim: d } = shape;
    let tokens = qkv.dims()[0];
    let mut q = qkv.clone().narrow(1, 0, h * d).reshape([tokens, h, d]);
    let mut k = qkv.clone().narrow(1, h * d, kvh * d).reshape([tokens, kvh, d]);
    let v = qkv.narrow(1, (h + kvh) * d, kvh * d).reshape([tokens, kvh, d]);
    if let Some((q_norm, k_norm)) = qk_norm {
        q = rms_norm_nd(q, q_norm);
        k = rms_norm_nd(k, k_norm);
    }
    let (cos, sin) = match &rope.gathered {
        Some(tables) => tables.clone(),
        None => {
            let again = rope_for_step(rope.cos_table.clone(), rope.sin_table.clone(), rope.positions.clone(), q.dtype());
            again.gathered.expect("rope_for_step gathers")
        }
    };
    (rotate(q, &cos, &sin), rotate(k, &cos, &sin), v)
}

/// Rotates `x: [tokens, heads, head_dim]` by the gathered `[tokens, 1, half]` tables.
fn rotate<B: Backend>(x: Tensor<B, 3>, cos: &Tensor<B, 3>, sin: &Tensor<B, 3>) -> Tensor<B, 3> {
    let half = x.dims()[2] / 2;
    let x1 = x.clone().narrow(2, 0, half);
    let x2 = x.narrow(2, half, half);
    let rotated_1 = x1.clone() * cos.clone() - x2.clone() * sin.clone();
    let rotated_2 = x2 * cos.clone() + x1 * sin.clone();
    Tensor::cat(vec![rotated_1, rotated_2], 2)
}
