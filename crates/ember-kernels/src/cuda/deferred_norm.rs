//! The CUDA launches of the deferred RMSNorm ([`crate::DeferredNorm`], `kernels/gemv.cu`):
//! the one-row GEMV that adds the residual and writes the next norm's partial sums of squares
//! (o_proj, down_proj), and the one-row GEMVs, plain and gated, that apply the norm's 1/rms
//! to their dot products (qkv, gate/up). Single-stream decode only; `None` for anything the
//! kernels do not cover, and the caller runs the separate norm kernel.

use std::sync::OnceLock;

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_tensor::{DType, Shape};
use cubecl_cuda::CudaRuntime;

use super::ops::{PerDtype, bias_binding, kernels, linear_strides, row_stride, suffix};
use super::raw_kernel::{launch, pack_u32};

type Cube = CubeTensor<CudaRuntime>;

pub(super) const GEMV: &str = include_str!("../../../../kernels/gemv.cu");
/// Outputs per block of the GEMV (`EMBER_GEMV_WARPS`): one partial sum each.
const OUTPUTS_PER_PART: usize = 8;
/// Most partials a consumer block stages in shared memory (`EMBER_GEMV_MAX_PARTS`): norms up to
/// 8192 wide.
const MAX_PARTS: usize = 1024;

/// Whether one-token steps defer their norms (`EMBER_CUDA_DEFER_NORM=0` runs the norm kernel
/// instead, to compare; `EMBER_CUDA_FUSE=0` turns it off with the other fusions). Read once.
pub(super) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("EMBER_CUDA_DEFER_NORM").map_or(true, |v| v != "0"))
}

fn residual_norm_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_gemv_f32_m1_residual_norm", "ember_gemv_f16_m1_residual_norm", "ember_gemv_bf16_m1_residual_norm"];
    kernels(&CELL, GEMV, names, 256)
}

fn normed_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    kernels(&CELL, GEMV, ["ember_gemv_f32_m1_normed", "ember_gemv_f16_m1_normed", "ember_gemv_bf16_m1_normed"], 256)
}

fn gated_normed_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_gemv_f32_gated_normed", "ember_gemv_f16_gated_normed", "ember_gemv_bf16_gated_normed"];
    kernels(&CELL, GEMV, names, 256)
}

fn empty(like: &Cube, dims: [usize; 2], dtype: DType) -> Cube {
    empty_device_contiguous_dtype(like.client.clone(), like.device.clone(), Shape::new(dims), dtype)
}

/// Whether `t` is a dense `[1, n]` row of `dtype`.
fn is_row(t: &Cube, n: usize, dtype: DType) -> bool {
    t.dtype == dtype && t.meta.shape().dims::<2>() == [1, n] && row_stride(t).is_some() && t.handle.offset_start.unwrap_or(0) % 16 == 0
}

/// `x [1, k] · weightᵀ (+ bias)` added to `residual [1, n]`: (sum, T(sum * scale), partial sums
/// of sum² per 8 outputs as `[1, n / 8]` f32). `scale`: the next norm's `[n]` f32 scale.
pub(super) fn gemv_residual_norm(x: &Cube, weight: &Cube, bias: Option<&Cube>, residual: &Cube, scale: &Cube) -> Option<(Cube, Cube, Cube)> {
    let index = suffix(x.dtype)?;
    let [m, k] = x.meta.shape().dims::<2>();
    let n = weight.meta.shape().dims::<2>()[0];
    // Whole blocks (the block reduces at its end) and a partial count the consumer reads in float4s.
    if m != 1 || !n.is_multiple_of(OUTPUTS_PER_PART * 4) || n / OUTPUTS_PER_PART > MAX_PARTS || !is_row(residual, n, x.dtype) {
        return None;
    }
    if scale.dtype != DType::F32 || !scale.is_contiguous() || scale.meta.shape().num_elements() != n {
        return None;
    }
    let (x_stride, w_stride) = linear_strides(x, weight)?;
    let bias = bias_binding(x, weight, bias)?;
    let residual_out = empty(x, [1, n], x.dtype);
    let scaled = empty(x, [1, n], x.dtype);
    let partials = empty(x, [1, n / OUTPUTS_PER_PART], DType::F32);
    let has_bias = bias.is_some() as u32;
    let buffers = vec![
        x.handle.clone(),
        weight.handle.clone(),
        bias.unwrap_or_else(|| x.handle.clone()),
        residual.handle.clone(),
        scale.handle.clone(),
        residual_out.handle.clone(),
        scaled.handle.clone(),
        partials.handle.clone(),
    ];
    let grid = ((n / OUTPUTS_PER_PART) as u32, 1, 1);
    let p = pack_u32(&[1, n as u32, k as u32, x_stride, w_stride, has_bias]);
    launch(&x.client, &residual_norm_kernels().0[index], grid, buffers, p);
    Some((residual_out, scaled, partials))
}

