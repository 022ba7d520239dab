//! The CUDA [`SamplingBackend`]: `kernels/sampling.cu` picks every row's token (argmax for
//! greedy rows, inverse CDF otherwise, after the row's temperature) from f32, f16 or bf16
//! logits: in one launch of a block per row, or, for up to 16 rows ([`set_sample_split_max_rows`]), in three
//! launches spread over many blocks per row (the same token either way). Logits without unit
//! column stride go to the reference.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::cubecl::client::ComputeClient;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use burn_tensor::{DType, Int, Shape, Tensor, TensorData};
use cubecl_cuda::CudaRuntime;

use super::ops::{PerDtype, kernels, row_stride, suffix};
use super::raw_kernel::{RawCudaKernel, launch, pack_u32};
use crate::{PendingIds, SamplingBackend, read_ids};
use crate::reference::sampling as reference;

const SAMPLING: &str = include_str!("../../../../kernels/sampling.cu");

/// `EMBER_SAMPLE_CHUNKS`: threads of the one-launch and final-pick blocks, one chunk each.
const CHUNKS: u32 = 1024;
/// `EMBER_SAMPLE_SLICES` and `EMBER_SAMPLE_SLICE_THREADS`: the split max's blocks per row.
const SLICES: u32 = 32;
const SLICE_THREADS: u32 = 256;
/// `EMBER_SAMPLE_CHUNK_THREADS`: the split chunk sums' threads per block.
const CHUNK_THREADS: u32 = 64;
/// f32 words of scratch per row on the split path (`EMBER_SAMPLE_SCRATCH`).
const SCRATCH: usize = (2 * SLICES + CHUNKS) as usize;
/// Most rows picked by the split path by default: with fewer rows than SMs, one block per row
/// leaves the GPU idle (a 128k-entry row took ~80 us on one SM at batch 1).
const SPLIT_MAX_ROWS: usize = 16;
/// `usize::MAX`: not read from the environment yet.
static SPLIT_ROWS: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets the most rows the split path takes (0: never; tests compare the two paths). The start
/// value is `EMBER_SAMPLE_SPLIT_MAX_ROWS`, by default 16.
pub fn set_sample_split_max_rows(rows: usize) {
    SPLIT_ROWS.store(rows, Ordering::Relaxed);
}

fn split_max_rows() -> usize {
    let rows = SPLIT_ROWS.load(Ordering::Relaxed);
    if rows != usize::MAX {
        return rows;
    }
    let rows = std::env::var("EMBER_SAMPLE_SPLIT_MAX_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(SPLIT_MAX_ROWS).min(usize::MAX - 1);
    SPLIT_ROWS.store(rows, Ordering::Relaxed);
    rows
}

fn sample_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    kernels(&CELL, SAMPLING, ["ember_sample_tokens_f32", "ember_sample_tokens_f16", "ember_sample_tokens_bf16"], CHUNKS)
}

/// The split path's three launches.
fn split_kernels() -> [&'static PerDtype; 3] {
    static MAX: OnceLock<PerDtype> = OnceLock::new();
    static SUMS: OnceLock<PerDtype> = OnceLock::new();
    static PICK: OnceLock<PerDtype> = OnceLock::new();
    [
        kernels(&MAX, SAMPLING, ["ember_sample_max_f32", "ember_sample_max_f16", "ember_sample_max_bf16"], SLICE_THREADS),
        kernels(&SUMS, SAMPLING, ["ember_sample_chunks_f32", "ember_sample_chunks_f16", "ember_sample_chunks_bf16"], CHUNK_THREADS),
        kernels(&PICK, SAMPLING, ["ember_sample_pick_f32", "ember_sample_pick_f16", "ember_sample_pick_bf16"], CHUNKS),
    ]
}

