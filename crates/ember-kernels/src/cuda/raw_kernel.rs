//! [`RawCudaKernel`]: a hand-written CUDA C++ kernel (`kernels/*.cu`) launched through cubecl's
//! own launch path, so it runs on the stream burn's work is ordered on, with cubecl's memory
//! bookkeeping, and no host synchronisation.
//!
//! cubecl compiles whatever source a `CubeTask` returns with NVRTC and launches the named entry
//! point with one device pointer per buffer binding, in order, then (grid constants, sm_70+) the
//! packed `info` words as the last, by-value parameter. So a kernel's signature is
//! `(T* buffers..., const Params p)` where `Params` is a `#[repr(C)]`-compatible struct of
//! 32-bit fields packed into the `u64` words given to [`launch`]. cubecl reads the shared-memory
//! size from the kernel's representation, which it unwraps: a kernel made with
//! [`RawCudaKernel::with_shared_memory`] reports its dynamic shared memory there (cubecl then
//! raises the function's limit above the default 48 KB and passes the size at launch); the
//! others use static shared memory only and report none. Tensor maps (TMA descriptors, see
//! [`launch_with_tensor_maps`]) come first in the signature, as `const __grid_constant__`
//! 128-byte structs, followed by one pointer per tensor map's buffer, then the buffers.

use std::sync::Arc;

use burn_cubecl::cubecl::prelude::{AddressType, CompiledKernel, KernelId, KernelMetadata, StorageType};
use burn_cubecl::cubecl::server::{KernelArguments, MetadataBindingInfo};
use burn_cubecl::cubecl::{CompilationError, CubeCount, CubeDim, CubeTask, ExecutionMode};
use burn_cubecl::cubecl::server::Handle;
use burn_cubecl::cubecl::server::TensorMapBinding;
use cubecl_cpp::shared::{Body, Elem, Flags, Item, SharedMemory};
use cubecl_cuda::{CudaCompiler, CudaComputeKernel, CudaRuntime};

/// The shared helpers every kernel file is compiled with.
const COMMON: &str = include_str!("../../../../kernels/common.cuh");

/// One entry point of a kernel source, with its block size.
#[derive(Clone)]
pub struct RawCudaKernel {
    entry: &'static str,
    source: Arc<str>,
    cube_dim: CubeDim,
    /// Dynamic shared memory per block, in bytes (0: static shared memory only).
    shared_bytes: usize,
    /// Whether every entry of the file waits for the previous kernel itself (the file defines
    /// `EMBER_PDL_ENTRIES`; see `kernels/common.cuh`), so that a graph may launch it early.
    programmatic: bool,
}

/// All raw kernels share one type id; their `KernelId`s differ by entry point and block size.
struct RawCudaTag;

impl RawCudaKernel {
    /// `file` is the text of a `kernels/*.cu` file; `entry` one of its `extern "C"` kernels.
    pub fn new(file: &'static str, entry: &'static str, threads: u32) -> Self {
        Self::with_shared_memory(file, entry, threads, 0)
    }

    /// As [`RawCudaKernel::new`], for a kernel that declares `extern __shared__` memory and
    /// needs `shared_bytes` of it per block.
    pub fn with_shared_memory(file: &'static str, entry: &'static str, threads: u32, shared_bytes: usize) -> Self {
        // A file may compile only the entry being compiled: `#if` on EMBER_KERNEL_<entry> (see
        // paged_attention_grouped.cu) or `if constexpr (ember_compiles(..))` on EMBER_KERNEL_ENTRY
        // (common.cuh).
        // EMBER_PDL_ORDER=wait_first: short kernels wait before they trigger (common.cuh).
        let order = if std::env::var("EMBER_PDL_ORDER").is_ok_and(|v| v == "wait_first") { "#define EMBER_PDL_WAIT_FIRST 1\n" } else { "" };
        // EMBER_CUDA_DEFINES="A B=2": `#define`s before every kernel source, for experiments
        // with a kernel's compile-time switches without a rebuild.
        let defines: String = std::env::var("EMBER_CUDA_DEFINES")
            .unwrap_or_default()
            .split_whitespace()
            .map(|d| format!("#define {}\n", d.replacen('=', " ", 1)))
            .collect();
        let source = format!(
            "#define EMBER_KERNEL_SELECTED 1\n#define EMBER_KERNEL_{entry} 1\n#define EMBER_KERNEL_ENTRY \"{entry}\"\n{order}{defines}{COMMON}\n{file}"
        );
        let programmatic = file.contains("\n#define EMBER_PDL_ENTRIES 1\n");
        Self { entry, source: Arc::from(source), cube_dim: CubeDim::new_1d(threads), shared_bytes, programmatic }
    }

