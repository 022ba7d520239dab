//! The one place that names concrete burn backends: picks the device and compute dtype for
//! `--backend cpu|wgpu|cuda`, loads the model on it, resolves the batch limits from what the
//! device reports (`batch_defaults.rs`), profiles the largest step's memory on cuda
//! (`profile_run.rs`), sizes the KV cache and returns a backend-independent
//! engine core (a generation core, or an embedding core).

use burn_tensor::DType;
use ember_core::{CacheConfig, Scheduler, SchedulerConfig};
use ember_kernels::{KvCacheSpec, PagedAttentionBackend};
use ember_loader::SafetensorsWeights;
use ember_models::{DecoderModel, ModelConfig};

use crate::args::{BackendKind, DtypeChoice, EngineArgs, Task};
use crate::batch_defaults::{self, DeviceProps};
use crate::embedding::{EmbeddingCore, EmbeddingCoreApi, EmbeddingInfo, EmbeddingSpec};
use crate::engine_core::{EngineCore, EngineCoreApi, EngineInfo};
use crate::error::{EngineError, Result};
use crate::kv_budget::{self, MemoryInfo};
use crate::profile_run;
use crate::runner::ModelRunner;

/// The burn backend behind `--backend cpu`.
pub type CpuBackend = burn_ndarray::NdArray<f32>;
/// The burn backend behind `--backend wgpu`.
#[cfg(feature = "wgpu")]
pub type WgpuBackend = burn_cubecl::CubeBackend<burn_wgpu::WgpuRuntime, f32, i32, u32>;
/// The burn backend behind `--backend cuda`.
#[cfg(feature = "cuda")]
pub type CudaBackend = burn_cubecl::CubeBackend<burn_cubecl::cubecl::cuda::CudaRuntime, f32, i32, u8>;
/// `--backend wgpu --enable-fusion`.
#[cfg(all(feature = "wgpu", feature = "fusion"))]
pub type FusedWgpuBackend = burn_fusion::Fusion<WgpuBackend>;
/// `--backend cuda --enable-fusion`.
#[cfg(all(feature = "cuda", feature = "fusion"))]
pub type FusedCudaBackend = burn_fusion::Fusion<CudaBackend>;

/// What is needed to build a core, independent of the backend.
pub(crate) struct ModelParts<'a> {
    pub config: &'a ModelConfig,
    pub weights: &'a SafetensorsWeights,
    pub max_model_len: usize,
}

/// What the backend can tell about its device.
pub(crate) struct DeviceReport {
    /// Total memory and name (cuda); `None` on cpu and wgpu. Picks the default batch limits.
    pub props: Option<DeviceProps>,
    /// Reports `(free, total)` when called (after the weights are loaded and after the
    /// memory-profiling step); sizes the KV cache.
    pub memory: Box<dyn Fn() -> MemoryInfo>,
}

impl DeviceReport {
    /// A device that reports nothing (cpu, wgpu).
    fn silent() -> Self {
        Self { props: None, memory: Box::new(|| None) }
    }
}

/// A build step that runs on whichever backend `args.backend` names (generic over `B`, so the
/// model code never names a backend).
pub(crate) trait OnBackend {
    /// What the step builds.
    type Output;
    /// Runs on backend `B` (the device already probed and described by `report`).
    fn run<B: PagedAttentionBackend + 'static>(self, device: B::Device, report: DeviceReport) -> Result<Self::Output>;
}

