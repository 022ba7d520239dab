//! Host side of `kernels/gemm_sm90.cu`, the Hopper GEMM (TMA + wgmma, warp-specialised) for
//! f16/bf16 linear layers above the GEMV's rows: when it applies (compute capability 9.0 —
//! wgmma exists on sm_90a only — and the layout TMA needs), the tile width for the grid, the
//! two tensor maps cubecl encodes at launch, and the launch with 192 KB of dynamic shared
//! memory. Anything else returns `None` and `ops::gemm` runs `kernels/gemm.cu` instead.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn_cubecl::cubecl::ir::{ElemType, FloatKind, StorageType};
use burn_cubecl::cubecl::prelude::{OobFill, TensorMapFormat, TensorMapInterleave, TensorMapPrefetch, TensorMapSwizzle, TiledArgs};
use burn_cubecl::cubecl::server::{TensorMapBinding, TensorMapMeta};
use burn_cubecl::cubecl::zspace::metadata::Metadata;
use burn_cubecl::cubecl::zspace::{Shape as ZShape, Strides};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_tensor::{DType, Shape};
use cubecl_cuda::CudaRuntime;

use super::raw_kernel::{RawCudaKernel, launch_with_tensor_maps, pack_u32};

const GEMM_SM90: &str = include_str!("../../../../kernels/gemm_sm90.cu");

/// Rows of a tile (two consumer warpgroups of 64) and the K width of a stage.
const BM: usize = 128;
const BK: usize = 64;
const THREADS: u32 = 384;
/// Both tile shapes use 192 KB of stages (4 x 48 KB or 6 x 32 KB) plus 1 KB for alignment.
const SHARED_BYTES: usize = 4 * (BM + 256) * BK * 2 + 1024;

/// The two tile widths, with their kernels per dtype (f16, bf16).
struct Sm90Kernels {
    wide: [RawCudaKernel; 2],
    narrow: [RawCudaKernel; 2],
}

fn sm90_kernels() -> &'static Sm90Kernels {
    static CELL: OnceLock<Sm90Kernels> = OnceLock::new();
    CELL.get_or_init(|| {
        let k = |name| RawCudaKernel::with_shared_memory(GEMM_SM90, name, THREADS, SHARED_BYTES);
        Sm90Kernels {
            wide: [k("ember_gemm_sm90_f16_n256"), k("ember_gemm_sm90_bf16_n256")],
            narrow: [k("ember_gemm_sm90_f16_n128"), k("ember_gemm_sm90_bf16_n128")],
        }
    })
}

/// Whether device `index` is a compute capability 9.0 GPU (H100/H200/GH200), read once per
/// process for device 0's kind; `EMBER_CUDA_GEMM=mma` turns the Hopper kernel off.
fn hopper(index: usize) -> bool {
    static HOPPER: OnceLock<Vec<bool>> = OnceLock::new();
    let per_device = HOPPER.get_or_init(|| {
        if std::env::var("EMBER_CUDA_GEMM").is_ok_and(|v| v == "mma") {
            return Vec::new();
        }
        let count = cudarc::driver::result::device::get_count().unwrap_or(0);
        (0..count)
            .map(|i| {
                use cudarc::driver::sys::CUdevice_attribute::*;
                let Ok(dev) = cudarc::driver::result::device::get(i) else { return false };
                // SAFETY: `dev` is a valid device handle from `device::get`.
                let attr = |a| unsafe { cudarc::driver::result::device::get_attribute(dev, a) }.unwrap_or(0);
                (attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR), attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)) == (9, 0)
            })
            .collect()
    });
    per_device.get(index).copied().unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::prefer_wide;

    #[test]
    fn tile_width_follows_the_waves() {
        // Llama-3-8B projections on 132 SMs.
        assert!(!prefer_wide(8, 6144, 132)); // qkv at M = 1024: 3 narrow waves < 2 wide (3.6)
        assert!(prefer_wide(32, 6144, 132)); // qkv at M = 4096: 6 wide waves (10.8) < 12 narrow
        assert!(prefer_wide(8, 28672, 132)); // gate_up at M = 1024
        assert!(!prefer_wide(2, 4096, 132)); // o at M = 256: 32 wide tiles leave SMs idle
    }
}

