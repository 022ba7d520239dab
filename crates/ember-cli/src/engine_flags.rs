//! Engine flags shared by every subcommand that loads a model, with vLLM's names and defaults.

use clap::Args;
use ember_engine::{BackendKind, DtypeChoice, EngineArgs, Quantization, UsageContext};

/// Model and engine flags.
#[derive(Debug, Clone, Args)]
pub struct EngineFlags {
    /// Model: a local Hugging Face folder or a hub id (resolved from the HF cache, downloaded when online).
    #[arg(long)]
    pub model: Option<String>,
    /// Hub revision (branch, tag or commit).
    #[arg(long)]
    pub revision: Option<String>,
    /// Backend: cpu, wgpu or cuda. Default: cuda when a CUDA device is present, else cpu.
    #[arg(long)]
    pub backend: Option<String>,
    /// Compute dtype: auto, half, float16, bfloat16, float, float32.
    #[arg(long, default_value = "auto")]
    pub dtype: String,
    /// Quantize the weights at load: fp8 (cuda on Hopper: the layers' projections in FP8 E4M3
    /// with per-channel scales, activations per token).
    #[arg(long, short = 'q')]
    pub quantization: Option<String>,
    /// Context length (default: the model's max_position_embeddings).
    #[arg(long)]
    pub max_model_len: Option<usize>,
    /// Tokens per KV-cache block.
    #[arg(long, default_value_t = 16)]
    pub block_size: usize,
    /// Fraction of GPU memory to use (cuda).
    #[arg(long, default_value_t = 0.9)]
    pub gpu_memory_utilization: f32,
    /// KV cache size in bytes (default: cpu 4 GiB, wgpu 2 GiB, cuda from --gpu-memory-utilization).
    #[arg(long)]
    pub kv_cache_memory_bytes: Option<usize>,
    /// Maximum sequences per step (default, as vLLM: 1024 on cuda GPUs of 70 GiB or more other
    /// than the A100, else 256).
    #[arg(long)]
    pub max_num_seqs: Option<usize>,
    /// Token budget per step, the chunked-prefill chunk size (default, as vLLM: on cuda GPUs
    /// of 70 GiB or more other than the A100 16384 offline / 8192 for serve, on smaller cuda
    /// GPUs 8192 / 2048; on cpu and wgpu 2048).
    #[arg(long)]
    pub max_num_batched_tokens: Option<usize>,
    /// Automatic prefix caching (on by default; `--no-enable-prefix-caching` turns it off).
    #[arg(long, overrides_with = "no_enable_prefix_caching")]
    pub enable_prefix_caching: bool,
    /// Turn automatic prefix caching off.
    #[arg(long)]
    pub no_enable_prefix_caching: bool,
    /// Seed for requests without their own seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Largest logprobs / prompt_logprobs a request may ask for.
    #[arg(long, default_value_t = 20)]
    pub max_logprobs: usize,
    /// Run wgpu/cuda through burn's operation fusion (builds with `--features fusion`; known to
    /// give wrong results with burn 0.21 on chunked-prefill batches).
    #[arg(long)]
    pub enable_fusion: bool,
    /// Run every step eagerly: no CUDA graphs for small decode batches.
    #[arg(long)]
    pub enforce_eager: bool,
    /// Schedule step N+1 while step N runs on the device (on by default;
    /// `--no-async-scheduling` turns it off).
    #[arg(long, overrides_with = "no_async_scheduling")]
    pub async_scheduling: bool,
    /// Turn async scheduling off: the host schedules each step after the previous one's tokens.
    #[arg(long)]
    pub no_async_scheduling: bool,
}

impl EngineFlags {
    /// The model argument, or an error saying how to give it.
    pub fn model(&self) -> anyhow::Result<&str> {
        self.model.as_deref().ok_or_else(|| anyhow::anyhow!("no model given: pass --model MODEL (a folder or a hub id)"))
    }

    /// Converts the flags into engine arguments for `usage_context` (which picks the defaults
    /// of `--max-num-seqs` and `--max-num-batched-tokens`).
    pub fn to_engine_args(&self, usage_context: UsageContext) -> anyhow::Result<EngineArgs> {
        let mut args = EngineArgs::new(self.model()?.to_string());
        args.usage_context = usage_context;
        args.revision = self.revision.clone();
        args.backend = match &self.backend {
            Some(b) => b.parse::<BackendKind>()?,
            None if ember_engine::cuda_available() => BackendKind::Cuda,
            None => BackendKind::Cpu,
        };
        args.dtype = self.dtype.parse::<DtypeChoice>()?;
        args.quantization = self.quantization.as_deref().map(str::parse::<Quantization>).transpose()?;
        args.max_model_len = self.max_model_len;
        args.block_size = self.block_size;
        args.gpu_memory_utilization = self.gpu_memory_utilization;
        args.kv_cache_memory_bytes = self.kv_cache_memory_bytes;
        args.max_num_seqs = self.max_num_seqs;
        args.max_num_batched_tokens = self.max_num_batched_tokens;
        args.enable_prefix_caching = !self.no_enable_prefix_caching;
        args.seed = self.seed;
        args.max_logprobs = self.max_logprobs;
        args.enable_fusion = self.enable_fusion;
        args.enforce_eager = self.enforce_eager;
        args.async_scheduling = !self.no_async_scheduling;
        args.validate()?;
        Ok(args)
    }
}