/// Picks the backend and device for `args`, checks the device in `dtype`, and runs `step` there.
fn dispatch<S: OnBackend>(args: &EngineArgs, dtype: DType, step: S) -> Result<S::Output> {
    if args.enable_fusion && (args.backend == BackendKind::Cpu || !cfg!(feature = "fusion")) {
        return Err(EngineError::Backend {
            backend: args.backend.to_string(),
            reason: "operation fusion needs --backend wgpu or cuda and a build with `--features fusion`".into(),
        });
    }
    fn go<B: PagedAttentionBackend + 'static, S: OnBackend>(
        args: &EngineArgs,
        device: B::Device,
        dtype: DType,
        report: DeviceReport,
        step: S,
    ) -> Result<S::Output> {
        probe_device::<B>(&device, args.backend, dtype)?;
        step.run::<B>(device, report)
    }
    match args.backend {
        BackendKind::Cpu => go::<CpuBackend, S>(args, Default::default(), dtype, DeviceReport::silent(), step),
        BackendKind::Wgpu => {
            #[cfg(feature = "wgpu")]
            {
                let device = wgpu_device(args.wgpu_adapter.as_deref())?;
                #[cfg(feature = "fusion")]
                if args.enable_fusion {
                    return go::<FusedWgpuBackend, S>(args, device, dtype, DeviceReport::silent(), step);
                }
                go::<WgpuBackend, S>(args, device, dtype, DeviceReport::silent(), step)
            }
            #[cfg(not(feature = "wgpu"))]
            Err(not_compiled("wgpu"))
        }
        BackendKind::Cuda => {
            #[cfg(feature = "cuda")]
            {
                let report = cuda::device_report()?;
                #[cfg(feature = "fusion")]
                if args.enable_fusion {
                    return go::<FusedCudaBackend, S>(args, Default::default(), dtype, report, step);
                }
                go::<CudaBackend, S>(args, Default::default(), dtype, report, step)
            }
            #[cfg(not(feature = "cuda"))]
            Err(not_compiled("cuda"))
        }
    }
}

/// Builds the generation engine core on the backend `args.backend` names.
pub(crate) fn build_core(args: &EngineArgs, parts: &ModelParts<'_>) -> Result<Box<dyn EngineCoreApi>> {
    let dtype = resolve_dtype(args.backend, args.dtype, parts.config.checkpoint_dtype.as_deref())?;
    dispatch(args, dtype, GenerationBuild { args, parts, dtype })
}

/// Builds the embedding core on the backend `args.backend` names.
pub(crate) fn build_embedding_core(
    args: &EngineArgs,
    spec: &EmbeddingSpec,
    weights: &SafetensorsWeights,
) -> Result<Box<dyn EmbeddingCoreApi>> {
    let dtype = resolve_dtype(args.backend, args.dtype, spec.checkpoint_dtype())?;
    dispatch(args, dtype, EmbeddingBuild { args, spec, weights, dtype })
}

/// The compute dtype for a backend (see [`DtypeChoice::Auto`]).
pub fn resolve_dtype(backend: BackendKind, choice: DtypeChoice, checkpoint: Option<&str>) -> Result<DType> {
    let unsupported = |what: &str| EngineError::Backend {
        backend: backend.to_string(),
        reason: format!("{what} is not supported; use --dtype float32{}", if backend == BackendKind::Wgpu { " or half" } else { "" }),
    };
    match (backend, choice) {
        (BackendKind::Cpu, DtypeChoice::Auto | DtypeChoice::Float32) => Ok(DType::F32),
        (BackendKind::Cpu, DtypeChoice::Float16) => Err(unsupported("float16 on the cpu backend")),
        (BackendKind::Cpu, DtypeChoice::BFloat16) => Err(unsupported("bfloat16 on the cpu backend")),
        (BackendKind::Wgpu, DtypeChoice::BFloat16) => Err(unsupported("bfloat16 on wgpu")),
        (_, DtypeChoice::Float32) => Ok(DType::F32),
        (_, DtypeChoice::Float16) => Ok(DType::F16),
        (_, DtypeChoice::BFloat16) => Ok(DType::BF16),
        (BackendKind::Cuda, DtypeChoice::Auto) if checkpoint == Some("bfloat16") => Ok(DType::BF16),
        (_, DtypeChoice::Auto) => Ok(DType::F16),
    }
}

struct GenerationBuild<'a> {
    args: &'a EngineArgs,
    parts: &'a ModelParts<'a>,
    dtype: DType,
}