/// Whether `scaled` and `partials` have the shapes [`gemv_residual_norm`] writes for a norm of
/// width `k` (the consumer kernels stage `k / 8` partials in float4s), and a consumer's `n`
/// outputs fill whole blocks (its blocks synchronise at the end).
pub(super) fn fits_consumer(scaled: &Cube, partials: &Cube, k: usize, n: usize) -> bool {
    let parts = k / OUTPUTS_PER_PART;
    let shapes = is_row(scaled, k, scaled.dtype) && is_row(partials, parts, DType::F32);
    shapes && k.is_multiple_of(OUTPUTS_PER_PART * 4) && parts <= MAX_PARTS && n.is_multiple_of(OUTPUTS_PER_PART)
}

/// Which consumer entry runs, with its leading parameter words (before parts and eps).
enum Consumer {
    Plain,
    /// `EMBER_ACT_*` code.
    Gated(u32),
}

/// `T(rms_norm(residual)) · weightᵀ (+ bias)` for one row, from the deferred norm's `scaled`
/// row and partials (`weight [n, k]`).
pub(super) fn gemv_normed(scaled: &Cube, partials: &Cube, eps: f64, weight: &Cube, bias: Option<&Cube>) -> Option<Cube> {
    consume(scaled, partials, eps, weight, bias, Consumer::Plain)
}

/// `act(gate) * up` of [`gemv_normed`]'s product (`weight [2n, k]`, gate rows first).
pub(super) fn gemv_gated_normed(scaled: &Cube, partials: &Cube, eps: f64, weight: &Cube, bias: Option<&Cube>, activation: u32) -> Option<Cube> {
    consume(scaled, partials, eps, weight, bias, Consumer::Gated(activation))
}

fn consume(scaled: &Cube, partials: &Cube, eps: f64, weight: &Cube, bias: Option<&Cube>, kind: Consumer) -> Option<Cube> {
    let index = suffix(scaled.dtype)?;
    let k = scaled.meta.shape().dims::<2>()[1];
    let rows = weight.meta.shape().dims::<2>()[0];
    let n = match kind {
        Consumer::Plain => rows,
        Consumer::Gated(_) if rows.is_multiple_of(2) => rows / 2,
        Consumer::Gated(_) => return None,
    };
    if !fits_consumer(scaled, partials, k, n) {
        return None;
    }
    let (x_stride, w_stride) = linear_strides(scaled, weight)?;
    let bias = bias_binding(scaled, weight, bias)?;
    let y = empty(scaled, [1, n], scaled.dtype);
    let has_bias = bias.is_some() as u32;
    let buffers = vec![scaled.handle.clone(), weight.handle.clone(), y.handle.clone(), bias.unwrap_or_else(|| scaled.handle.clone()), partials.handle.clone()];
    let tail = [(k / OUTPUTS_PER_PART) as u32, (eps as f32).to_bits()];
    let (kernel, head) = match kind {
        Consumer::Plain => (&normed_kernels().0[index], [1, n as u32, k as u32, x_stride, w_stride, has_bias]),
        Consumer::Gated(act) => (&gated_normed_kernels().0[index], [n as u32, k as u32, x_stride, w_stride, has_bias, act]),
    };
    launch(&scaled.client, kernel, ((n / OUTPUTS_PER_PART) as u32, 1, 1), buffers, pack_u32(&[&head[..], &tail[..]].concat()));
    Some(y)
}
