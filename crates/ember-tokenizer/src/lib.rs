//! ember-tokenizer: text <-> token ids for the engine.
//!
//! * [`Tokenizer`] wraps a Hugging Face `tokenizer.json` together with the
//!   special tokens, chat template and sampling defaults of
//!   `tokenizer_config.json` / `generation_config.json`.
//! * [`IncrementalDetokenizer`] turns a growing list of generated ids into
//!   streamable text deltas (never split UTF-8, never lost spaces).
//! * [`StopStringMatcher`] finds stop strings in generated text and says how
//!   much of the tail a streamer must hold back.
//!
//! Every failure is a [`TokenizerError`] naming the file or field involved.

#![warn(missing_docs)]

mod config;
mod error;
mod incremental;
mod stop;
mod tokenizer;

/// A token id, as produced by the tokenizer and consumed by the model.
pub type TokenId = u32;

pub use config::{GenerationConfig, TokenizerConfig};
pub use error::{Result, TokenizerError};
pub use incremental::IncrementalDetokenizer;
pub use stop::{StopMatch, StopStringMatcher};
pub use tokenizer::Tokenizer;
