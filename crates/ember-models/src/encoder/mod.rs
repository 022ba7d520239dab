//! Encoder-only transformers (BERT, XLM-RoBERTa) for embedding models, written once on generic
//! burn tensors.
//!
//! - [`config`]: `config.json` → [`EncoderConfig`]; the families differ only in data.
//! - `embeddings`: word + position + token-type embeddings, then LayerNorm.
//! - `attention`: bidirectional self-attention over a padded batch (padding keys masked).
//! - `layer`: one post-LN layer (attention, then the GELU feed-forward).
//! - `model`: [`EncoderModel`] (weights, prefixes) and [`EncoderBatch`] (the padded inputs).
//!
//! The encoder returns every token's last hidden state; pooling lives in [`crate::pooling`].

mod attention;
pub mod config;
mod embeddings;
mod layer;
mod model;

pub use config::{EncoderConfig, EncoderFamily, EncoderSpec};
pub use model::{EncoderBatch, EncoderModel};
