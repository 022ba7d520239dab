//! CUDA graphs of a forward pass ([`crate::StepGraphBackend`] for the CUDA backend).
//!
//! cubecl 0.10 keeps its streams private and launches from its own device thread, so stream
//! capture cannot reach them. Instead, every [`RawCudaKernel`] launch made on this thread while
//! a capture is open is *recorded* (it still runs on cubecl's stream as usual): kernel, grid,
//! buffer handles, by-value parameters. Closing the capture resolves each buffer's device
//! pointer once, compiles the same sources with NVRTC (cached per entry point), and captures
//! those launches on a stream of Ember's own (one per graph) into a CUDA graph. The graph holds a handle to
//! every buffer it touches, so cubecl never gives that memory to anything else while the
//! graph lives.
//!
//! This is sound because a supported forward pass launches only Ember kernels. What cannot be
//! replayed makes the capture fail instead: a launch with TMA descriptors (the Hopper GEMM,
//! above the GEMV's rows), a kernel falling back to burn ops during the recording (the
//! fallback counters moved), or no Ember launch at all. A burn op that does not count as a
//! fallback (Gemma's embedding scale) is not seen here: the engine compares the first replay
//! of each graph with an eager pass and drops graphs on any difference.
//!
//! A replay (`graph_replay.rs`) stages the new inputs in page-locked memory that the graph's
//! first nodes copy into the captured input buffers, launches the graph on the graph's stream,
//! whose last nodes copy the read-back buffers (the sampled token ids) to page-locked memory,
//! and waits; the caller syncs cubecl's stream before (earlier steps' work is ordered before
//! the graph by the two host waits, not by stream order).
//!
//! Kernels whose file promises to wait for the previous kernel itself
//! ([`RawCudaKernel::programmatic`], `ember_pdl_enter` in `kernels/common.cuh`) are captured with
//! programmatic stream serialization (Hopper's programmatic dependent launch): each may be
//! scheduled while the one before it finishes, hiding launch latency and letting a GEMV's
//! first weight loads overlap the kernel before. `EMBER_CUDA_PDL=0` captures every launch
//! plainly (to measure the difference).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CString, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use burn_cubecl::cubecl::client::ComputeClient;
use burn_cubecl::cubecl::server::Handle;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use burn_tensor::{Int, Tensor};
use cubecl_cuda::{CudaDevice, CudaRuntime};
use cudarc::driver::sys::{self, CUfunction, CUfunction_attribute_enum, CUgraphInstantiate_flags, CUstreamCaptureMode};
use cudarc::driver::{CudaContext, CudaGraph, CudaStream, result};

use super::graph_replay::{PinnedBuffer, Staging, layout, staged_copies};
use super::raw_kernel::RawCudaKernel;
use crate::{StepGraph, StepGraphBackend};

/// One recorded launch.
struct RecordedLaunch {
    kernel: RawCudaKernel,
    grid: (u32, u32, u32),
    buffers: Vec<Handle>,
    params: Vec<u64>,
}

/// The capture open on this thread.
struct Recording {
    client: Option<ComputeClient<CudaRuntime>>,
    launches: Vec<RecordedLaunch>,
    unsupported: Option<String>,
    fallbacks_at_start: usize,
}

static CAPTURES: AtomicUsize = AtomicUsize::new(0);
pub(super) static REPLAYS: AtomicUsize = AtomicUsize::new(0);

/// Graphs captured since start (tests check that graphs ran).
pub fn step_graph_captures() -> usize {
    CAPTURES.load(Ordering::Relaxed)
}

/// Graph replays since start.
pub fn step_graph_replays() -> usize {
    REPLAYS.load(Ordering::Relaxed)
}

thread_local! {
    static RECORDING: RefCell<Option<Recording>> = const { RefCell::new(None) };
}

/// Records a launch when a capture is open on this thread (called by every raw launch).
pub(super) fn record(
    client: &ComputeClient<CudaRuntime>,
    kernel: &RawCudaKernel,
    grid: (u32, u32, u32),
    has_tensor_maps: bool,
    buffers: &[Handle],
    params: &[u64],
) {
    RECORDING.with_borrow_mut(|recording| {
        let Some(recording) = recording else { return };
        if has_tensor_maps {
            recording.unsupported.get_or_insert_with(|| format!("{} takes TMA descriptors", kernel.entry()));
            return;
        }
        recording.client.get_or_insert_with(|| client.clone());
        recording.launches.push(RecordedLaunch { kernel: kernel.clone(), grid, buffers: buffers.to_vec(), params: params.to_vec() });
    });
}

