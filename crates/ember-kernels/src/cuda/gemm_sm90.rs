//! Host side of `kernels/gemm_sm90.cu`, the Hopper GEMM (TMA + wgmma, warp-specialised) for
//! f16/bf16 linear layers above the GEMV's rows: when it applies (compute capability 9.0 —
//! wgmma exists on sm_90a only — and the layout TMA needs), the tile shape for the grid, the
//! two tensor maps cubecl encodes at launch, and the launch with up to 192 KB of dynamic
//! shared memory. Anything else returns `None` and `ops::gemm` runs `kernels/gemm.cu` instead.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn_cubecl::cubecl::ir::{ElemType, FloatKind, StorageType};
use burn_cubecl::cubecl::prelude::{OobFill, TensorMapFormat, TensorMapInterleave, TensorMapPrefetch, TensorMapSwizzle, TiledArgs};
use burn_cubecl::cubecl::client::ComputeClient;
use burn_cubecl::cubecl::server::{Handle, TensorMapBinding, TensorMapMeta};
use burn_cubecl::cubecl::zspace::metadata::Metadata;
use burn_cubecl::cubecl::zspace::{Shape as ZShape, Strides};
use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::tensor::CubeTensor;
use burn_tensor::{DType, Shape};
use cubecl_cuda::CudaRuntime;

use super::gemm_sm90_shape::{BK, Tile, pick_tile, split_k};
use super::raw_kernel::{RawCudaKernel, launch, launch_with_tensor_maps, pack_u32};

const GEMM_SM90: &str = include_str!("../../../../kernels/gemm_sm90.cu");

/// Dynamic shared memory of each tile's stage ring (rows of x + rows of w, 128 bytes each, per
/// stage) plus 1 KB for the 1024-byte alignment: 4 stages of 128 x 256 or 6 of 128 x 128
/// (192 KB), 4 of 128 x 192 (160 KB); 4 of 64 x 128 (96 KB), so that two blocks share an SM.
const WIDE_SHARED_BYTES: usize = 4 * (128 + 256) * BK * 2 + 1024;
const MID_SHARED_BYTES: usize = 4 * (128 + 192) * BK * 2 + 1024;
const NARROW_SHARED_BYTES: usize = 6 * (128 + 128) * BK * 2 + 1024;
const SMALL_SHARED_BYTES: usize = 4 * (64 + 128) * BK * 2 + 1024;


/// The tile shapes' kernels per operand kind ([`Kind`]: f16, bf16, e4m3 -> f16, e4m3 -> bf16),
/// and split-K's reduce per output dtype (f16, bf16).
struct Sm90Kernels {
    reduce: [RawCudaKernel; 2],
    wide: [RawCudaKernel; 4],
    mid: [RawCudaKernel; 4],
    narrow: [RawCudaKernel; 4],
    small: [RawCudaKernel; 4],
}

/// The entry names of one tile shape, in [`Kind`] order.
fn entries(tile: &str) -> [String; 4] {
    ["f16", "bf16", "e4m3_f16", "e4m3_bf16"].map(|k| format!("ember_gemm_sm90_{k}_{tile}"))
}

