//! Engine arguments: the offline API's and `ember serve`'s knobs, with vLLM's names and
//! defaults. Each default is documented on its field.

use std::fmt;
use std::str::FromStr;

use crate::batch_defaults::UsageContext;
use crate::error::{EngineError, Result};

/// Which burn backend runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// burn-ndarray on the CPU: the reference, always available, f32 only.
    Cpu,
    /// burn-wgpu (Vulkan, Metal, DX12; lavapipe in CI): AMD, Intel, Apple, laptops. No bf16.
    Wgpu,
    /// burn-cuda: NVIDIA.
    Cuda,
}

impl FromStr for BackendKind {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cpu" | "ndarray" => Ok(Self::Cpu),
            "wgpu" | "vulkan" => Ok(Self::Wgpu),
            "cuda" => Ok(Self::Cuda),
            other => Err(EngineError::InvalidArgs(format!("unknown backend {other:?}; expected cpu, wgpu or cuda"))),
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
            Self::Cuda => "cuda",
        })
    }
}

/// `--dtype`: the compute dtype of weights, activations and KV cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DtypeChoice {
    /// vLLM's rule: bf16 checkpoints run in bf16 (f16 on wgpu, which has no bf16), f16 and f32
    /// checkpoints in f16; the cpu backend always computes in f32.
    Auto,
    /// float32.
    Float32,
    /// float16 (`half`).
    Float16,
    /// bfloat16 (cuda only).
    BFloat16,
}

impl FromStr for DtypeChoice {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "float" | "float32" | "f32" => Ok(Self::Float32),
            "half" | "float16" | "f16" => Ok(Self::Float16),
            "bfloat16" | "bf16" => Ok(Self::BFloat16),
            other => Err(EngineError::InvalidArgs(format!(
                "unknown dtype {other:?}; expected auto, half, float16, bfloat16, float or float32"
            ))),
        }
    }
}

/// `--quantization`: how the weights of a f16/bf16 checkpoint are quantized at load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// vLLM's `fp8`: the layers' projections in FP8 (E4M3, one scale per output channel),
    /// activations quantized per token on the fly; cuda on Hopper only. The embeddings and the
    /// LM head stay in the model's dtype, and so do the f16/bf16 weights, which decode steps of
    /// up to 4 sequences (the GEMV and its CUDA graphs) still read: Ember has no FP8 GEMV yet,
    /// so the weights take 1.5x their memory rather than half of it.
    Fp8,
}

impl FromStr for Quantization {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "fp8" => Ok(Self::Fp8),
            other => Err(EngineError::InvalidArgs(format!("--quantization {other:?} is not supported; Ember supports fp8"))),
        }
    }
}

/// `--task`: what the model is served for (vLLM's `--task` / runner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Task {
    /// Embeddings when the folder is a sentence-transformers model (modules.json with a
    /// Pooling module) or the architecture is an encoder (BERT, XLM-RoBERTa); else generation.
    #[default]
    Auto,
    /// Text generation (completions, chat).
    Generate,
    /// Embeddings (pooled hidden states).
    Embed,
}

impl FromStr for Task {
    type Err = EngineError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "generate" => Ok(Self::Generate),
            "embed" | "embedding" => Ok(Self::Embed),
            other => Err(EngineError::InvalidArgs(format!("unknown task {other:?}; expected auto, generate or embed"))),
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Generate => "generate",
            Self::Embed => "embed",
        })
    }
}

