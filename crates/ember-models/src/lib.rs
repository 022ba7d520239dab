//! Transformer families written once on generic burn tensors: decoder-only LMs and BERT-family
//! encoders, plus the pooling that turns either into an embedding model.
//!
//! - [`config`]: `config.json` → a strict [`ModelConfig`]; family differences are data
//!   ([`ArchSpec`]), not separate model files.
//! - [`layers`]: linear, RMSNorm, LayerNorm, rotary embedding, gated MLP, paged attention block.
//! - [`decoder`]: the one decoder skeleton all families share (also the backbone of decoder
//!   embedding models such as Qwen3-Embedding, loaded without its LM head).
//! - [`encoder`]: BERT / XLM-RoBERTa encoders (bidirectional attention, post-LN).
//! - [`pooling`]: sentence-transformers pooling (CLS, mean, last token), normalisation,
//!   matryoshka `dimensions`.
//! - [`weights`]: safetensors → device tensors in the chosen compute dtype, fusing q/k/v and
//!   gate/up projections at load time.

#![warn(missing_docs)]

pub mod config;
pub mod decoder;
pub mod encoder;
mod error;
pub mod layers;
pub mod pooling;
pub mod weights;

pub use config::{ArchSpec, Family, ModelConfig};
pub use decoder::DecoderModel;
pub use encoder::{EncoderBatch, EncoderConfig, EncoderFamily, EncoderModel};
pub use error::{ModelError, Result};
pub use pooling::{Matryoshka, Pooler, PoolerConfig, PoolingType};
