//! The embedding path (vLLM's pooling runner): the same engine, the same backends, another
//! task. A model folder resolves to [`Task::Embed`] when it is a sentence-transformers model
//! or an encoder (`spec`); the runner (`runner`) pads or flattens a batch of token-id
//! sequences, runs the encoder (BERT, XLM-RoBERTa) or the decoder without its LM head
//! (Qwen3-Embedding) once, and pools each sequence on the device; `dimensions` then
//! truncates matryoshka embeddings on the host.
//!
//! There is no scheduler here: an embedding is one forward pass, so requests are grouped into
//! batches under the `max_num_seqs` / `max_num_batched_tokens` budget and run to completion.
//!
//! [`Task::Embed`]: crate::Task::Embed

mod runner;
mod spec;

pub use ember_models::Matryoshka;
pub(crate) use runner::{EmbeddingCore, EmbeddingCoreApi};
pub(crate) use spec::{Backbone, EmbeddingSpec, resolve_task};

use ember_core::TokenId;

/// vLLM's message for an embedding request to a generation model.
pub const EMBEDDINGS_UNSUPPORTED: &str = "The model does not support the Embeddings API";
/// vLLM's message for a completion request to an embedding model.
pub const COMPLETIONS_UNSUPPORTED: &str = "The model does not support the Completions API";

/// What an embedding engine produces (in [`crate::EngineInfo::embedding`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingInfo {
    /// Native embedding size.
    pub dimension: usize,
    /// Pooling (sentence-transformers' name: `cls`, `mean`, `lasttoken`...).
    pub pooling: &'static str,
    /// Whether embeddings are L2-normalised.
    pub normalize: bool,
    /// Matryoshka sizes, when the model was trained for truncation.
    pub matryoshka: Option<Matryoshka>,
}

impl EmbeddingInfo {
    /// Checks a request's `dimensions`; the error says what the model accepts.
    pub fn check_dimensions(&self, dimensions: usize) -> Result<(), String> {
        ember_models::pooling::dimensions::check_dimensions(dimensions, self.dimension, self.matryoshka.as_ref())
    }
}

/// `dimensions` and friends of one embedding request (vLLM's `PoolingParams`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolingParams {
    /// Truncate to this many dimensions (matryoshka models only; see [`EmbeddingInfo`]).
    pub dimensions: Option<usize>,
}

/// One input's embedding (vLLM's `EmbeddingOutput`).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingOutput {
    /// The embedding.
    pub embedding: Vec<f32>,
}

/// The result of one offline embedding request (vLLM's `EmbeddingRequestOutput`).
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingRequestOutput {
    /// `offline-N`.
    pub request_id: String,
    /// The prompt's text, when it was given as text.
    pub prompt: Option<String>,
    /// The tokens that were embedded.
    pub prompt_token_ids: Vec<TokenId>,
    /// The embedding.
    pub outputs: EmbeddingOutput,
}