/// Fallbacks to burn ops so far, over every kernel family.
fn fallback_count() -> usize {
    let (cache, attention) = super::fallbacks();
    cache + attention + super::linear_fallbacks() + super::layer_op_fallbacks()
}

/// A compiled entry point (the module stays loaded for the process).
#[derive(Clone, Copy)]
struct Function(CUfunction);
// SAFETY: a CUfunction is a driver handle, valid from any thread bound to its context.
unsafe impl Send for Function {}

/// A graph's context and a stream of its own. Each graph gets its own stream: everything
/// enqueued on a stream while a capture is open on it joins the capture, whichever thread
/// enqueues it, so two engines in one process (two test threads) sharing a stream captured
/// each other's replays into their graphs and then failed.
fn graph_stream(index: usize) -> Result<(Arc<CudaContext>, Arc<CudaStream>), String> {
    static CONTEXTS: OnceLock<Mutex<HashMap<usize, Arc<CudaContext>>>> = OnceLock::new();
    let ctx = {
        let mut contexts = CONTEXTS.get_or_init(Default::default).lock().map_err(|e| e.to_string())?;
        match contexts.get(&index) {
            Some(ctx) => ctx.clone(),
            None => {
                let ctx = CudaContext::new(index).map_err(|e| format!("CUDA context: {e:?}"))?;
                contexts.insert(index, ctx.clone());
                ctx
            }
        }
    };
    let stream = ctx.new_stream().map_err(|e| format!("CUDA stream: {e:?}"))?;
    Ok((ctx, stream))
}

