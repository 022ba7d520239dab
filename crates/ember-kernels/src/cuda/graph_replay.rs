//! Replaying a captured step graph ([`CudaStepGraph`]). By default the graph begins with one
//! copy node per input buffer, from page-locked host memory the graph owns, and ends with copy
//! nodes of the read-back buffers into page-locked memory (`step_graph.rs` captures them), so a
//! replay is host memcpys, one `cuGraphLaunch` and one wait: no driver call per input.
//! `EMBER_CUDA_GRAPH_STAGING=0` captures no copy nodes and copies each input and output with a
//! driver call from pageable memory instead (as before), to compare.
//!
//! With `EMBER_PROFILE_STEPS=N`, every N replays print the host's mean time per replay in
//! staging the inputs, launching (and queueing the read-back copies) and waiting for the
//! device: the first two are time the device idles between two graph steps.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use cudarc::driver::{CudaContext, result};

use super::step_graph::{CudaStepGraph, REPLAYS};
use crate::StepGraph;

/// Whether graphs are captured with their input and output copies (`EMBER_CUDA_GRAPH_STAGING`).
pub(super) fn staged_copies() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("EMBER_CUDA_GRAPH_STAGING").map_or(true, |v| v != "0"))
}

/// Page-locked host memory (`cuMemHostAlloc`), freed on drop.
pub(super) struct PinnedBuffer {
    ptr: *mut u8,
    len: usize,
    ctx: Arc<CudaContext>,
}

impl PinnedBuffer {
    pub(super) fn new(ctx: &Arc<CudaContext>, len: usize) -> Result<Self, String> {
        ctx.bind_to_thread().map_err(|e| format!("{e:?}"))?;
        // SAFETY: a plain allocation of `len.max(1)` bytes, freed once in `drop`.
        let ptr = unsafe { result::malloc_host(len.max(1), 0) }.map_err(|e| format!("page-locked memory: {e:?}"))? as *mut u8;
        Ok(Self { ptr, len, ctx: ctx.clone() })
    }

    /// The host address of byte `offset`.
    pub(super) fn at(&self, offset: usize) -> *mut u8 {
        assert!(offset <= self.len);
        // SAFETY: within the allocation.
        unsafe { self.ptr.add(offset) }
    }

