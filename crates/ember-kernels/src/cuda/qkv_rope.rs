//! The q/k/v projection of single-stream decode with the rotary embedding and the KV-cache
//! write in the same kernel (`kernels/gemv_rope.cu`, on top of the deferred norm's consumer
//! GEMV of `kernels/gemv.cu`): [`crate::PagedAttentionBackend::deferred_qkv_rope_and_cache`]
//! on CUDA. `None` for what the kernel does not cover (q/k norms, several tokens, odd
//! shapes); the caller then runs the GEMV and the rope kernel.

use std::sync::OnceLock;

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_tensor::{DType, Shape};
use cubecl_cuda::CudaRuntime;

use super::deferred_norm::{GEMV, fits_consumer};
use super::ops::{PerDtype, bias_binding, kernels, linear_strides, row_stride, suffix};
use super::raw_kernel::{launch, pack_u32};
use crate::QkvShape;

type Cube = CubeTensor<CudaRuntime>;

const GEMV_ROPE: &str = include_str!("../../../../kernels/gemv_rope.cu");

/// Whether one-token steps fuse the rotary embedding into the q/k/v GEMV
/// (`EMBER_CUDA_ROPE_IN_GEMV=0` runs the GEMV and the rope kernel instead, to compare). Read once.
pub(super) fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("EMBER_CUDA_ROPE_IN_GEMV").map_or(true, |v| v != "0"))
}

fn rope_kernels() -> &'static PerDtype {
    static SOURCE: OnceLock<&'static str> = OnceLock::new();
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let source = SOURCE.get_or_init(|| Box::leak(format!("{GEMV}\n{GEMV_ROPE}").into_boxed_str()));
    let names = ["ember_gemv_f32_m1_normed_rope", "ember_gemv_f16_m1_normed_rope", "ember_gemv_bf16_m1_normed_rope"];
    kernels(&CELL, source, names, 256)
}

/// What the rotary epilogue reads besides the product: cos and sin tables, positions, slot
/// mapping, and the layer's key and value caches.
pub(super) struct RopeTargets<'a> {
    pub cos: &'a Cube,
    pub sin: &'a Cube,
    pub positions: &'a Cube,
    pub slots: &'a Cube,
    pub key_cache: &'a Cube,
    pub value_cache: &'a Cube,
}

/// q (`[1, heads, head_dim]`) of `T(rms_norm(residual)) · weightᵀ (+ bias)` rotated, with k
/// and v written into the token's cache slot.
pub(super) fn gemv_normed_rope(scaled: &Cube, partials: &Cube, eps: f64, weight: &Cube, bias: Option<&Cube>, shape: QkvShape, t: &RopeTargets<'_>) -> Option<Cube> {
    let index = suffix(scaled.dtype)?;
    let QkvShape { num_heads: h, num_kv_heads: kvh, head_dim: d } = shape;
    let k = scaled.meta.shape().dims::<2>()[1];
    let n = weight.meta.shape().dims::<2>()[0];
    if n != (h + 2 * kvh) * d || !d.is_multiple_of(16) || !fits_consumer(scaled, partials, k, n) {
        return None;
    }
    let table_stride = row_stride(t.cos)?;
    let tables_ok = [t.cos, t.sin].iter().all(|c| c.dtype == DType::F32 && c.meta.shape().dims::<2>()[1] * 2 == d) && row_stride(t.sin)? == table_stride;
    let one_i32 = |c: &Cube| c.dtype == DType::I32 && c.is_contiguous() && c.meta.shape().num_elements() == 1;
    let cache_ok = |c: &Cube| c.dtype == scaled.dtype && c.is_contiguous() && c.meta.shape().dims::<4>()[2..] == [kvh, d];
    if !tables_ok || !one_i32(t.positions) || !one_i32(t.slots) || !cache_ok(t.key_cache) || t.key_cache.meta.shape() != t.value_cache.meta.shape() {
        return None;
    }
    let (x_stride, w_stride) = linear_strides(scaled, weight)?;
    let bias = bias_binding(scaled, weight, bias)?;
    let q = empty_device_contiguous_dtype(scaled.client.clone(), scaled.device.clone(), Shape::new([1, h, d]), scaled.dtype);
    let has_bias = bias.is_some() as u32;
    let buffers = vec![
        scaled.handle.clone(),
        weight.handle.clone(),
        bias.unwrap_or_else(|| scaled.handle.clone()),
        partials.handle.clone(),
        t.cos.handle.clone(),
        t.sin.handle.clone(),
        t.positions.handle.clone(),
        t.slots.handle.clone(),
        q.handle.clone(),
        t.key_cache.handle.clone(),
        t.value_cache.handle.clone(),
    ];
    let p = pack_u32(&[
        1,
        n as u32,
        k as u32,
        x_stride,
        w_stride,
        has_bias,
        (k / 8) as u32,
        (eps as f32).to_bits(),
        h as u32,
        kvh as u32,
        d as u32,
        table_stride as u32,
    ]);
    launch(&scaled.client, &rope_kernels().0[index], ((n / 8) as u32, 1, 1), buffers, p);
    Some(q)
}
