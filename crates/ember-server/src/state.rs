//! [`AppState`]: what every handler shares. The engine slot is empty while the model loads
//! (handlers answer 503 through [`AppState::ready`]) and filled once, when loading finished.
//!
//! Adding an endpoint means a handler taking `State<Arc<AppState>>`, calling `state.ready()?`
//! for the engine and tokenizer, and a line in `router.rs`.

use std::sync::OnceLock;

use ember_engine::{AsyncEngine, Task};

use crate::chat_template::ChatTemplate;
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// The loaded engine and what was derived from it.
pub struct Ready {
    /// The engine thread's handle.
    pub engine: AsyncEngine,
    /// The chat template (`--chat-template`, else the tokenizer's); `None` when the model has
    /// none, which makes `/v1/chat/completions` a 400.
    pub chat_template: Option<ChatTemplate>,
}

impl Ready {
    /// What the model serves: [`Task::Generate`] (completions, chat) or [`Task::Embed`]
    /// (`/v1/embeddings`); the other endpoints answer 400 with vLLM's message.
    pub fn task(&self) -> Task {
        self.engine.info().task
    }
}

/// Shared server state.
pub struct AppState {
    /// Server settings.
    pub config: ServerConfig,
    /// Prometheus registry and per-request instruments.
    pub metrics: Metrics,
    ready: OnceLock<Ready>,
}

impl AppState {
    /// A state whose engine is still loading.
    pub fn new(config: ServerConfig) -> Self {
        let metrics = Metrics::new(config.model_name());
        Self { config, metrics, ready: OnceLock::new() }
    }

    /// The engine, or [`ApiError::Loading`] while it loads.
    pub fn ready(&self) -> Result<&Ready, ApiError> {
        self.ready.get().ok_or(ApiError::Loading)
    }

    /// Whether the engine has loaded.
    pub fn is_ready(&self) -> bool {
        self.ready.get().is_some()
    }

    /// Installs the loaded engine (once; later calls are ignored).
    pub fn set_ready(&self, ready: Ready) {
        let _ = self.ready.set(ready);
    }

    /// Checks the request's `model` field: absent means the served model, an unknown name is
    /// a 404 (vLLM's behaviour).
    pub fn check_model(&self, requested: Option<&str>) -> Result<(), ApiError> {
        match requested {
            None => Ok(()),
            Some(name) if self.config.serves(name) => Ok(()),
            Some(name) => Err(ApiError::ModelNotFound(name.to_string())),
        }
    }
}
