//! The CUDA [`LayerOpsBackend`]: launches of `kernels/layer_ops.cu` (RMSNorm with the residual
//! add fused in, `act(gate) * up`, q/k/v split + q/k norm + rotary embedding) and
//! `kernels/embedding.cu` (the token embedding's row gather), one kernel per op. Inputs a kernel does not cover (non-contiguous, other dtypes, exact GELU, odd head
//! sizes) go to the reference bodies.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use burn_tensor::{DType, Int, IntDType, Shape, Tensor, TensorPrimitive};
use cubecl_cuda::CudaRuntime;

use super::ops::{PerDtype, kernels, row_stride, suffix};
use super::raw_kernel::{RawCudaKernel, launch, pack_u32};
use crate::layer_ops::{Activation, LayerOpsBackend, NormStyle, QkvShape, RmsNormWeights, StepRope};
use crate::reference::layer_ops as reference;

static FALLBACKS: AtomicUsize = AtomicUsize::new(0);

/// How many layer-op calls ran the reference body since start (parity tests assert 0, so that
/// they test the kernels).
pub fn layer_op_fallbacks() -> usize {
    FALLBACKS.load(Ordering::Relaxed)
}

fn fell_back() {
    FALLBACKS.fetch_add(1, Ordering::Relaxed);
}

const LAYER_OPS: &str = include_str!("../../../../kernels/layer_ops.cu");
const EMBEDDING: &str = include_str!("../../../../kernels/embedding.cu");
const NORM_THREADS: u32 = 256;
const ACT_THREADS: u32 = 256;
const ROPE_WARPS: u32 = 4;

fn norm_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    kernels(&CELL, LAYER_OPS, ["ember_rms_norm_f32", "ember_rms_norm_f16", "ember_rms_norm_bf16"], NORM_THREADS)
}

fn act_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_act_and_mul_f32", "ember_act_and_mul_f16", "ember_act_and_mul_bf16"];
    kernels(&CELL, LAYER_OPS, names, ACT_THREADS)
}

/// The act-and-mul entries that take 8 columns per thread (16-byte loads in f16/bf16).
fn act_kernels_v8() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_act_and_mul_f32_v8", "ember_act_and_mul_f16_v8", "ember_act_and_mul_bf16_v8"];
    kernels(&CELL, LAYER_OPS, names, ACT_THREADS)
}

fn rope_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_split_qkv_rope_f32", "ember_split_qkv_rope_f16", "ember_split_qkv_rope_bf16"];
    kernels(&CELL, LAYER_OPS, names, ROPE_WARPS * 32)
}

type Cube = CubeTensor<CudaRuntime>;

/// `weight[ids]` for i32 ids, rows of a multiple of 16 bytes; `None` otherwise.
fn embedding(weight: &Cube, ids: &Cube) -> Option<Cube> {
    static KERNEL: OnceLock<RawCudaKernel> = OnceLock::new();
    let [vocab, hidden] = weight.meta.shape().dims::<2>();
    let elem = weight.dtype.size();
    let stride = row_stride(weight)?;
    if ids.dtype != DType::I32 || !ids.is_contiguous() || !(hidden * elem).is_multiple_of(16) || !(stride * elem).is_multiple_of(16) {
        return None;
    }
    let rows = ids.meta.shape().num_elements();
    let out = empty_like(weight, vec![rows, hidden]);
    if rows > 0 {
        let kernel = KERNEL.get_or_init(|| RawCudaKernel::new(EMBEDDING, "ember_embedding", 256));
        let p = pack_u32(&[rows as u32, (hidden * elem / 16) as u32, (stride * elem / 16) as u32, vocab as u32]);
        launch(&weight.client, kernel, (rows as u32, 1, 1), vec![weight.handle.clone(), ids.handle.clone(), out.handle.clone()], p);
    }
    Some(out)
}

fn float<B: burn_tensor::backend::Backend<FloatTensorPrimitive = Cube>, const D: usize>(t: &Tensor<B, D>) -> Cube {
    t.clone().into_primitive().tensor()
}

fn style_code(style: NormStyle) -> u32 {
    match style {
        NormStyle::Weight => 0,
        NormStyle::OnePlusWeight => 1,
    }
}

