//! The engine's error type: everything that can go wrong loading a model or accepting a
//! request, each variant saying what to fix. The server maps these to HTTP statuses.

use thiserror::Error;

/// Errors from building the engine or submitting requests.
#[derive(Debug, Error)]
pub enum EngineError {
    /// Finding or reading model files.
    #[error(transparent)]
    Loader(#[from] ember_loader::LoaderError),
    /// The model's configuration or weights.
    #[error(transparent)]
    Model(#[from] ember_models::ModelError),
    /// The tokenizer.
    #[error(transparent)]
    Tokenizer(#[from] ember_tokenizer::TokenizerError),
    /// Scheduler-level rejection (prompt too long, bad sampling parameters...).
    #[error(transparent)]
    Core(#[from] ember_core::CoreError),
    /// A request that cannot be served as asked.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Engine arguments that do not fit this model or machine.
    #[error("invalid engine arguments: {0}")]
    InvalidArgs(String),
    /// The backend could not be used (not compiled in, no device, runtime failure).
    #[error("backend {backend}: {reason}")]
    Backend {
        /// The backend asked for.
        backend: String,
        /// Why it cannot be used.
        reason: String,
    },
}

/// Why a request submitted to the engine ended without finishing: the caller's fault (a bad
/// prompt or parameter, to be answered with HTTP 400) or the engine's (HTTP 500).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The request cannot be served as asked (prompt too long, bad parameter...).
    #[error("{0}")]
    Invalid(String),
    /// The engine failed while running it.
    #[error("{0}")]
    Internal(String),
}

impl From<&EngineError> for RequestError {
    fn from(e: &EngineError) -> Self {
        match e {
            EngineError::InvalidRequest(m) => Self::Invalid(m.clone()),
            EngineError::Core(c) => Self::Invalid(c.to_string()),
            EngineError::Tokenizer(ember_tokenizer::TokenizerError::Encode { .. }) => Self::Invalid(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Result alias for the engine.
pub type Result<T> = std::result::Result<T, EngineError>;