impl OnBackend for GenerationBuild<'_> {
    type Output = Box<dyn EngineCoreApi>;
    fn run<B: PagedAttentionBackend + 'static>(self, device: B::Device, report: DeviceReport) -> Result<Self::Output> {
        build::<B>(self.args, self.parts, device, self.dtype, report)
    }
}

struct EmbeddingBuild<'a> {
    args: &'a EngineArgs,
    spec: &'a EmbeddingSpec,
    weights: &'a SafetensorsWeights,
    dtype: DType,
}

impl OnBackend for EmbeddingBuild<'_> {
    type Output = Box<dyn EmbeddingCoreApi>;
    fn run<B: PagedAttentionBackend + 'static>(self, device: B::Device, report: DeviceReport) -> Result<Self::Output> {
        let (args, spec) = (self.args, self.spec);
        if args.quantization.is_some() {
            return Err(EngineError::InvalidArgs("--quantization is supported for generative models only, not embedding models".into()));
        }
        let limits = batch_defaults::resolve_for(args, report.props.as_ref(), spec.max_model_len);
        tracing::info!(
            backend = %args.backend, dtype = ?self.dtype, family = %spec.family(),
            "loading embedding model: {} tensors ({:.1} MiB), pooling {}{}, dimension {}, max input {} tokens",
            self.weights.len(), self.weights.total_bytes() as f64 / (1 << 20) as f64,
            spec.pooler.pooling_type.name(), if spec.pooler.normalize { " + normalize" } else { "" },
            spec.dimension(), spec.max_model_len
        );
        let info = EngineInfo {
            task: Task::Embed,
            backend: args.backend.to_string(),
            dtype: format!("{:?}", self.dtype),
            num_blocks: 0,
            block_size: args.block_size,
            max_model_len: spec.max_model_len,
            vocab_size: spec.vocab_size(),
            kv_cache_bytes: 0,
            max_num_seqs: limits.max_num_seqs,
            max_num_batched_tokens: limits.max_num_batched_tokens,
            embedding: Some(EmbeddingInfo {
                dimension: spec.dimension(),
                pooling: spec.pooler.pooling_type.name(),
                normalize: spec.pooler.normalize,
                matryoshka: spec.matryoshka.clone(),
            }),
        };
        let core = EmbeddingCore::<B>::load(
            spec,
            self.weights,
            device.clone(),
            self.dtype,
            args.block_size,
            limits.max_num_seqs,
            limits.max_num_batched_tokens,
            info,
        )?;
        B::sync(&device).map_err(|e| EngineError::Backend { backend: args.backend.to_string(), reason: format!("{e:?}") })?;
        Ok(Box::new(core))
    }
}