/// `kernel` compiled for device `index` (NVRTC, as cubecl compiles it), cached per entry.
fn function(kernel: &RawCudaKernel, ctx: &CudaContext) -> Result<Function, String> {
    static FUNCTIONS: OnceLock<Mutex<HashMap<(usize, &'static str), Function>>> = OnceLock::new();
    let key = (ctx.ordinal(), kernel.entry());
    let mut functions = FUNCTIONS.get_or_init(Default::default).lock().map_err(|e| e.to_string())?;
    if let Some(f) = functions.get(&key) {
        return Ok(*f);
    }
    let (major, minor) = ctx.compute_capability().map_err(|e| format!("{e:?}"))?;
    let suffix = if major >= 9 { "a" } else { "" };
    let include = cubecl_cuda::install::include_path();
    let options = cudarc::nvrtc::CompileOptions {
        options: vec![format!("--gpu-architecture=sm_{major}{minor}{suffix}")],
        include_paths: vec![include.to_string_lossy().into_owned()],
        ..Default::default()
    };
    let ptx = cudarc::nvrtc::compile_ptx_with_opts(kernel.source(), options)
        .map_err(|e| format!("NVRTC on {}: {e:?}", kernel.entry()))?;
    let image = CString::new(ptx.to_src()).map_err(|e| e.to_string())?;
    let name = CString::new(kernel.entry()).map_err(|e| e.to_string())?;
    ctx.bind_to_thread().map_err(|e| format!("{e:?}"))?;
    // SAFETY: `image` is NUL-terminated PTX; the module is never unloaded, so the function
    // handle stays valid for the process.
    let f = unsafe {
        let module = result::module::load_data(image.as_ptr() as *const c_void).map_err(|e| format!("{e:?}"))?;
        let f = result::module::get_function(module, name).map_err(|e| format!("{e:?}"))?;
        if kernel.shared_bytes() > 0 {
            let attribute = CUfunction_attribute_enum::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES;
            result::function::set_function_attribute(f, attribute, kernel.shared_bytes() as i32).map_err(|e| format!("{e:?}"))?;
        }
        f
    };
    functions.insert(key, Function(f));
    Ok(Function(f))
}

/// Starts recording this thread's raw launches.
pub fn begin_capture() {
    RECORDING.set(Some(Recording { client: None, launches: Vec::new(), unsupported: None, fallbacks_at_start: fallback_count() }));
}

/// Ends the recording and captures it into a graph on device `index`. The graph keeps every
/// buffer it touches alive except `external` ones (the caller's KV cache).
pub fn end_capture(index: usize, inputs: &[Handle], read_back: &[Handle], external: &[Handle]) -> Result<CudaStepGraph, String> {
    let recording = RECORDING.take().ok_or("no step-graph capture is open")?;
    if let Some(why) = recording.unsupported {
        return Err(why);
    }
    if fallback_count() != recording.fallbacks_at_start {
        return Err("a kernel fell back to burn ops during the capture".into());
    }
    let client = recording.client.ok_or("the forward pass launched no Ember kernel")?;
    let resolve = |h: &Handle| {
        let resource = client.get_resource(h.clone()).map_err(|e| format!("{e:?}"))?;
        Ok::<_, String>((resource.resource().ptr, resource.resource().size as usize))
    };
    let (ctx, stream) = graph_stream(index)?;
    let mut launches = Vec::with_capacity(recording.launches.len());
    for launch in &recording.launches {
        let pointers = launch.buffers.iter().map(|h| resolve(h).map(|r| r.0)).collect::<Result<Vec<u64>, _>>()?;
        launches.push((function(&launch.kernel, &ctx)?, pointers));
    }
    let inputs = inputs.iter().map(resolve).collect::<Result<Vec<_>, _>>()?;
    let read_back = read_back.iter().map(resolve).collect::<Result<Vec<_>, _>>()?;
    let external = external.iter().map(|h| resolve(h).map(|r| r.0)).collect::<Result<std::collections::HashSet<u64>, _>>()?;

    let staging = if staged_copies() {
        let (input_offsets, input_bytes) = layout(inputs.iter().map(|&(_, size)| size));
        let (output_offsets, output_bytes) = layout(read_back.iter().map(|&(_, size)| size));
        let inputs = PinnedBuffer::new(&ctx, input_bytes)?;
        let outputs = PinnedBuffer::new(&ctx, output_bytes)?;
        Some(Staging { inputs, input_offsets, outputs, output_offsets })
    } else {
        None
    };

    ctx.bind_to_thread().map_err(|e| format!("{e:?}"))?;
    stream.begin_capture(CUstreamCaptureMode::CU_STREAM_CAPTURE_MODE_THREAD_LOCAL).map_err(|e| format!("{e:?}"))?;
    let mut failure = None;
    if let Some(staging) = &staging {
        for (&(ptr, size), &offset) in inputs.iter().zip(&staging.input_offsets) {
            // SAFETY: a copy node from page-locked memory the graph owns into a buffer it holds.
            if let Err(e) = unsafe { sys::cuMemcpyHtoDAsync_v2(ptr, staging.inputs.at(offset) as *const c_void, size, stream.cu_stream()) }.result() {
                failure.get_or_insert(format!("capturing an input copy: {e:?}"));
            }
        }
    }
    let pdl = programmatic_launches();
    for (i, (launch, (f, pointers))) in recording.launches.iter().zip(&mut launches).enumerate() {
        let mut params = launch.params.clone();
        let mut args: Vec<*mut c_void> = pointers.iter_mut().map(|p| p as *mut u64 as *mut c_void).collect();
        if !params.is_empty() {
            args.push(params.as_mut_ptr() as *mut c_void);
        }
        let block = (launch.kernel.threads(), 1, 1);
        let shared = launch.kernel.shared_bytes() as u32;
        // SAFETY: the pointers are live buffers held by `buffers` below, the parameter block
        // matches the kernel's by-value struct (the same words cubecl passes), and the driver
        // copies the arguments when the launch is captured.
        let programmatic = pdl && i > 0 && launch.kernel.programmatic();
        if let Err(e) = unsafe { launch_captured(f.0, launch.grid, block, shared, stream.cu_stream(), &mut args, programmatic) } {
            failure = Some(format!("capturing {}: {e:?}", launch.kernel.entry()));
            break;
        }
    }
    if let (Some(staging), None) = (&staging, &failure) {
        for (&(ptr, size), &offset) in read_back.iter().zip(&staging.output_offsets) {
            // SAFETY: a copy node from a buffer the graph holds into page-locked memory it owns.
            if let Err(e) = unsafe { sys::cuMemcpyDtoHAsync_v2(staging.outputs.at(offset) as *mut c_void, ptr, size, stream.cu_stream()) }.result() {
                failure.get_or_insert(format!("capturing a read-back copy: {e:?}"));
            }
        }
    }
    let graph = stream.end_capture(CUgraphInstantiate_flags(0)).map_err(|e| format!("{e:?}"));
    if let Some(failure) = failure {
        return Err(failure);
    }
    let graph = graph?.ok_or("the capture is empty")?;
    let buffers = recording
        .launches
        .into_iter()
        .zip(&launches)
        .flat_map(|(l, (_, pointers))| l.buffers.into_iter().zip(pointers.clone()))
        .filter(|(_, ptr)| !external.contains(ptr))
        .map(|(h, _)| h)
        .collect();
    CAPTURES.fetch_add(1, Ordering::Relaxed);
    Ok(CudaStepGraph { graph, stream, inputs, read_back, staging, _buffers: buffers })
}

/// Whether graphs use programmatic dependent launch (Hopper and later; `EMBER_CUDA_PDL=0`: no).
fn programmatic_launches() -> bool {
    static PDL: OnceLock<bool> = OnceLock::new();
    *PDL.get_or_init(|| std::env::var("EMBER_CUDA_PDL").map_or(true, |v| v != "0"))
}

/// Launches `f` on `stream` (being captured); with `programmatic`, the launch may begin before
/// the previous kernel on the stream has finished (the kernel waits for it itself).
///
/// # Safety
/// As `cuLaunchKernel`: `args` match the kernel's parameters and point at live values.
unsafe fn launch_captured(
    f: CUfunction,
    grid: (u32, u32, u32),
    block: (u32, u32, u32),
    shared: u32,
    stream: sys::CUstream,
    args: &mut [*mut c_void],
    programmatic: bool,
) -> Result<(), result::DriverError> {
    if !programmatic {
        // SAFETY: forwarded from the caller.
        return unsafe { result::launch_kernel(f, grid, block, shared, stream, args) };
    }
    // SAFETY: an all-zero attribute is a valid value of this plain C struct.
    let mut attribute: sys::CUlaunchAttribute = unsafe { std::mem::zeroed() };
    attribute.id = sys::CUlaunchAttributeID::CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
    attribute.value.programmaticStreamSerializationAllowed = 1;
    let config = sys::CUlaunchConfig {
        gridDimX: grid.0,
        gridDimY: grid.1,
        gridDimZ: grid.2,
        blockDimX: block.0,
        blockDimY: block.1,
        blockDimZ: block.2,
        sharedMemBytes: shared,
        hStream: stream,
        attrs: &mut attribute,
        numAttrs: 1,
    };
    // SAFETY: `config` and `attribute` outlive the call; the rest is forwarded from the caller.
    unsafe { sys::cuLaunchKernelEx(&config, f, args.as_mut_ptr(), std::ptr::null_mut()) }.result()
}

/// A captured forward pass and everything it touches (but the external buffers); replayed by
/// `graph_replay.rs`.
pub struct CudaStepGraph {
    pub(super) graph: CudaGraph,
    pub(super) stream: Arc<CudaStream>,
    /// Device pointer and size in bytes of each input buffer.
    pub(super) inputs: Vec<(u64, usize)>,
    /// Device pointer and size in bytes of each buffer read back after a replay (also held in
    /// `_buffers`: the recorded launches wrote them).
    pub(super) read_back: Vec<(u64, usize)>,
    /// The page-locked memory of the graph's copy nodes (none under
    /// `EMBER_CUDA_GRAPH_STAGING=0`).
    pub(super) staging: Option<Staging>,
    /// Keeps the graph's buffers allocated (cubecl frees memory when the last handle goes),
    /// all but the external ones.
    _buffers: Vec<Handle>,
}

// SAFETY: the graph is only used through `&mut self` (one thread at a time); its handles are
// driver objects valid from any thread bound to the context.
unsafe impl Send for CudaStepGraph {}

impl<F, I, BT> StepGraphBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn supports_step_graphs(_device: &CudaDevice) -> bool {
        true
    }

    fn step_graph_context_key(num_tokens: usize, max_context_len: usize) -> usize {
        // The attention's launch depends on the partitioning of the longest context.
        let (size, partitions) = super::attention::partitioning(num_tokens, max_context_len);
        partitions * (super::PARTITION_SIZE + 1) + size
    }

    fn begin_step_graph(_device: &CudaDevice) {
        begin_capture();
    }

    fn end_step_graph(
        device: &CudaDevice,
        inputs: &[Tensor<Self, 1, Int>],
        read_back: &[Tensor<Self, 2, Int>],
        external: &[Tensor<Self, 4>],
    ) -> Result<Box<dyn StepGraph>, String> {
        let handles: Vec<Handle> = inputs.iter().map(|t| t.clone().into_primitive().handle).collect();
        let read_back: Vec<Handle> = read_back.iter().map(|t| t.clone().into_primitive().handle).collect();
        let external: Vec<Handle> = external.iter().map(|t| t.clone().into_primitive().tensor().handle).collect();
        Ok(Box::new(end_capture(device.index, &handles, &read_back, &external)?))
    }
}
