//! Decoder-only transformer families written once on generic burn tensors.
//!
//! - [`config`]: `config.json` → a strict [`ModelConfig`]; family differences are data
//!   ([`ArchSpec`]), not separate model files.
//! - [`layers`]: linear, RMSNorm, rotary embedding, gated MLP, paged attention block.
//! - [`decoder`]: the one decoder skeleton all families share.
//! - [`weights`]: safetensors → device tensors in the chosen compute dtype, fusing q/k/v and
//!   gate/up projections at load time.

#![warn(missing_docs)]

pub mod config;
pub mod decoder;
mod error;
pub mod layers;
pub mod weights;

pub use config::{ArchSpec, Family, ModelConfig};
pub use decoder::DecoderModel;
pub use error::{ModelError, Result};
