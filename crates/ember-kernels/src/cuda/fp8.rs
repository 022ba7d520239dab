//! `--quantization fp8` on CUDA: the per-row E4M3 quantization of `kernels/quantize_fp8.cu`
//! (weights once at load, one scale per output channel; activations before every product, one
//! scale per token) and the FP8 product on the Hopper GEMM's e4m3 entries
//! (`kernels/gemm_sm90.cu`), which scale the f32 sums by both. Hopper only: the quantization
//! needs sm_89's conversions and the product sm_90a's wgmma. Anything else returns `None`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_tensor::{DType, Shape};
use cubecl_cuda::CudaRuntime;

use super::gemm_sm90::{Operands, gemm_operands, gemm_sm90_available};
use super::gemm_sm90;
use super::ops::{bias_binding, row_stride};
use super::raw_kernel::{RawCudaKernel, launch, pack_u32};

const QUANTIZE_FP8: &str = include_str!("../../../../kernels/quantize_fp8.cu");

/// Threads per block of the quantization (one block per row).
const THREADS: u32 = 256;

static PRODUCTS: AtomicUsize = AtomicUsize::new(0);

/// How many linear products ran in FP8 since start (tests check the path was taken).
pub fn fp8_linear_launches() -> usize {
    PRODUCTS.load(Ordering::Relaxed)
}

fn quantize_kernels() -> &'static [RawCudaKernel; 2] {
    static CELL: OnceLock<[RawCudaKernel; 2]> = OnceLock::new();
    CELL.get_or_init(|| ["ember_quantize_fp8_f16", "ember_quantize_fp8_bf16"].map(|name| RawCudaKernel::new(QUANTIZE_FP8, name, THREADS)))
}

/// `x [m, k]` (f16/bf16) quantized per row: the E4M3 bytes `[m, k]` (a dense U8 tensor) and the
/// f32 scales `[m]`, with `x[r, c] ~= e4m3(q[r, c]) * scale[r]`. `None` when the device or the
/// layout does not fit (not Hopper, k % 16 != 0, rows not 16-byte aligned).
pub fn quantize_rows(x: &CubeTensor<CudaRuntime>) -> Option<(CubeTensor<CudaRuntime>, CubeTensor<CudaRuntime>)> {
    let index = match x.dtype {
        DType::F16 => 0,
        DType::BF16 => 1,
        _ => return None,
    };
    let [m, k] = x.meta.shape().dims::<2>();
    let stride = row_stride(x)?;
    let aligned = x.handle.offset_start.unwrap_or(0) % 16 == 0 && stride % 8 == 0;
    if m == 0 || k == 0 || k % 16 != 0 || !aligned || !gemm_sm90_available(x.device.index) {
        return None;
    }
    let q = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([m, k]), DType::U8);
    let scale = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([m]), DType::F32);
    let buffers = vec![x.handle.clone(), q.handle.clone(), scale.handle.clone()];
    launch(&x.client, &quantize_kernels()[index], (m as u32, 1, 1), buffers, pack_u32(&[k as u32, stride as u32]));
    Some((q, scale))
}

/// `x [m, k] · dequant(w)ᵀ (+ bias)` in `x`'s dtype, `w` the E4M3 bytes `[n, k]` with f32
/// scales `w_scale [n]` from [`quantize_rows`]; `x` is quantized per row first. `None` when
/// the inputs do not fit (the caller uses the f16/bf16 weight).
pub fn linear(
    x: &CubeTensor<CudaRuntime>,
    w: &CubeTensor<CudaRuntime>,
    w_scale: &CubeTensor<CudaRuntime>,
    bias: Option<&CubeTensor<CudaRuntime>>,
) -> Option<CubeTensor<CudaRuntime>> {
    let [_, k] = x.meta.shape().dims::<2>();
    let [n, k2] = w.meta.shape().dims::<2>();
    let fits = k == k2 && w.dtype == DType::U8 && w.is_contiguous() && w_scale.dtype == DType::F32 && w_scale.meta.shape().num_elements() == n;
    if !fits {
        return None;
    }
    let bias = bias_binding(x, w, bias)?;
    let (xq, x_scale) = quantize_rows(x)?;
    let y = gemm_operands(&xq, w, (k as u32, k as u32), bias, x.dtype, Operands::Fp8 { x_scale: &x_scale, w_scale })?;
    PRODUCTS.fetch_add(1, Ordering::Relaxed);
    Some(y)
}

/// Compiles the Hopper GEMM's entries for `x`'s dtype now (with `fp8`, the quantization and
/// the e4m3 entries too), by running each once on `x` (zeros, `[128, 128]`) times itself.
pub fn warm_up(x: &CubeTensor<CudaRuntime>, fp8: bool) {
    let quantized = if fp8 { quantize_rows(x) } else { None };
    gemm_sm90::warm_up(x, quantized.as_ref().map(|(q, s)| (q, s)));
}