fn build<B: PagedAttentionBackend + 'static>(
    args: &EngineArgs,
    parts: &ModelParts<'_>,
    device: B::Device,
    dtype: DType,
    report: DeviceReport,
) -> Result<Box<dyn EngineCoreApi>> {
    let config = parts.config;
    let limits = batch_defaults::resolve_for(args, report.props.as_ref(), parts.max_model_len);
    tracing::info!(
        backend = %args.backend, ?dtype, family = config.family.name(),
        "loading {} tensors ({:.1} MiB)", parts.weights.len(), parts.weights.total_bytes() as f64 / (1 << 20) as f64
    );
    let sync = |device: &B::Device| {
        B::sync(device).map_err(|e| EngineError::Backend { backend: args.backend.to_string(), reason: format!("{e:?}") })
    };
    let model = profile_run::persistent::<B, _>(&device, || {
        let mut model = DecoderModel::<B>::load(config, parts.weights, &device, dtype, parts.max_model_len)?;
        if args.quantization == Some(crate::Quantization::Fp8) {
            let bytes = model.quantize_fp8()?;
            tracing::info!("fp8 weights: {:.2} GiB added (the {dtype:?} weights stay for decode steps of up to 4 sequences)", bytes as f64 / (1u64 << 30) as f64);
        }
        Ok::<_, EngineError>(model)
    })?;
    // Every GEMM entry compiled now, not in the middle of a served step (docs/perf.md, twelfth pass).
    B::warm_up_linear(&device, dtype, args.quantization == Some(crate::Quantization::Fp8));
    let enqueued = std::time::Instant::now();
    sync(&device)?;
    tracing::info!("weights on the device {:.1} s after the last one was handed over", enqueued.elapsed().as_secs_f64());

    let mut spec = KvCacheSpec {
        num_layers: config.num_layers,
        num_blocks: 0,
        block_size: args.block_size,
        num_kv_heads: config.num_kv_heads,
        head_dim: config.head_dim,
        dtype,
    };
    // The KV cache gets what the largest step leaves (cuda; elsewhere the budget is fixed).
    let model = if args.backend == BackendKind::Cuda && args.kv_cache_memory_bytes.is_none() {
        let before = (report.memory)();
        let started = std::time::Instant::now();
        let model = profile_run::profile_run(model, &spec, limits, parts.max_model_len, &device)?;
        sync(&device)?;
        if let (Some((free_before, _)), Some((free_after, _))) = (before, (report.memory)()) {
            let (seqs, per_seq) = profile_run::profile_batch(limits, parts.max_model_len);
            tracing::info!(
                "memory profiling: a step of {seqs} sequences x {per_seq} tokens reserved {:.2} GiB of activations ({:.1} s)",
                free_before.saturating_sub(free_after) as f64 / (1u64 << 30) as f64,
                started.elapsed().as_secs_f64()
            );
        }
        model
    } else {
        model
    };
    spec.num_blocks = kv_budget::num_blocks(args, &spec, parts.max_model_len, limits.max_num_seqs, (report.memory)())?;
    let max_concurrency = (spec.num_blocks * spec.block_size) as f64 / parts.max_model_len as f64;
    tracing::info!(
        "# {} blocks: {}, KV cache {:.1} MiB, maximum concurrency for {} tokens per request: {:.2}x",
        if args.backend == BackendKind::Cpu { "CPU" } else { "GPU" },
        spec.num_blocks,
        spec.total_bytes() as f64 / (1 << 20) as f64,
        parts.max_model_len,
        max_concurrency
    );

    let mut scheduler_config = SchedulerConfig::new(parts.max_model_len);
    scheduler_config.max_num_seqs = limits.max_num_seqs;
    scheduler_config.max_num_batched_tokens = limits.max_num_batched_tokens;
    let mut cache_config = CacheConfig::new(spec.num_blocks);
    cache_config.block_size = args.block_size;
    cache_config.enable_prefix_caching = args.enable_prefix_caching;
    let scheduler = Scheduler::new(scheduler_config, cache_config)?;

    let info = EngineInfo {
        task: Task::Generate,
        backend: args.backend.to_string(),
        dtype: format!("{dtype:?}"),
        num_blocks: spec.num_blocks,
        block_size: spec.block_size,
        max_model_len: parts.max_model_len,
        vocab_size: config.vocab_size,
        kv_cache_bytes: spec.total_bytes(),
        max_num_seqs: limits.max_num_seqs,
        max_num_batched_tokens: limits.max_num_batched_tokens,
        embedding: None,
    };
    let runner = profile_run::persistent::<B, _>(&device.clone(), || {
        let mut runner = ModelRunner::new(model, spec, device, args.seed);
        if !args.enforce_eager {
            runner.enable_step_graphs(parts.max_model_len);
        }
        runner
    });
    Ok(Box::new(EngineCore::new(scheduler, runner, info, args.async_scheduling, args.pipeline_ready_steps)))
}