static LAUNCHES: AtomicUsize = AtomicUsize::new(0);

/// How many products ran on the Hopper kernel since start (the parity test checks it ran).
pub fn gemm_sm90_launches() -> usize {
    LAUNCHES.load(Ordering::Relaxed)
}

/// Whether CUDA device `index` takes the Hopper kernel.
pub fn gemm_sm90_available(index: usize) -> bool {
    hopper(index)
}

/// Whether 128 x 256 tiles beat 128 x 128 ones for `tiles_m` rows of tiles and `n` columns on
/// `sms` SMs (one block per SM either way): compare the waves each needs, a wide tile costing
/// ~1.8 narrow ones (it does twice the work with better reuse). E.g. qkv (N = 6,144) at
/// M = 1,024 runs 384 narrow tiles in 3 waves rather than 192 wide ones in 2 (= 3.6).
fn prefer_wide(tiles_m: usize, n: usize, sms: usize) -> bool {
    let waves = |tiles: usize| tiles.div_ceil(sms) as f64;
    waves(tiles_m * n.div_ceil(256)) * 1.8 <= waves(tiles_m * n.div_ceil(128))
}

/// A 2-d TMA map over `t` (`[rows, cols]`, row stride `stride` elements) loading boxes of
/// `box_rows x BK` with the 128-byte swizzle, zeros outside the tensor.
fn tensor_map(t: &CubeTensor<CudaRuntime>, rows: usize, cols: usize, stride: usize, box_rows: usize, kind: FloatKind) -> TensorMapBinding {
    let map = TensorMapMeta {
        format: TensorMapFormat::Tiled(TiledArgs { tile_size: ZShape::new([box_rows, BK]) }),
        metadata: Metadata::new(ZShape::new([rows, cols]), Strides::new(&[stride, 1])),
        elem_stride: Strides::new(&[1, 1]),
        interleave: TensorMapInterleave::None,
        swizzle: TensorMapSwizzle::B128,
        prefetch: TensorMapPrefetch::B256,
        oob_fill: OobFill::Zero,
        storage_ty: StorageType::Scalar(ElemType::Float(kind)),
    };
    TensorMapBinding { binding: t.handle.clone().binding(), map }
}

/// `x [m, k] · weightᵀ (+ bias)` on the Hopper kernel, or `None` when it does not apply.
/// `x_stride`/`w_stride` are the checked row strides (multiples of 8, 16-byte aligned views),
/// `bias` the checked bias binding.
pub(super) fn gemm(
    x: &CubeTensor<CudaRuntime>,
    weight: &CubeTensor<CudaRuntime>,
    (x_stride, w_stride): (u32, u32),
    bias: Option<burn_cubecl::cubecl::server::Binding>,
) -> Option<CubeTensor<CudaRuntime>> {
    let (index, kind) = match x.dtype {
        DType::F16 => (0, FloatKind::F16),
        DType::BF16 => (1, FloatKind::BF16),
        _ => return None,
    };
    let [m, k] = x.meta.shape().dims::<2>();
    let n = weight.meta.shape().dims::<2>()[0];
    if n % 8 != 0 || !hopper(x.device.index) {
        return None;
    }
    let sms = x.client.properties().hardware.num_streaming_multiprocessors.unwrap_or(132) as usize;
    let wide = prefer_wide(m.div_ceil(BM), n, sms);
    let bn = if wide { 256 } else { 128 };
    let kernels = sm90_kernels();
    let kernel = if wide { &kernels.wide[index] } else { &kernels.narrow[index] };
    let y = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([m, n]), x.dtype);
    let has_bias = bias.is_some() as u32;
    let bias = bias.unwrap_or_else(|| y.handle.clone().binding());
    let maps = vec![tensor_map(x, m, k, x_stride as usize, BM, kind), tensor_map(weight, n, k, w_stride as usize, bn, kind)];
    let grid = (n.div_ceil(bn) as u32, m.div_ceil(BM) as u32, 1);
    let params = pack_u32(&[m as u32, n as u32, k as u32, has_bias]);
    launch_with_tensor_maps(&x.client, kernel, grid, maps, vec![y.handle.clone().binding(), bias], params);
    LAUNCHES.fetch_add(1, Ordering::Relaxed);
    Some(y)
}