    /// The entry point's name.
    pub fn entry(&self) -> &'static str {
        self.entry
    }

    /// The full source compiled for this entry (common header included).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Threads per block.
    pub fn threads(&self) -> u32 {
        self.cube_dim.x
    }

    /// Dynamic shared memory per block, in bytes.
    pub fn shared_bytes(&self) -> usize {
        self.shared_bytes
    }

    /// Whether the entry calls `ember_pdl_enter` before touching earlier kernels' memory, so
    /// that it may be launched with programmatic stream serialization.
    pub fn programmatic(&self) -> bool {
        self.programmatic
    }
}

impl KernelMetadata for RawCudaKernel {
    fn name(&self) -> &'static str {
        self.entry
    }

    fn id(&self) -> KernelId {
        KernelId::new::<RawCudaTag>().cube_dim(self.cube_dim).info(self.entry)
    }

    fn address_type(&self) -> StorageType {
        AddressType::U32.unsigned_type()
    }
}

impl CubeTask<CudaCompiler> for RawCudaKernel {
    fn compile(
        &self,
        _compiler: &mut CudaCompiler,
        _options: &<CudaCompiler as burn_cubecl::cubecl::Compiler>::CompilationOptions,
        _mode: ExecutionMode,
        _address_type: StorageType,
    ) -> Result<CompiledKernel<CudaCompiler>, CompilationError> {
        // Only `shared_memory_size()` of the representation is used at launch.
        let shared_memories = match self.shared_bytes {
            0 => Vec::new(),
            length => vec![SharedMemory::Array { index: 0, item: Item::scalar(Elem::U8, false), length, align: 1024, offset: 0 }],
        };
        let repr: CudaComputeKernel = cubecl_cpp::ComputeKernel {
            tensor_maps: Vec::new(),
            buffers: Vec::new(),
            scalars: Vec::new(),
            info: Default::default(),
            meta_static_len: 0,
            body: Body {
                instructions: Vec::new(),
                shared_memories,
                pipelines: Vec::new(),
                barriers: Vec::new(),
                const_arrays: Vec::new(),
                local_arrays: Vec::new(),
                info_by_ptr: false,
                has_dynamic_meta: false,
                address_type: Item::scalar(Elem::U32, true),
            },
            cube_dim: self.cube_dim,
            cluster_dim: None,
            extensions: Vec::new(),
            flags: Flags::default(),
            items: Default::default(),
            kernel_name: self.entry.to_string(),
        };
        Ok(CompiledKernel {
            entrypoint_name: self.entry.to_string(),
            debug_name: Some(self.entry),
            source: self.source.to_string(),
            repr: Some(repr),
            cube_dim: self.cube_dim,
            debug_info: None,
        })
    }
}

/// Queues `kernel` on `client`'s stream over `grid` blocks: `buffers` become the pointer
/// parameters in order, `params` the trailing by-value struct. While a step graph is being
/// captured on this thread, the launch is also recorded ([`super::step_graph`]).
pub fn launch(
    client: &burn_cubecl::cubecl::client::ComputeClient<CudaRuntime>,
    kernel: &RawCudaKernel,
    grid: (u32, u32, u32),
    buffers: Vec<Handle>,
    params: Vec<u64>,
) {
    launch_with_tensor_maps(client, kernel, grid, Vec::new(), buffers, params);
}

/// As [`launch`], with TMA descriptors: cubecl encodes each map (`cuTensorMapEncodeTiled`) at
/// launch and passes it by value before the pointers.
pub fn launch_with_tensor_maps(
    client: &burn_cubecl::cubecl::client::ComputeClient<CudaRuntime>,
    kernel: &RawCudaKernel,
    grid: (u32, u32, u32),
    maps: Vec<TensorMapBinding>,
    buffers: Vec<Handle>,
    params: Vec<u64>,
) {
    super::step_graph::record(client, kernel, grid, !maps.is_empty(), &buffers, &params);
    let len = params.len();
    let args = KernelArguments::new()
        .with_tensor_maps(maps)
        .with_buffers(buffers.into_iter().map(Handle::binding).collect())
        .with_info(MetadataBindingInfo::new(params, len));
    client.launch(Box::new(kernel.clone()), CubeCount::Static(grid.0, grid.1, grid.2), args);
}

/// Packs 32-bit fields (in declaration order) into the `u64` words of a by-value parameter.
pub fn pack_u32(fields: &[u32]) -> Vec<u64> {
    fields.chunks(2).map(|pair| pair[0] as u64 | (pair.get(1).copied().unwrap_or(0) as u64) << 32).collect()
}