fn empty_like(t: &Cube, dims: Vec<usize>) -> Cube {
    empty_device_contiguous_dtype(t.client.clone(), t.device.clone(), Shape::from(dims), t.dtype)
}

/// RMSNorm of `x` (after adding `residual` when given): `(out, residual_out)`.
fn rms_norm(x: &Cube, residual: Option<&Cube>, scale: &Cube, eps: f64, style: NormStyle) -> Option<(Cube, Option<Cube>)> {
    let index = suffix(x.dtype)?;
    let [rows, dim] = x.meta.shape().dims::<2>();
    if super::ablation::ablated(super::ablation::Ablation::Norm, rows) {
        return Some((x.clone(), residual.cloned()));
    }
    let x_stride = row_stride(x)?;
    let residual_stride = match residual {
        Some(r) if r.dtype != x.dtype || r.meta.shape() != x.meta.shape() => return None,
        Some(r) => row_stride(r)?,
        None => x_stride,
    };
    if !scale.is_contiguous() || scale.dtype != DType::F32 || scale.meta.shape().num_elements() != dim {
        return None;
    }
    let out = empty_like(x, vec![rows, dim]);
    let residual_out = residual.map(|_| empty_like(x, vec![rows, dim]));
    if rows == 0 {
        return Some((out, residual_out));
    }
    let placeholder = || x.handle.clone();
    let buffers = vec![
        x.handle.clone(),
        residual.map_or_else(placeholder, |r| r.handle.clone()),
        scale.handle.clone(),
        out.handle.clone(),
        residual_out.as_ref().map_or_else(placeholder, |r| r.handle.clone()),
    ];
    let p = pack_u32(&[rows as u32, dim as u32, style_code(style), residual.is_some() as u32, (eps as f32).to_bits(), x_stride as u32, residual_stride as u32, 0]);
    launch(&x.client, &norm_kernels().0[index], (rows as u32, 1, 1), buffers, p);
    Some((out, residual_out))
}

fn act_and_mul(gate_up: &Cube, activation: Activation) -> Option<Cube> {
    let index = suffix(gate_up.dtype)?;
    let code = match activation {
        Activation::Silu => 0,
        Activation::GeluTanh => 1,
        Activation::Gelu => return None,
    };
    let [rows, two_n] = gate_up.meta.shape().dims::<2>();
    let in_stride = row_stride(gate_up)?;
    if two_n % 2 != 0 {
        return None;
    }
    let n = two_n / 2;
    let out = empty_like(gate_up, vec![rows, n]);
    if rows > 0 && n > 0 {
        let buffers = vec![gate_up.handle.clone(), out.handle.clone()];
        // 8 columns per thread when whole 16-byte words line up (cubecl's buffers are aligned).
        let (kernel, per_thread) = if n % 8 == 0 && in_stride % 8 == 0 { (&act_kernels_v8().0[index], 8) } else { (&act_kernels().0[index], 1) };
        let grid = ((n as u32 / per_thread).div_ceil(ACT_THREADS), rows as u32, 1);
        launch(&gate_up.client, kernel, grid, buffers, pack_u32(&[rows as u32, n as u32, code, in_stride as u32]));
    }
    Some(out)
}

/// Per-head q/k norms for the rope kernel: q scale, k scale (f32), eps, style.
type QkNorms = (Cube, Cube, f64, NormStyle);

fn qk_norms<B: burn_tensor::backend::Backend<FloatTensorPrimitive = Cube>>(
    qk_norm: Option<(&RmsNormWeights<B>, &RmsNormWeights<B>)>,
) -> Option<Option<QkNorms>> {
    let Some((qn, kn)) = qk_norm else { return Some(None) };
    let (qs, ks) = (float(&qn.scale), float(&kn.scale));
    if qn.style != kn.style || qn.eps != kn.eps || [&qs, &ks].iter().any(|s| !s.is_contiguous() || s.dtype != DType::F32) {
        return None;
    }
    Some(Some((qs, ks, qn.eps, qn.style)))
}

