//! The CUDA launches of `kernels/reshape_and_cache.cu`, `kernels/gemv.cu` and
//! `kernels/gemm.cu` (the Hopper GEMM is `gemm_sm90`, attention is `attention`) on
//! burn tensors of `CubeBackend<CudaRuntime, ..>`: argument checks (dtype, contiguity, shapes
//! the kernels support), output allocation, grid sizes. A case a kernel does not cover returns
//! `None` and the caller falls back to the reference implementation.

use std::sync::OnceLock;

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_tensor::{DType, Shape};
use cubecl_cuda::CudaRuntime;

use burn_cubecl::cubecl::server::Handle;

use super::raw_kernel::{RawCudaKernel, launch, pack_u32};

const RESHAPE_AND_CACHE: &str = include_str!("../../../../kernels/reshape_and_cache.cu");
const GEMV: &str = include_str!("../../../../kernels/gemv.cu");
const GEMM: &str = include_str!("../../../../kernels/gemm.cu");

/// Largest number of rows the GEMV kernel takes (`EMBER_GEMV_MAX_M`); bigger batches use
/// burn's matmul.
pub const GEMV_MAX_ROWS: usize = 8;


pub(super) fn suffix(dtype: DType) -> Option<usize> {
    match dtype {
        DType::F32 => Some(0),
        DType::F16 => Some(1),
        DType::BF16 => Some(2),
        _ => None,
    }
}

/// One kernel per dtype, built once.
pub(super) struct PerDtype(pub(super) [RawCudaKernel; 3]);

pub(super) fn kernels(cell: &'static OnceLock<PerDtype>, file: &'static str, names: [&'static str; 3], threads: u32) -> &'static PerDtype {
    cell.get_or_init(|| PerDtype(names.map(|n| RawCudaKernel::new(file, n, threads))))
}

fn reshape_and_cache_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    let names = ["ember_reshape_and_cache_f32", "ember_reshape_and_cache_f16", "ember_reshape_and_cache_bf16"];
    kernels(&CELL, RESHAPE_AND_CACHE, names, 128)
}

fn gemv_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    kernels(&CELL, GEMV, ["ember_gemv_f32", "ember_gemv_f16", "ember_gemv_bf16"], 256)
}

/// The one-row entries (single-stream decode).
fn gemv_one_row_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    kernels(&CELL, GEMV, ["ember_gemv_f32_m1", "ember_gemv_f16_m1", "ember_gemv_bf16_m1"], 256)
}

fn gemm_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    kernels(&CELL, GEMM, ["ember_gemm_f32", "ember_gemm_f16", "ember_gemm_bf16"], 256)
}

/// Whether the kernels' 16-byte vector loads may read `t` (its view starts 16-byte aligned).
fn aligned16(t: &CubeTensor<CudaRuntime>) -> bool {
    t.handle.offset_start.unwrap_or(0) % 16 == 0
}

/// The element distance between rows of a 2-d tensor whose rows are dense (cubecl pitches the
/// rows of some 2-d allocations on CUDA, so that is not always the row length).
pub(super) fn row_stride(t: &CubeTensor<CudaRuntime>) -> Option<usize> {
    let strides = t.meta.strides();
    (strides.len() == 2 && (strides[1] == 1 || t.meta.shape().dims::<2>()[1] <= 1)).then_some(strides[0])
}

/// The bias's handle (`Some(None)` when there is none); `None` when it does not fit (dtype,
/// length, layout).
pub(super) fn bias_binding(
    x: &CubeTensor<CudaRuntime>,
    weight: &CubeTensor<CudaRuntime>,
    bias: Option<&CubeTensor<CudaRuntime>>,
) -> Option<Option<Handle>> {
    let Some(b) = bias else { return Some(None) };
    let n = weight.meta.shape().dims::<2>()[0];
    let ok = b.dtype == x.dtype && b.is_contiguous() && b.meta.shape().num_elements() == n;
    ok.then(|| Some(b.handle.clone()))
}

/// The row strides of `x [m, k]` and `weight [n, k]` when they fit the GEMV/GEMM kernels'
/// requirements (16-byte aligned rows, k % 8 == 0).
pub(super) fn linear_strides(x: &CubeTensor<CudaRuntime>, weight: &CubeTensor<CudaRuntime>) -> Option<(u32, u32)> {
    let [m, k] = x.meta.shape().dims::<2>();
    let [n, k2] = weight.meta.shape().dims::<2>();
    let (xs, ws) = (row_stride(x)?, row_stride(weight)?);
    let ok = m > 0 && n > 0 && k == k2 && k % 8 == 0 && xs % 8 == 0 && ws % 8 == 0 && weight.dtype == x.dtype;
    (ok && aligned16(x) && aligned16(weight)).then_some((xs as u32, ws as u32))
}

/// `x [m, k] · weightᵀ` (`weight [n, k]`) for any `m`: on Hopper the TMA + wgmma kernel
/// (`gemm_sm90`) for f16/bf16, elsewhere tensor cores through mma.sync,
/// an exact-f32 FFMA kernel for f32 (burn's f32 matmul runs as TF32). `None` when the inputs
/// don't fit the kernel (the caller uses burn's matmul).
pub fn gemm(x: &CubeTensor<CudaRuntime>, weight: &CubeTensor<CudaRuntime>, bias: Option<&CubeTensor<CudaRuntime>>) -> Option<CubeTensor<CudaRuntime>> {
    let index = suffix(x.dtype)?;
    let (x_stride, w_stride) = linear_strides(x, weight)?;
    let bias = bias_binding(x, weight, bias)?;
    if let Some(y) = super::gemm_sm90::gemm(x, weight, (x_stride, w_stride), bias.clone()) {
        return Some(y);
    }
    let [m, k] = x.meta.shape().dims::<2>();
    let n = weight.meta.shape().dims::<2>()[0];
    let y = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([m, n]), x.dtype);
    let tile = if x.dtype == DType::F32 { 64 } else { 128 };
    let has_bias = bias.is_some() as u32;
    let bias = bias.unwrap_or_else(|| x.handle.clone());
    let buffers = vec![x.handle.clone(), weight.handle.clone(), y.handle.clone(), bias];
    let grid = (n.div_ceil(tile) as u32, m.div_ceil(tile) as u32, 1);
    launch(&x.client, &gemm_kernels().0[index], grid, buffers, pack_u32(&[m as u32, n as u32, k as u32, x_stride, w_stride, has_bias]));
    Some(y)
}