/// Everything needed to build an engine.
#[derive(Debug, Clone)]
pub struct EngineArgs {
    /// A local model folder or a Hugging Face hub id.
    pub model: String,
    /// Hub revision (branch, tag or commit); default `main`.
    pub revision: Option<String>,
    /// What the model serves; default [`Task::Auto`].
    pub task: Task,
    /// Backend; default cpu.
    pub backend: BackendKind,
    /// Compute dtype; default auto.
    pub dtype: DtypeChoice,
    /// Weight quantization at load (`--quantization`); default none.
    pub quantization: Option<Quantization>,
    /// Context length; default the model's `max_position_embeddings` (embedding models: the
    /// longest input, default sentence-transformers' `max_seq_length` when smaller).
    pub max_model_len: Option<usize>,
    /// Tokens per KV block; default 16.
    pub block_size: usize,
    /// Fraction of GPU memory the engine may use (cuda); default 0.9.
    pub gpu_memory_utilization: f32,
    /// KV cache size in bytes. Default: cpu 4 GiB, wgpu 2 GiB (wgpu cannot report device
    /// memory); on cuda derived from `gpu_memory_utilization` when unset.
    pub kv_cache_memory_bytes: Option<usize>,
    /// Most sequences in one step (embedding models: in one forward pass). Default (`None`):
    /// by device and [`Self::usage_context`], as vLLM: 1024 on cuda GPUs of 70 GiB or more
    /// (A100 excepted), else 256 (see [`crate::batch_defaults`]).
    pub max_num_seqs: Option<usize>,
    /// Token budget of one step (also the chunked-prefill chunk; embedding models: of one
    /// forward pass, padding included). Default (`None`): by device and usage context, as
    /// vLLM: on cuda GPUs of 70 GiB or more (A100 excepted) 16384 offline / 8192 served, on
    /// smaller cuda GPUs 8192 / 2048; on cpu and wgpu 2048.
    pub max_num_batched_tokens: Option<usize>,
    /// Who builds the engine, for the two defaults above; default
    /// [`UsageContext::LlmClass`] (offline). `ember serve` uses
    /// [`UsageContext::OpenAiApiServer`].
    pub usage_context: UsageContext,
    /// Automatic prefix caching; default on (as vLLM V1).
    pub enable_prefix_caching: bool,
    /// Seed of the generator used by requests without their own seed; default 0.
    pub seed: u64,
    /// Largest `logprobs` / `prompt_logprobs` a request may ask for; default 20.
    pub max_logprobs: usize,
    /// wgpu adapter: `cpu` (lavapipe/llvmpipe), `discrete:N`, `integrated:N`, `virtual:N` or
    /// `default`; default: the `EMBER_WGPU_DEVICE` environment variable, else wgpu's default.
    pub wgpu_adapter: Option<String>,
    /// Run wgpu/cuda through burn's operation fusion (needs the `fusion` feature); default off,
    /// because burn-fusion 0.21 produces wrong results on mixed chunked-prefill batches.
    pub enable_fusion: bool,
    /// Run every step eagerly: no CUDA graphs for small decode steps (vLLM's
    /// `--enforce-eager`); default off. Only the cuda backend captures graphs.
    pub enforce_eager: bool,
    /// Async scheduling (vLLM's `--async-scheduling`): the engine core schedules and queues
    /// step N+1 while step N runs on the device, so that the host's work between steps
    /// (output processing, scheduling, input preparation) overlaps the device's instead of
    /// leaving it idle. Default on (Ember's choice, on every backend; a step whose sampling
    /// needs the previous token on the host, such as penalties or logprobs, waits for it).
    pub async_scheduling: bool,
    /// With async scheduling, keep a step in flight even when its tokens are already on the
    /// host (cpu and wgpu read them at once), which only delays its outputs by a step: for
    /// tests of the pipelined path on backends without early reads. Default off.
    #[doc(hidden)]
    pub pipeline_ready_steps: bool,
}

impl EngineArgs {
    /// Defaults for `model`.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            revision: None,
            task: Task::Auto,
            backend: BackendKind::Cpu,
            dtype: DtypeChoice::Auto,
            quantization: None,
            max_model_len: None,
            block_size: 16,
            gpu_memory_utilization: 0.9,
            kv_cache_memory_bytes: None,
            max_num_seqs: None,
            max_num_batched_tokens: None,
            usage_context: UsageContext::LlmClass,
            enable_prefix_caching: true,
            seed: 0,
            max_logprobs: 20,
            wgpu_adapter: None,
            enable_fusion: false,
            enforce_eager: false,
            async_scheduling: true,
            pipeline_ready_steps: false,
        }
    }

    /// Checks ranges that do not depend on the model.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(EngineError::InvalidArgs(m));
        if self.block_size == 0 || !self.block_size.is_power_of_two() {
            return bad(format!("--block-size must be a power of two, got {}", self.block_size));
        }
        if !(self.gpu_memory_utilization > 0.0 && self.gpu_memory_utilization <= 1.0) {
            return bad(format!("--gpu-memory-utilization must be in (0, 1], got {}", self.gpu_memory_utilization));
        }
        if self.quantization == Some(Quantization::Fp8) && self.backend != BackendKind::Cuda {
            return bad(format!("--quantization fp8 needs --backend cuda (a Hopper GPU); it is not supported on {}", self.backend));
        }
        if self.max_num_seqs == Some(0) || self.max_num_batched_tokens == Some(0) {
            return bad("--max-num-seqs and --max-num-batched-tokens must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fp8_quantization_is_cuda_only_and_other_methods_are_refused() {
        assert_eq!("FP8".parse::<Quantization>().unwrap(), Quantization::Fp8);
        let other = "awq".parse::<Quantization>().unwrap_err().to_string();
        assert!(other.contains("\"awq\" is not supported") && other.contains("fp8"), "{other}");
        let mut args = EngineArgs::new("m");
        args.quantization = Some(Quantization::Fp8);
        for backend in [BackendKind::Cpu, BackendKind::Wgpu] {
            args.backend = backend;
            let err = args.validate().unwrap_err().to_string();
            assert!(err.contains("--quantization fp8 needs --backend cuda") && err.contains(&backend.to_string()), "{err}");
        }
        args.backend = BackendKind::Cuda;
        args.validate().unwrap();
    }
}