/// The rope kernels that write k and v into the paged caches (reshape_and_cache fused in).
fn rope_cache_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_split_qkv_rope_cache_f32", "ember_split_qkv_rope_cache_f16", "ember_split_qkv_rope_cache_bf16"];
    kernels(&CELL, LAYER_OPS, names, ROPE_WARPS * 32)
}

/// Where the rope kernel writes k and v: its own outputs, or the paged caches' slots.
#[derive(Clone, Copy)]
enum KvDestination<'a> {
    Outputs,
    /// Key cache, value cache (`[blocks, block_size, kv_heads, head_dim]`), slot per token (i32).
    Cache(&'a Cube, &'a Cube, &'a Cube),
}

/// [`LayerOpsBackend::split_qkv_rope`] with k and v written into their cache slots instead of
/// returned (`crate::PagedAttentionBackend::split_qkv_rope_and_cache`): returns q, or `None`
/// when a kernel does not cover the inputs (nothing was written). `rope`: cos table, sin table,
/// positions.
pub(super) fn split_qkv_rope_into_cache<B: burn_tensor::backend::Backend<FloatTensorPrimitive = Cube>>(
    qkv: &Tensor<B, 2>,
    shape: QkvShape,
    qk_norm: Option<(&RmsNormWeights<B>, &RmsNormWeights<B>)>,
    rope: (&Cube, &Cube, &Cube),
    key_cache: &Cube,
    value_cache: &Cube,
    slots: &Cube,
) -> Option<Cube> {
    let (cos, sin, positions) = rope;
    let cache = KvDestination::Cache(key_cache, value_cache, slots);
    let (q, _) = split_qkv_rope(&float(qkv), shape, qk_norms(qk_norm)?, cos, sin, positions, cache)?;
    Some(q)
}

/// q, and k and v unless they went to the cache.
fn split_qkv_rope(
    qkv: &Cube,
    shape: QkvShape,
    norms: Option<QkNorms>,
    cos: &Cube,
    sin: &Cube,
    positions: &Cube,
    kv: KvDestination<'_>,
) -> Option<(Cube, Option<(Cube, Cube)>)> {
    let index = suffix(qkv.dtype)?;
    let QkvShape { num_heads: h, num_kv_heads: kvh, head_dim: d } = shape;
    let [tokens, row] = qkv.meta.shape().dims::<2>();
    let half = cos.meta.shape().dims::<2>()[1];
    let (qkv_stride, table_stride) = (row_stride(qkv)?, row_stride(cos)?);
    let tables_ok = [cos, sin].iter().all(|t| t.dtype == DType::F32) && row_stride(sin)? == table_stride && 2 * half == d;
    if row != (h + 2 * kvh) * d || d % 2 != 0 || !tables_ok || positions.dtype != DType::I32 || !positions.is_contiguous() {
        return None;
    }
    if let KvDestination::Cache(key_cache, value_cache, slots) = kv {
        let cache_ok = |c: &Cube| c.dtype == qkv.dtype && c.is_contiguous() && c.meta.shape().dims::<4>()[2..] == [kvh, d];
        let slots_ok = slots.dtype == DType::I32 && slots.is_contiguous() && slots.meta.shape().num_elements() == tokens;
        if !cache_ok(key_cache) || !cache_ok(value_cache) || key_cache.meta.shape() != value_cache.meta.shape() || !slots_ok {
            return None;
        }
    }
    let q = empty_like(qkv, vec![tokens, h, d]);
    let kv_out = match kv {
        KvDestination::Outputs => Some((empty_like(qkv, vec![tokens, kvh, d]), empty_like(qkv, vec![tokens, kvh, d]))),
        KvDestination::Cache(..) => None,
    };
    if tokens == 0 {
        return Some((q, kv_out));
    }
    let (eps, style) = norms.as_ref().map_or((0.0, NormStyle::Weight), |n| (n.2, n.3));
    let scale_binding = |i: usize| match &norms {
        Some(n) => if i == 0 { n.0.handle.clone() } else { n.1.handle.clone() },
        None => cos.handle.clone(),
    };
    let buffers = vec![
        qkv.handle.clone(),
        cos.handle.clone(),
        sin.handle.clone(),
        positions.handle.clone(),
        scale_binding(0),
        scale_binding(1),
        q.handle.clone(),
    ];
    let (kernel, buffers) = match (&kv, &kv_out) {
        (_, Some((k, v))) => (&rope_kernels().0[index], [buffers, vec![k.handle.clone(), v.handle.clone()]].concat()),
        (KvDestination::Outputs, None) => unreachable!("outputs are allocated for KvDestination::Outputs"),
        (KvDestination::Cache(key_cache, value_cache, slots), None) => {
            let targets = vec![key_cache.handle.clone(), value_cache.handle.clone(), slots.handle.clone()];
            (&rope_cache_kernels().0[index], [buffers, targets].concat())
        }
    };
    let p = pack_u32(&[h as u32, kvh as u32, d as u32, qkv_stride as u32, table_stride as u32, norms.is_some() as u32, style_code(style), (eps as f32).to_bits()]);
    let grid = (tokens as u32, ((h + 2 * kvh) as u32).div_ceil(ROPE_WARPS), 1);
    launch(&qkv.client, kernel, grid, buffers, p);
    Some((q, kv_out))
}

