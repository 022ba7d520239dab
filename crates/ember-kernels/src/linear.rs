//! [`LinearBackend`]: the backend-extension trait for the linear layers' product
//! `y = x · Wᵀ` (W in the checkpoint's `[out, in]` layout). The default is burn's matmul, on
//! every backend; the CUDA backend overrides it with its GEMV kernel for small batches
//! (`kernels/gemv.cu`), the shape of decode steps, and its GEMM above, and fuses the gated
//! MLP's activation into the single-row gate/up GEMV. [`Fp8Weight`] and the trait's `fp8`
//! methods are `--quantization fp8`: a backend with an FP8 GEMM (CUDA on Hopper) quantizes the
//! weights at load and runs its larger products on them; the others report it unsupported.

use std::sync::OnceLock;

use burn_tensor::{Int, Tensor, backend::Backend};

use crate::{Activation, DeferredNorm, RmsNormWeights};

/// Most rows a GEMV-capable backend runs through its GEMV rather than its GEMM, and so the
/// largest decode batch a step graph can cover (the GEMM takes TMA descriptors, which graphs
/// do not record): `EMBER_GEMV_MAX_ROWS` (0-8), by default 4. On the H200 (docs/perf.md,
/// sixth pass) the GEMV with graphs won at 1-4 rows and the Hopper GEMM, eager, at 8.
pub fn gemv_max_rows() -> usize {
    static ROWS: OnceLock<usize> = OnceLock::new();
    *ROWS.get_or_init(|| std::env::var("EMBER_GEMV_MAX_ROWS").ok().and_then(|v| v.parse::<usize>().ok()).map_or(4, |n| n.min(8)))
}

/// A linear layer's weight in FP8 (E4M3) with one f32 scale per output channel (vLLM's
/// `--quantization fp8` of a f16/bf16 checkpoint, quantized at load):
/// `weight[n, k] ~= e4m3(data[n, k]) * scale[n]`.
#[derive(Debug, Clone)]
pub struct Fp8Weight<B: Backend> {
    /// The E4M3 bytes, `[out, in]`, in a U8 integer tensor.
    pub data: Tensor<B, 2, Int>,
    /// `[out]`, f32.
    pub scale: Tensor<B, 1>,
}

/// The linear layers' matrix product.
pub trait LinearBackend: Backend {
    /// `x: [tokens, in]`, `weight: [out, in]`, `bias: [out]` → `[tokens, out]`. A kernel adds
    /// the bias before rounding to the compute dtype (as torch's `addmm` does); the default
    /// adds it after the product.
    fn linear(x: Tensor<Self, 2>, weight: Tensor<Self, 2>, bias: Option<Tensor<Self, 1>>) -> Tensor<Self, 2> {
        let y = x.matmul(weight.transpose());
        match bias {
            Some(b) => y + b.unsqueeze::<2>(),
            None => y,
        }
    }

    /// The gated MLP's first half in one op where the backend fuses it: `act(gate) * up` of
    /// [`Self::linear`]`(x, weight, bias)` (`weight: [2n, in]`, the gate rows first) →
    /// `[tokens, n]`, rounded as `LayerOpsBackend::act_and_mul` of the linear's output.
    /// `None` (the default): no fused kernel for these inputs; the caller runs the two ops.
    fn linear_act_and_mul(
        _x: &Tensor<Self, 2>,
        _weight: &Tensor<Self, 2>,
        _bias: Option<&Tensor<Self, 1>>,
        _activation: Activation,
    ) -> Option<Tensor<Self, 2>> {
        None
    }

    /// The projection before a norm with the residual add and the norm deferred, where the
    /// backend fuses it (see [`DeferredNorm`]): `residual + linear(x, weight, bias)` with the
    /// norm `norm` of that sum still to apply. `None` (the default): not fused for these
    /// inputs; the caller runs the linear and the add + norm.
    fn linear_residual_norm(
        _x: &Tensor<Self, 2>,
        _weight: &Tensor<Self, 2>,
        _bias: Option<&Tensor<Self, 1>>,
        _residual: &Tensor<Self, 2>,
        _norm: &RmsNormWeights<Self>,
    ) -> Option<DeferredNorm<Self>> {
        None
    }

    /// [`Self::linear`] of the deferred norm's output, the norm applied inside; `None` when the
    /// backend has no kernel for these inputs (the caller materialises the norm).
    fn linear_deferred_norm(_input: &DeferredNorm<Self>, _weight: &Tensor<Self, 2>, _bias: Option<&Tensor<Self, 1>>) -> Option<Tensor<Self, 2>> {
        None
    }

    /// [`Self::linear_act_and_mul`] of the deferred norm's output; `None` as above.
    fn linear_deferred_norm_act_and_mul(
        _input: &DeferredNorm<Self>,
        _weight: &Tensor<Self, 2>,
        _bias: Option<&Tensor<Self, 1>>,
        _activation: Activation,
    ) -> Option<Tensor<Self, 2>> {
        None
    }

    /// Compiles the kernels the products in `dtype` (and with FP8 weights when `fp8`) may take,
    /// for every shape class, so that no step waits for a compiler later. The default does
    /// nothing (burn's kernels compile on first use).
    fn warm_up_linear(_device: &Self::Device, _dtype: burn_tensor::DType, _fp8: bool) {}

    /// `weight` (`[out, in]`, f16/bf16) quantized for [`Self::linear_fp8`]; `None` when the
    /// backend has no FP8 product (the default), so `--quantization fp8` is not supported.
    fn quantize_weight_fp8(_weight: &Tensor<Self, 2>) -> Option<Fp8Weight<Self>> {
        None
    }

    /// `x · dequant(weight)ᵀ (+ bias)` with `x` quantized per row (one scale per token,
    /// computed on the fly) in `x`'s dtype, where the backend runs it for these inputs; `None`
    /// otherwise, and the caller uses the f16/bf16 weight (the CUDA backend does for the
    /// GEMV's decode batches of up to [`gemv_max_rows`] rows).
    fn linear_fp8(_x: &Tensor<Self, 2>, _weight: &Fp8Weight<Self>, _bias: Option<&Tensor<Self, 1>>) -> Option<Tensor<Self, 2>> {
        None
    }
}

crate::reference_backends!(LinearBackend);