    fn bytes(&mut self) -> &mut [u8] {
        // SAFETY: `len` bytes allocated by `new`, only reached through `&mut self`.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for PinnedBuffer {
    fn drop(&mut self) {
        let _ = self.ctx.bind_to_thread();
        // SAFETY: allocated by `malloc_host` in `new`; no graph that copies from it runs any more
        // (replays wait for their graph).
        let _ = unsafe { result::free_host(self.ptr as *mut std::ffi::c_void) };
    }
}

// SAFETY: the buffer is plain host memory, used through `&mut` (one thread at a time).
unsafe impl Send for PinnedBuffer {}

/// The page-locked memory a graph's copy nodes read its inputs from and write its read-back
/// buffers into, with each buffer's byte offset there (16-byte aligned).
pub(super) struct Staging {
    pub(super) inputs: PinnedBuffer,
    pub(super) input_offsets: Vec<usize>,
    pub(super) outputs: PinnedBuffer,
    pub(super) output_offsets: Vec<usize>,
}

/// Byte offsets of buffers of `sizes` laid out 16-byte aligned, and the total.
pub(super) fn layout(sizes: impl Iterator<Item = usize>) -> (Vec<usize>, usize) {
    let mut total = 0;
    let offsets = sizes
        .map(|size| {
            let offset = total;
            total += size.div_ceil(16) * 16;
            offset
        })
        .collect();
    (offsets, total)
}

fn as_bytes(data: &[i32]) -> &[u8] {
    // SAFETY: i32 has no padding; the byte view covers the same memory.
    unsafe { std::slice::from_raw_parts(data.as_ptr() as *const u8, std::mem::size_of_val(data)) }
}

impl StepGraph for CudaStepGraph {
    fn replay(&mut self, inputs: &[&[i32]], outputs: &mut [&mut [i32]]) -> Result<(), String> {
        if inputs.len() != self.inputs.len() || outputs.len() != self.read_back.len() {
            let (i, o) = (self.inputs.len(), self.read_back.len());
            return Err(format!("{} inputs and {} outputs for a graph captured with {i} and {o}", inputs.len(), outputs.len()));
        }
        for (&(_, size), data) in self.inputs.iter().zip(inputs) {
            if std::mem::size_of_val(*data) > size {
                return Err(format!("an input of {} bytes for a buffer of {size}", std::mem::size_of_val(*data)));
            }
        }
        for (&(_, size), out) in self.read_back.iter().zip(outputs.iter()) {
            if std::mem::size_of_val(*out) > size {
                return Err(format!("{} bytes read back from a buffer of {size}", std::mem::size_of_val(*out)));
            }
        }
        let started = Instant::now();
        self.stream.context().bind_to_thread().map_err(|e| format!("{e:?}"))?;
        let stream = self.stream.cu_stream();
        if let Some(staging) = &mut self.staging {
            let bytes = staging.inputs.bytes();
            for (&offset, data) in staging.input_offsets.iter().zip(inputs) {
                let data = as_bytes(data);
                bytes[offset..offset + data.len()].copy_from_slice(data);
            }
        } else {
            for (&(ptr, _), data) in self.inputs.iter().zip(inputs) {
                // SAFETY: `ptr` is a live buffer of at least `data`'s size (checked above) held by
                // the graph; `data` outlives the synchronize below.
                unsafe { result::memcpy_htod_async(ptr, data, stream) }.map_err(|e| format!("{e:?}"))?;
            }
        }
        let staged = Instant::now();
        self.graph.launch().map_err(|e| format!("{e:?}"))?;
        if self.staging.is_none() {
            for (&(ptr, _), out) in self.read_back.iter().zip(outputs.iter_mut()) {
                // SAFETY: `ptr` is a live buffer of at least `out`'s size held by the graph; `out`
                // outlives the synchronize below, which completes the copy.
                unsafe { result::memcpy_dtoh_async(*out, ptr, stream) }.map_err(|e| format!("{e:?}"))?;
            }
        }
        let launched = Instant::now();
        self.stream.synchronize().map_err(|e| format!("{e:?}"))?;
        if let Some(staging) = &mut self.staging {
            let bytes = staging.outputs.bytes();
            for (&offset, out) in staging.output_offsets.iter().zip(outputs.iter_mut()) {
                let len = std::mem::size_of_val(*out);
                for (value, word) in out.iter_mut().zip(bytes[offset..offset + len].chunks_exact(4)) {
                    *value = i32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                }
            }
        }
        REPLAYS.fetch_add(1, Ordering::Relaxed);
        record_times(staged - started, launched - staged, launched.elapsed());
        Ok(())
    }
}

/// Sums of the replays' host phases, in seconds, and their count.
#[derive(Default)]
struct Times {
    replays: u32,
    stage: f64,
    launch: f64,
    wait: f64,
}

fn record_times(stage: std::time::Duration, launch: std::time::Duration, wait: std::time::Duration) {
    static EVERY: OnceLock<Option<u32>> = OnceLock::new();
    static TIMES: Mutex<Times> = Mutex::new(Times { replays: 0, stage: 0.0, launch: 0.0, wait: 0.0 });
    let Some(every) = *EVERY.get_or_init(|| std::env::var("EMBER_PROFILE_STEPS").ok()?.parse::<u32>().ok().filter(|&n| n > 0)) else {
        return;
    };
    let mut times = TIMES.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    times.replays += 1;
    times.stage += stage.as_secs_f64();
    times.launch += launch.as_secs_f64();
    times.wait += wait.as_secs_f64();
    if times.replays == every {
        let per = |s: f64| s * 1e3 / f64::from(every);
        eprintln!(
            "[ember graph replay] {every} replays ({}), ms/replay: stage inputs {:.4}, launch {:.4}, wait {:.3}",
            if staged_copies() { "copy nodes" } else { "driver copies" },
            per(times.stage),
            per(times.launch),
            per(times.wait)
        );
        *times = Times::default();
    }
}