impl<F, I, BT> SamplingBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn sample_tokens(logits: Tensor<Self, 2>, uniforms: &[f32], temperatures: &[f32]) -> Tensor<Self, 2, Int> {
        let rows = logits.dims()[0];
        if rows != uniforms.len() || rows != temperatures.len() || I::dtype() != DType::I32 {
            return reference::sample_tokens(logits, uniforms, temperatures);
        }
        let bits: Vec<i32> = uniforms.iter().chain(temperatures).map(|v| v.to_bits() as i32).collect();
        let row_params = Tensor::<Self, 1, Int>::from_data(TensorData::new(bits, [2 * rows]), (&logits.device(), DType::I32));
        match Self::sample_tokens_device(logits.clone(), row_params) {
            Some(ids) => ids,
            None => reference::sample_tokens(logits, uniforms, temperatures),
        }
    }

    fn sample_tokens_device(logits: Tensor<Self, 2>, row_params: Tensor<Self, 1, Int>) -> Option<Tensor<Self, 2, Int>> {
        let x = logits.into_primitive().tensor();
        let params = row_params.into_primitive();
        let [rows, vocab] = x.meta.shape().dims::<2>();
        let fits = rows > 0 && vocab > 0 && I::dtype() == DType::I32 && params.dtype == DType::I32 && params.meta.shape().num_elements() == 2 * rows;
        let (Some(stride), Some(index), true) = (row_stride(&x), suffix(x.dtype), fits) else { return None };
        let out = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([rows, 1]), DType::I32);
        let p = pack_u32(&[rows as u32, vocab as u32, stride as u32, 0]);
        if rows > split_max_rows() {
            let buffers = vec![x.handle.clone(), params.handle.clone(), out.handle.clone()];
            launch(&x.client, &sample_kernels().0[index], (rows as u32, 1, 1), buffers, p);
            return Some(Tensor::from_primitive(out));
        }
        let scratch = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([rows * SCRATCH]), DType::F32);
        let [max, sums, pick] = split_kernels();
        let buffers = vec![x.handle.clone(), params.handle.clone(), scratch.handle.clone()];
        launch(&x.client, &max.0[index], (SLICES, rows as u32, 1), buffers.clone(), p.clone());
        launch(&x.client, &sums.0[index], (CHUNKS / CHUNK_THREADS, rows as u32, 1), buffers, p.clone());
        let buffers = vec![x.handle.clone(), params.handle.clone(), scratch.handle.clone(), out.handle.clone()];
        launch(&x.client, &pick.0[index], (rows as u32, 1, 1), buffers, p);
        Some(Tensor::from_primitive(out))
    }

    fn patch_input_ids(ids: Tensor<Self, 1, Int>, rows: Tensor<Self, 1, Int>, sampled: Tensor<Self, 1, Int>, from: Tensor<Self, 1, Int>) -> Tensor<Self, 1, Int> {
        let (target, r, src, f) = (ids.into_primitive(), rows.into_primitive(), sampled.into_primitive(), from.into_primitive());
        let n = r.meta.shape().num_elements();
        let fits = [&target, &r, &src, &f].iter().all(|t| t.dtype == DType::I32 && t.is_contiguous()) && f.meta.shape().num_elements() == n;
        // Written in place: only a buffer nothing else holds (the step's fresh upload).
        if !fits || n == 0 || !target.handle.can_mut() {
            let wrap = Tensor::<Self, 1, Int>::from_primitive;
            return reference_patch(wrap(target), wrap(r), wrap(src), wrap(f));
        }
        static KERNEL: OnceLock<RawCudaKernel> = OnceLock::new();
        let kernel = KERNEL.get_or_init(|| RawCudaKernel::new(PATCH_IDS, "ember_patch_input_ids", 256));
        let buffers = vec![target.handle.clone(), r.handle.clone(), src.handle.clone(), f.handle.clone()];
        launch(&target.client, kernel, ((n as u32).div_ceil(256), 1, 1), buffers, pack_u32(&[n as u32]));
        Tensor::from_primitive(target)
    }

    fn read_ids_early(ids: Tensor<Self, 2, Int>) -> PendingIds {
        let t = ids.into_primitive();
        let rows = t.meta.shape().num_elements();
        if !t.is_contiguous() || !matches!(t.dtype, DType::I32 | DType::I64) {
            return PendingIds::Ready(read_ids(Tensor::<Self, 2, Int>::from_primitive(t).into_data()));
        }
        // cubecl queues the copy and its fence now, on the stream of the work queued so far;
        // the future only waits for the fence.
        let wide = t.dtype == DType::I64;
        let read = static_client(&t.client, t.device.index).read_async(vec![t.handle.clone()]);
        PendingIds::Copying(Box::new(move || {
            let bytes = burn_cubecl::cubecl::future::block_on(read).expect("reading the sampled token ids").remove(0);
            let word = if wide { 8 } else { 4 };
            bytes[..rows * word]
                .chunks_exact(word)
                .map(|c| if wide { i64::from_le_bytes(c.try_into().expect("8 bytes")) as u32 } else { i32::from_le_bytes(c.try_into().expect("4 bytes")) as u32 })
                .collect()
        }))
    }
}

/// A client of device `index` that outlives any step (cubecl's read future borrows its
/// client): one clone per device, kept for the process.
fn static_client(client: &ComputeClient<CudaRuntime>, index: usize) -> &'static ComputeClient<CudaRuntime> {
    static CLIENTS: std::sync::Mutex<Vec<(usize, &'static ComputeClient<CudaRuntime>)>> = std::sync::Mutex::new(Vec::new());
    let mut clients = CLIENTS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some((_, c)) = clients.iter().find(|(i, _)| *i == index) {
        return c;
    }
    let leaked: &'static ComputeClient<CudaRuntime> = Box::leak(Box::new(client.clone()));
    clients.push((index, leaked));
    leaked
}

const PATCH_IDS: &str = include_str!("../../../../kernels/patch_ids.cu");

/// The trait's default body (burn's select and scatter), for inputs the kernel does not take.
fn reference_patch<B: burn_tensor::backend::Backend>(
    ids: Tensor<B, 1, Int>,
    rows: Tensor<B, 1, Int>,
    sampled: Tensor<B, 1, Int>,
    from: Tensor<B, 1, Int>,
) -> Tensor<B, 1, Int> {
    let n = rows.dims()[0];
    ids.scatter_nd(rows.reshape([n, 1]), sampled.select(0, from), burn_tensor::IndexingUpdateOp::Assign)
}
