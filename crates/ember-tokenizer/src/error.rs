//! The crate's single error type, [`TokenizerError`]; messages always name the
//! file (and field) involved.

use std::path::PathBuf;

/// Result alias used throughout ember-tokenizer.
pub type Result<T, E = TokenizerError> = std::result::Result<T, E>;

/// Everything that can go wrong while loading or using a tokenizer.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A JSON config is malformed (serde's message has line and column).
    #[error("invalid JSON in {}: {source}", path.display())]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The serde error.
        source: serde_json::Error,
    },

    /// A config field has an unexpected type or value.
    #[error("invalid field '{field}' in {}: {message}", path.display())]
    Field {
        /// The file involved.
        path: PathBuf,
        /// The field name.
        field: String,
        /// What is wrong with it.
        message: String,
    },

    /// The `tokenizers` crate could not load `tokenizer.json`.
    #[error("cannot load tokenizer {}: {message}", path.display())]
    Load {
        /// The tokenizer.json path.
        path: PathBuf,
        /// The tokenizers error, rendered.
        message: String,
    },

    /// Encoding text failed.
    #[error("tokenizer {} failed to encode a {len}-byte text: {message}", path.display())]
    Encode {
        /// The tokenizer.json path.
        path: PathBuf,
        /// Length of the input text in bytes.
        len: usize,
        /// The tokenizers error, rendered.
        message: String,
    },

    /// Decoding ids failed.
    #[error("tokenizer {} failed to decode {count} token ids: {message}", path.display())]
    Decode {
        /// The tokenizer.json path.
        path: PathBuf,
        /// Number of ids being decoded.
        count: usize,
        /// The tokenizers error, rendered.
        message: String,
    },
}