/// Runs one tiny op on `device` in `dtype`: a missing driver or adapter, or an unsupported dtype,
/// becomes an error naming the backend instead of a panic deep inside the runtime.
fn probe_device<B: PagedAttentionBackend>(device: &B::Device, backend: BackendKind, dtype: DType) -> Result<()> {
    let probe = std::panic::AssertUnwindSafe(|| {
        burn_tensor::Tensor::<B, 1>::zeros([4], (device, dtype)).sum().into_data()
    });
    let previous_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let outcome = std::panic::catch_unwind(probe);
    std::panic::set_hook(previous_hook);
    outcome.map(|_| ()).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "the runtime panicked".into());
        let hint = match backend {
            BackendKind::Wgpu => " (is a Vulkan/Metal/DX12 driver installed? e.g. `apt-get install mesa-vulkan-drivers`)",
            BackendKind::Cuda => " (is the NVIDIA driver present and CUDA_PATH set to the CUDA toolkit?)",
            BackendKind::Cpu => "",
        };
        EngineError::Backend { backend: backend.to_string(), reason: format!("device check in {dtype:?} failed: {message}{hint}") }
    })
}

#[cfg(feature = "wgpu")]
/// The wgpu device: `adapter` (else `EMBER_WGPU_DEVICE`) = `cpu` (lavapipe/llvmpipe),
/// `discrete:N`, `integrated:N`, `virtual:N`, or unset/`default` for wgpu's default adapter.
fn wgpu_device(adapter: Option<&str>) -> Result<burn_wgpu::WgpuDevice> {
    use burn_wgpu::WgpuDevice;
    let spec = adapter.map(str::to_string).unwrap_or_else(|| std::env::var("EMBER_WGPU_DEVICE").unwrap_or_default());
    let (kind, index) = spec.split_once(':').unwrap_or((spec.as_str(), "0"));
    let index: usize = index.parse().map_err(|_| EngineError::InvalidArgs(format!("EMBER_WGPU_DEVICE={spec:?}: bad index")))?;
    Ok(match kind {
        "" | "default" => WgpuDevice::DefaultDevice,
        "cpu" => WgpuDevice::Cpu,
        "discrete" => WgpuDevice::DiscreteGpu(index),
        "integrated" => WgpuDevice::IntegratedGpu(index),
        "virtual" => WgpuDevice::VirtualGpu(index),
        other => {
            return Err(EngineError::InvalidArgs(format!(
                "EMBER_WGPU_DEVICE={other:?}; expected cpu, discrete:N, integrated:N, virtual:N or default"
            )));
        }
    })
}

#[cfg(feature = "cuda")]
mod cuda {
    //! Device memory and name through the CUDA driver (cudarc, loaded at run time).
    use super::*;

    /// Device 0's total memory and name (for the batch defaults; `None` when the driver does
    /// not answer), and a closure reporting `(free, total)` after the weights are loaded.
    pub(super) fn device_report() -> Result<DeviceReport> {
        if !driver_present() {
            return Err(EngineError::Backend {
                backend: "cuda".into(),
                reason: "the CUDA driver library (libcuda.so) was not found".into(),
            });
        }
        let ctx = cudarc::driver::CudaContext::new(0).map_err(|e| EngineError::Backend {
            backend: "cuda".into(),
            reason: format!("no usable CUDA device: {e}"),
        })?;
        let props = match (ctx.total_mem(), ctx.name()) {
            (Ok(total_memory), Ok(name)) => Some(DeviceProps { total_memory, name }),
            _ => None,
        };
        Ok(DeviceReport { props, memory: Box::new(move || ctx.mem_get_info().ok()) })
    }

    /// Whether libcuda can be loaded (cudarc panics on first use otherwise).
    pub(super) fn driver_present() -> bool {
        // SAFETY: only probes for the library; no CUDA call is made.
        unsafe { cudarc::driver::sys::is_culib_present() }
    }
}

#[allow(dead_code)]
fn not_compiled(backend: &str) -> EngineError {
    EngineError::Backend {
        backend: backend.into(),
        reason: format!("this build of ember does not include it; rebuild with `--features {backend}`"),
    }
}

/// Whether a CUDA device is usable (for `--backend auto`-style defaults in the CLI).
pub fn cuda_available() -> bool {
    #[cfg(feature = "cuda")]
    {
        cuda::driver_present() && cudarc::driver::CudaContext::device_count().map(|n| n > 0).unwrap_or(false)
    }
    #[cfg(not(feature = "cuda"))]
    {
        false
    }
}
