//! [`LayerOpsBackend`]: the backend-extension trait for the decoder's small per-layer ops that
//! vLLM fuses into single kernels: RMSNorm, residual add + RMSNorm, `act(gate) * up`, and the
//! split of the fused q/k/v projection with rotary embedding (and Qwen3's per-head q/k norm).
//!
//! The default bodies are the reference in plain burn ops ([`crate::reference::layer_ops`]),
//! which every backend runs; the CUDA backend overrides them with `kernels/layer_ops.cu`. Each
//! op is defined to round exactly where transformers rounds, so a fused kernel that computes
//! in f32 and rounds at the same points gives the same bits.

use burn_tensor::{DType, Int, Tensor, backend::Backend};

use crate::reference::layer_ops as reference;

/// How an RMSNorm applies its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormStyle {
    /// `x̂ · w`, with x̂ cast to the compute dtype first (Llama, Mistral, Qwen).
    Weight,
    /// `x̂ · (1 + w)` multiplied in f32, then cast (Gemma).
    OnePlusWeight,
}

/// An activation of the gated MLP (`act(gate) * up`) or of an encoder's feed-forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU).
    Silu,
    /// GELU with the tanh approximation (`gelu_pytorch_tanh`, GeGLU).
    GeluTanh,
    /// Exact GELU (erf).
    Gelu,
}

/// One RMSNorm's weights: `scale` is `[dim]` in f32 (for [`NormStyle::OnePlusWeight`] already
/// `1 + w`).
#[derive(Debug, Clone)]
pub struct RmsNormWeights<B: Backend> {
    /// `[dim]`, f32.
    pub scale: Tensor<B, 1>,
    /// Added to the mean square.
    pub eps: f64,
    /// How the scale is applied.
    pub style: NormStyle,
}

/// Head counts of a fused `[tokens, (heads + 2 * kv_heads) * head_dim]` q/k/v projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QkvShape {
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Elements per head.
    pub head_dim: usize,
}

/// The rotary tables of one step: every position's cos/sin (`[max_positions, head_dim / 2]`,
/// f32) and the step's positions. The reference gathers the step's rows once
/// ([`LayerOpsBackend::rope_for_step`]); kernels index the tables directly.
#[derive(Debug, Clone)]
pub struct StepRope<B: Backend> {
    /// `[tokens]`: each token's position (i32 for kernels).
    pub positions: Tensor<B, 1, Int>,
    /// `[max_positions, half]`, f32.
    pub cos_table: Tensor<B, 2>,
    /// `[max_positions, half]`, f32.
    pub sin_table: Tensor<B, 2>,
    /// The step's rows in the compute dtype, `[tokens, 1, half]` (cos, sin), when gathered.
    pub gathered: Option<(Tensor<B, 3>, Tensor<B, 3>)>,
}

/// The decoder's fusable per-layer ops.
pub trait LayerOpsBackend: Backend {
    /// The rows of `weight: [vocab, hidden]` named by `ids: [tokens]` → `[tokens, hidden]`
    /// (the token embedding).
    fn token_embedding(weight: Tensor<Self, 2>, ids: Tensor<Self, 1, Int>) -> Tensor<Self, 2> {
        weight.select(0, ids)
    }

    /// RMSNorm of each row of `x: [rows, dim]`, computed in f32, result in `x`'s dtype.
    fn rms_norm(x: Tensor<Self, 2>, norm: &RmsNormWeights<Self>) -> Tensor<Self, 2> {
        reference::rms_norm(x, norm)
    }

    /// `residual + x` (rounded to the compute dtype) and its RMSNorm: returns
    /// `(rms_norm(sum), sum)` (vLLM's `fused_add_rms_norm`).
    fn fused_add_rms_norm(
        x: Tensor<Self, 2>,
        residual: Tensor<Self, 2>,
        norm: &RmsNormWeights<Self>,
    ) -> (Tensor<Self, 2>, Tensor<Self, 2>) {
        let sum = residual + x;
        (Self::rms_norm(sum.clone(), norm), sum)
    }

    /// `act(gate) * up` for `gate_up: [rows, 2 * n]` (gate first) → `[rows, n]`; `act` is
    /// rounded to the compute dtype before the product, as transformers does.
    fn act_and_mul(gate_up: Tensor<Self, 2>, activation: Activation) -> Tensor<Self, 2> {
        reference::act_and_mul(gate_up, activation)
    }

    /// The step's rotary tables for `positions`, in compute dtype `dtype`.
    fn rope_for_step(
        cos_table: Tensor<Self, 2>,
        sin_table: Tensor<Self, 2>,
        positions: Tensor<Self, 1, Int>,
        dtype: DType,
    ) -> StepRope<Self> {
        reference::rope_for_step(cos_table, sin_table, positions, dtype)
    }

    /// Splits `qkv: [tokens, (h + 2 kvh) d]` into q `[tokens, h, d]`, k and v
    /// `[tokens, kvh, d]`, applies the per-head norms to q and k when given (Qwen3), then the
    /// rotary embedding (NeoX "rotate half" layout) to q and k.
    fn split_qkv_rope(
        qkv: Tensor<Self, 2>,
        shape: QkvShape,
        qk_norm: Option<(&RmsNormWeights<Self>, &RmsNormWeights<Self>)>,
        rope: &StepRope<Self>,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>, Tensor<Self, 3>) {
        reference::split_qkv_rope(qkv, shape, qk_norm, rope)
    }
}

crate::reference_backends!(LayerOpsBackend);
