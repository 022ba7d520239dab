//! Ember's engine: everything between a prompt and its generated tokens.
//!
//! - [`LLM`]: offline batch inference (vLLM's `LLM.generate` and `LLM.embed`).
//! - [`LLMEngine`]: add requests, `step()`, read [`RequestOutput`]s (for servers and streaming).
//! - [`AsyncEngine`]: the engine on its own thread, one output stream per request (servers).
//! - [`EngineArgs`]: task (`generate` | `embed`), backend (`cpu` | `wgpu` | `cuda`), dtype, KV
//!   cache and scheduler knobs; unset scheduler limits follow vLLM's per-device, per-usage
//!   defaults ([`batch_defaults`]).
//!
//! Inside: the model runner (scheduler output → one forward pass), the on-device sampler, the
//! output processor (detokenization, stop strings); for embedding models, the embedding core
//! (encoder or decoder backbone + pooler, `embedding/`). `backend.rs` is the only file that
//! names a concrete burn backend.

#![warn(missing_docs)]

mod args;
mod async_engine;
mod backend;
pub mod batch_defaults;
mod embedding;
mod engine;
mod engine_core;
mod error;
mod kv_budget;
mod llm;
mod output_processor;
mod profile_run;
mod outputs;
mod prompt;
mod runner;
mod sampler;

pub use args::{BackendKind, DtypeChoice, EngineArgs, Quantization, Task};
pub use batch_defaults::UsageContext;
pub use embedding::{
    COMPLETIONS_UNSUPPORTED, EMBEDDINGS_UNSUPPORTED, EmbeddingInfo, EmbeddingOutput, EmbeddingRequestOutput, Matryoshka,
    PoolingParams,
};
pub use async_engine::{AsyncEngine, EngineSnapshot, RequestStream, StreamItem};
pub use backend::{CpuBackend, cuda_available, resolve_dtype};
#[cfg(feature = "cuda")]
pub use backend::CudaBackend;
#[cfg(all(feature = "cuda", feature = "fusion"))]
pub use backend::FusedCudaBackend;
#[cfg(all(feature = "wgpu", feature = "fusion"))]
pub use backend::FusedWgpuBackend;
#[cfg(feature = "wgpu")]
pub use backend::WgpuBackend;
pub use engine::LLMEngine;
pub use engine_core::EngineInfo;
pub use error::{EngineError, RequestError, Result};
pub use kv_budget::{DEFAULT_CPU_KV_BYTES, DEFAULT_WGPU_KV_BYTES, WGPU_MAX_BINDING_BYTES};
pub use llm::LLM;
pub use outputs::{CompletionOutput, RequestOutput};
pub use prompt::PromptInput;

pub use ember_core::{FinishReason, GenerationDefaults, Logprob, PositionLogprobs, PromptLogprobs, SamplingParams, StopReason, TokenId};
pub use ember_tokenizer::Tokenizer;