fn wrap<B: burn_tensor::backend::Backend<FloatTensorPrimitive = Cube>, const D: usize>(t: Cube) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

impl<F, I, BT> LayerOpsBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn token_embedding(weight: Tensor<Self, 2>, ids: Tensor<Self, 1, Int>) -> Tensor<Self, 2> {
        match embedding(&float(&weight), &ids.clone().into_primitive()) {
            Some(out) => wrap(out),
            None => {
                fell_back();
                weight.select(0, ids)
            }
        }
    }

    fn rms_norm(x: Tensor<Self, 2>, norm: &RmsNormWeights<Self>) -> Tensor<Self, 2> {
        match rms_norm(&float(&x), None, &float(&norm.scale), norm.eps, norm.style) {
            Some((out, _)) => wrap(out),
            None => {
                fell_back();
                reference::rms_norm(x, norm)
            }
        }
    }

    fn fused_add_rms_norm(x: Tensor<Self, 2>, residual: Tensor<Self, 2>, norm: &RmsNormWeights<Self>) -> (Tensor<Self, 2>, Tensor<Self, 2>) {
        match rms_norm(&float(&x), Some(&float(&residual)), &float(&norm.scale), norm.eps, norm.style) {
            Some((out, Some(sum))) => (wrap(out), wrap(sum)),
            _ => {
                fell_back();
                let sum = residual + x;
                (reference::rms_norm(sum.clone(), norm), sum)
            }
        }
    }

    fn act_and_mul(gate_up: Tensor<Self, 2>, activation: Activation) -> Tensor<Self, 2> {
        match act_and_mul(&float(&gate_up), activation) {
            Some(out) => wrap(out),
            None => {
                fell_back();
                reference::act_and_mul(gate_up, activation)
            }
        }
    }

    fn rope_for_step(cos_table: Tensor<Self, 2>, sin_table: Tensor<Self, 2>, positions: Tensor<Self, 1, Int>, _dtype: DType) -> StepRope<Self> {
        // The kernel indexes the tables by position: nothing to gather.
        let positions = if positions.dtype() == DType::I32 { positions } else { positions.cast(IntDType::I32) };
        StepRope { positions, cos_table, sin_table, gathered: None }
    }

    fn split_qkv_rope(
        qkv: Tensor<Self, 2>,
        shape: QkvShape,
        qk_norm: Option<(&RmsNormWeights<Self>, &RmsNormWeights<Self>)>,
        rope: &StepRope<Self>,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>, Tensor<Self, 3>) {
        let positions = rope.positions.clone().into_primitive();
        let launched = qk_norms(qk_norm)
            .and_then(|norms| split_qkv_rope(&float(&qkv), shape, norms, &float(&rope.cos_table), &float(&rope.sin_table), &positions, KvDestination::Outputs));
        match launched {
            Some((q, Some((k, v)))) => (wrap(q), wrap(k), wrap(v)),
            _ => {
                fell_back();
                reference::split_qkv_rope(qkv, shape, qk_norm, rope)
            }
        }
    }
}
