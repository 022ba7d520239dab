//! The one error type of `ember-models`: configuration and weight problems, each naming the
//! file, field or tensor involved.

use thiserror::Error;

/// Errors raised while reading a model's configuration or weights.
#[derive(Debug, Error)]
pub enum ModelError {
    /// `architectures` names a family Ember does not implement.
    #[error("unsupported architecture {found:?} in config.json; supported: {supported}")]
    UnsupportedArchitecture {
        /// What config.json says.
        found: Vec<String>,
        /// The supported `architectures` values, comma separated.
        supported: String,
    },
    /// A field is missing or has an impossible value.
    #[error("config.json: {field}: {reason}")]
    InvalidConfig {
        /// The config field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A feature of the config that Ember does not implement yet.
    #[error("config.json: {0} is not supported yet")]
    Unsupported(String),
    /// A weight tensor has the wrong shape.
    #[error("weight {name}: expected shape {expected:?}, found {found:?}")]
    WeightShape {
        /// Tensor name.
        name: String,
        /// Shape the config implies.
        expected: Vec<usize>,
        /// Shape in the checkpoint.
        found: Vec<usize>,
    },
    /// A sentence-transformers file (modules.json, the Pooling config) Ember cannot use.
    #[error("{}: {reason}", path.display())]
    Pooling {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A quantization method the backend or the model cannot run (`--quantization`).
    #[error("quantization {method}: {reason}")]
    Quantization {
        /// The method asked for.
        method: &'static str,
        /// Why it cannot run.
        reason: String,
    },
    /// Reading the checkpoint failed (missing tensor, bad file, unsupported dtype...).
    #[error(transparent)]
    Loader(#[from] ember_loader::LoaderError),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