/// `x [m, k] · weightᵀ` (`weight [n, k]`) for `m <= GEMV_MAX_ROWS`; `None` when the inputs
/// don't fit the kernel (the caller uses burn's matmul).
pub fn gemv(x: &CubeTensor<CudaRuntime>, weight: &CubeTensor<CudaRuntime>, bias: Option<&CubeTensor<CudaRuntime>>) -> Option<CubeTensor<CudaRuntime>> {
    let index = suffix(x.dtype)?;
    let [m, k] = x.meta.shape().dims::<2>();
    let n = weight.meta.shape().dims::<2>()[0];
    if m > GEMV_MAX_ROWS {
        return None;
    }
    if n == k && super::ablation::ablated(super::ablation::Ablation::SquareGemv, m) {
        return Some(x.clone());
    }
    let (x_stride, w_stride) = linear_strides(x, weight)?;
    let bias = bias_binding(x, weight, bias)?;
    let y = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([m, n]), x.dtype);
    let has_bias = bias.is_some() as u32;
    let bias = bias.unwrap_or_else(|| x.handle.clone());
    let buffers = vec![x.handle.clone(), weight.handle.clone(), y.handle.clone(), bias];
    let grid = (n.div_ceil(8) as u32, 1, 1);
    let kernel = if m == 1 { &gemv_one_row_kernels().0[index] } else { &gemv_kernels().0[index] };
    launch(&x.client, kernel, grid, buffers, pack_u32(&[m as u32, n as u32, k as u32, x_stride, w_stride, has_bias]));
    Some(y)
}

fn gemv_gated_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    kernels(&CELL, GEMV, ["ember_gemv_f32_gated", "ember_gemv_f16_gated", "ember_gemv_bf16_gated"], 256)
}

/// `act(gate) * up` of `x [1, k] · weightᵀ` (`weight [2n, k]`, gate rows first) in one launch
/// (`activation`: `EMBER_ACT_*`); `None` when the inputs don't fit the kernel.
pub fn gemv_gated(
    x: &CubeTensor<CudaRuntime>,
    weight: &CubeTensor<CudaRuntime>,
    bias: Option<&CubeTensor<CudaRuntime>>,
    activation: u32,
) -> Option<CubeTensor<CudaRuntime>> {
    let index = suffix(x.dtype)?;
    let [m, k] = x.meta.shape().dims::<2>();
    let two_n = weight.meta.shape().dims::<2>()[0];
    if m != 1 || two_n % 2 != 0 {
        return None;
    }
    let n = two_n / 2;
    let (x_stride, w_stride) = linear_strides(x, weight)?;
    let bias = bias_binding(x, weight, bias)?;
    let y = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([1, n]), x.dtype);
    let has_bias = bias.is_some() as u32;
    let bias = bias.unwrap_or_else(|| x.handle.clone());
    let buffers = vec![x.handle.clone(), weight.handle.clone(), y.handle.clone(), bias];
    let grid = (n.div_ceil(8) as u32, 1, 1);
    launch(&x.client, &gemv_gated_kernels().0[index], grid, buffers, pack_u32(&[n as u32, k as u32, x_stride, w_stride, has_bias, activation]));
    Some(y)
}

/// Writes `key`/`value` (`[tokens, kv_heads, head_dim]`) into the caches at `slots`
/// (`[tokens]`, i32) in place. `None` (nothing written) when the inputs don't fit the kernel.
pub fn reshape_and_cache(
    key_cache: &CubeTensor<CudaRuntime>,
    value_cache: &CubeTensor<CudaRuntime>,
    key: &CubeTensor<CudaRuntime>,
    value: &CubeTensor<CudaRuntime>,
    slots: &CubeTensor<CudaRuntime>,
) -> Option<()> {
    let index = suffix(key_cache.dtype)?;
    let same = [value_cache.dtype, key.dtype, value.dtype].iter().all(|&d| d == key_cache.dtype);
    let contiguous = [key_cache, value_cache, key, value, slots].iter().all(|t| t.is_contiguous());
    // No `can_mut()` check: the handles' other owners are launches still queued on this stream
    // (ordered before this write) and the engine never keeps clones of a layer's cache, so the
    // write in place is what vLLM's op does. Callers must not hold copies of the cache tensors.
    if !same || !contiguous || slots.dtype != DType::I32 {
        return None;
    }
    let dims = key.meta.shape().dims::<3>();
    let tokens = dims[0];
    if tokens == 0 {
        return Some(());
    }
    let row = (dims[1] * dims[2]) as u32;
    let buffers = vec![
        key.handle.clone(),
        value.handle.clone(),
        key_cache.handle.clone(),
        value_cache.handle.clone(),
        slots.handle.clone(),
    ];
    launch(&key.client, &reshape_and_cache_kernels().0[index], (tokens as u32, 1, 1), buffers, pack_u32(&[row, 0]));
    Some(())
}