fn sm90_kernels() -> &'static Sm90Kernels {
    static CELL: OnceLock<Sm90Kernels> = OnceLock::new();
    CELL.get_or_init(|| {
        // Entry names live as long as the process (the kernels are built once).
        let build = |tile: &str, threads, bytes| entries(tile).map(|name| RawCudaKernel::with_shared_memory(GEMM_SM90, name.leak(), threads, bytes));
        Sm90Kernels {
            reduce: [
                RawCudaKernel::new(GEMM_SM90, "ember_gemm_split_reduce_f16", REDUCE_THREADS),
                RawCudaKernel::new(GEMM_SM90, "ember_gemm_split_reduce_bf16", REDUCE_THREADS),
            ],
            wide: build("n256", 384, WIDE_SHARED_BYTES),
            mid: build("n192", 384, MID_SHARED_BYTES),
            narrow: build("n128", 384, NARROW_SHARED_BYTES),
            small: build("m64", 256, SMALL_SHARED_BYTES),
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
        // The driver may not be initialised yet when this is asked before any CUDA work.
        if cudarc::driver::result::init().is_err() {
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


static LAUNCHES: AtomicUsize = AtomicUsize::new(0);

/// How many products ran on the Hopper kernel since start (the parity test checks it ran).
pub fn gemm_sm90_launches() -> usize {
    LAUNCHES.load(Ordering::Relaxed)
}

/// Whether CUDA device `index` takes the Hopper kernel.
pub fn gemm_sm90_available(index: usize) -> bool {
    hopper(index)
}


/// Floats of split-K's workspace (32 MB): products whose partial sums need more do not split.
const SPLIT_WORKSPACE: usize = 8 << 20;

thread_local! {
    static WORKSPACES: std::cell::RefCell<Vec<(usize, Handle)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// This thread's split-K workspace on device `index`, when `floats` fit it. One buffer per
/// thread, allocated at the first split and reused: a thread's launches are ordered on one
/// stream, so a product's reduce has read the partial sums before the next product writes
/// them.
fn split_workspace(client: &ComputeClient<CudaRuntime>, index: usize, floats: usize) -> Option<Handle> {
    if floats > SPLIT_WORKSPACE {
        return None;
    }
    WORKSPACES.with_borrow_mut(|all| {
        if let Some((_, handle)) = all.iter().find(|(i, _)| *i == index) {
            return Some(handle.clone());
        }
        let handle = client.empty(SPLIT_WORKSPACE * 4);
        all.push((index, handle.clone()));
        Some(handle)
    })
}

/// Threads per block of split-K's reduce.
const REDUCE_THREADS: u32 = 256;

const SPLIT_UNSET: u8 = 2;
static SPLIT_K: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(SPLIT_UNSET);

/// Whether products with few tiles split K ([`split_k`]). On by default: on the H200 it takes
/// decode batches of 8-16 sequences 18% faster and served decode steps ~10% faster. (The bad
/// serving runs that kept it off in the eleventh pass were the first server on a fresh machine,
/// and every configuration shows them: the driver JIT-compiles each kernel's PTX on first load;
/// docs/perf.md, twelfth pass.) `EMBER_CUDA_GEMM_SPLIT_K=0` or [`set_gemm_split_k`] turn it off.
fn split_k_enabled() -> bool {
    match SPLIT_K.load(Ordering::Relaxed) {
        SPLIT_UNSET => {
            let on = std::env::var("EMBER_CUDA_GEMM_SPLIT_K").map_or(true, |v| v != "0");
            set_gemm_split_k(on);
            on
        }
        on => on == 1,
    }
}

/// Turns split-K on or off for the products after this call (process-wide).
pub fn set_gemm_split_k(on: bool) {
    SPLIT_K.store(on as u8, Ordering::Relaxed);
}


/// A 2-d TMA map over `t` (`[rows, cols]`, row stride `stride` elements) loading boxes of
/// `box_rows` rows x 128 bytes (64 f16/bf16 or 128 e4m3 values) with the 128-byte swizzle,
/// zeros outside the tensor.
fn tensor_map(t: &CubeTensor<CudaRuntime>, rows: usize, cols: usize, stride: usize, box_rows: usize, kind: FloatKind) -> TensorMapBinding {
    let box_cols = if kind == FloatKind::E4M3 { 2 * BK } else { BK };
    let map = TensorMapMeta {
        format: TensorMapFormat::Tiled(TiledArgs { tile_size: ZShape::new([box_rows, box_cols]) }),
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

/// The operands of a product: f16/bf16 as the output, or FP8 (e4m3) with f32 row scales.
pub(super) enum Operands<'a> {
    Float,
    Fp8 { x_scale: &'a CubeTensor<CudaRuntime>, w_scale: &'a CubeTensor<CudaRuntime> },
}

/// `x [m, k] · weightᵀ (+ bias)` on the Hopper kernel, or `None` when it does not apply.
/// `x_stride`/`w_stride` are the checked row strides (multiples of 8, 16-byte aligned views),
/// `bias` the checked bias binding.
pub(super) fn gemm(
    x: &CubeTensor<CudaRuntime>,
    weight: &CubeTensor<CudaRuntime>,
    strides: (u32, u32),
    bias: Option<burn_cubecl::cubecl::server::Handle>,
) -> Option<CubeTensor<CudaRuntime>> {
    gemm_operands(x, weight, strides, bias, x.dtype, Operands::Float)
}

/// [`gemm`] for any [`Operands`]; `out` is the output dtype (f16 or bf16; for float operands,
/// theirs).
pub(super) fn gemm_operands(
    x: &CubeTensor<CudaRuntime>,
    weight: &CubeTensor<CudaRuntime>,
    (x_stride, w_stride): (u32, u32),
    bias: Option<burn_cubecl::cubecl::server::Handle>,
    out: DType,
    operands: Operands<'_>,
) -> Option<CubeTensor<CudaRuntime>> {
    if !matches!(out, DType::F16 | DType::BF16) {
        return None;
    }
    let [m, k] = x.meta.shape().dims::<2>();
    let n = weight.meta.shape().dims::<2>()[0];
    if n % 8 != 0 || !hopper(x.device.index) {
        return None;
    }
    let sms = x.client.properties().hardware.num_streaming_multiprocessors.unwrap_or(132) as usize;
    let tile = pick_tile(m, n, sms);
    let splits = if split_k_enabled() { split_k(tile, m, n, k, sms) } else { 1 };
    Some(launch_product(x, weight, (x_stride, w_stride), bias, out, operands, tile, splits))
}

/// Launches the product on `tile`, split `splits` ways along K when the workspace holds the
/// partial sums (else not split).
#[allow(clippy::too_many_arguments)]
fn launch_product(
    x: &CubeTensor<CudaRuntime>,
    weight: &CubeTensor<CudaRuntime>,
    (x_stride, w_stride): (u32, u32),
    bias: Option<burn_cubecl::cubecl::server::Handle>,
    out: DType,
    operands: Operands<'_>,
    tile: Tile,
    splits: usize,
) -> CubeTensor<CudaRuntime> {
    let out_index = if out == DType::F16 { 0 } else { 1 };
    let (index, kind, bk) = match operands {
        Operands::Float => (out_index, if out == DType::F16 { FloatKind::F16 } else { FloatKind::BF16 }, BK),
        Operands::Fp8 { .. } => (2 + out_index, FloatKind::E4M3, 2 * BK),
    };
    let [m, k] = x.meta.shape().dims::<2>();
    let n = weight.meta.shape().dims::<2>()[0];
    let (bm, bn) = (tile.rows(), tile.cols());
    let kernels = sm90_kernels();
    let kernel = match tile {
        Tile::Wide => &kernels.wide[index],
        Tile::Mid => &kernels.mid[index],
        Tile::Narrow => &kernels.narrow[index],
        Tile::Small => &kernels.small[index],
    };
    let y = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([m, n]), out);
    let has_bias = bias.is_some() as u32;
    let bias = bias.unwrap_or_else(|| y.handle.clone());
    let maps = vec![tensor_map(x, m, k, x_stride as usize, bm, kind), tensor_map(weight, n, k, w_stride as usize, bn, kind)];
    let k_tiles = k.div_ceil(bk);
    let mut per_split = k_tiles.div_ceil(splits);
    let mut splits = k_tiles.div_ceil(per_split);
    let workspace = if splits > 1 { split_workspace(&x.client, x.device.index, splits * m * n) } else { None };
    if workspace.is_none() {
        (per_split, splits) = (k_tiles, 1);
    }
    let grid = (n.div_ceil(bn) as u32, m.div_ceil(bm) as u32, splits as u32);
    let params = pack_u32(&[m as u32, n as u32, k as u32, has_bias, per_split as u32]);
    let partials = workspace.clone().unwrap_or_else(|| y.handle.clone());
    let mut buffers = vec![y.handle.clone(), bias.clone(), partials.clone()];
    if let Operands::Fp8 { x_scale, w_scale } = operands {
        buffers.extend([x_scale.handle.clone(), w_scale.handle.clone()]);
    }
    launch_with_tensor_maps(&x.client, kernel, grid, maps, buffers, params);
    if workspace.is_some() {
        let reduce_grid = ((m * n / 4).div_ceil(REDUCE_THREADS as usize) as u32, 1, 1);
        let params = pack_u32(&[m as u32, n as u32, splits as u32, has_bias]);
        launch(&x.client, &kernels.reduce[out_index], reduce_grid, vec![partials, bias, y.handle.clone()], params);
    }
    LAUNCHES.fetch_add(1, Ordering::Relaxed);
    y
}

/// Runs every tile shape's entry for `dtype` (f16/bf16; with `fp8`, the e4m3 entries too) and
/// split-K's reduce once on a small product of zeros, so that NVRTC compiles them now rather
/// than when a step first takes that shape: a server's first steps of new shapes otherwise
/// wait seconds for the compiler (docs/perf.md, twelfth pass). Nothing on other devices.
pub(super) fn warm_up(x: &CubeTensor<CudaRuntime>, fp8: Option<(&CubeTensor<CudaRuntime>, &CubeTensor<CudaRuntime>)>) {
    if !hopper(x.device.index) || !matches!(x.dtype, DType::F16 | DType::BF16) {
        return;
    }
    let [_, k] = x.meta.shape().dims::<2>();
    let strides = (k as u32, k as u32);
    for tile in [Tile::Wide, Tile::Mid, Tile::Narrow, Tile::Small] {
        launch_product(x, x, strides, None, x.dtype, Operands::Float, tile, 1);
        if let Some((q, scale)) = fp8 {
            launch_product(q, q, strides, None, x.dtype, Operands::Fp8 { x_scale: scale, w_scale: scale }, tile, 1);
        }
    }
    if split_k_enabled() {
        launch_product(x, x, strides, None, x.dtype, Operands::Float, Tile::Small, 2);
    }
}
