//! Ember's OpenAI-compatible HTTP server (`ember serve`), a drop-in for `vllm serve`.
//!
//! Request flow: axum routes a request ([`router`]); the API-key guard checks `/v1/*`
//! ([`auth`]); the body is parsed into protocol types with errors naming the field
//! ([`extract`], [`protocol`], [`sampling`]); the handler ([`handlers`]) renders the chat
//! template ([`chat_template`]), tokenizes, checks the prompt against the context
//! ([`generation`]), and submits one engine request per prompt to the [`AsyncEngine`] thread,
//! each with its own output channel. Outputs come back as one JSON response or as
//! server-sent events ([`streaming`]); logprobs are rendered by [`logprobs`]; every failure is
//! an [`ApiError`] ([`error`]) with one status mapping; [`metrics`] exports vLLM's Prometheus
//! names.
//!
//! The server never sees burn: it talks to the engine only through `ember-engine`'s
//! [`AsyncEngine`].
//!
//! [`AsyncEngine`]: ember_engine::AsyncEngine

#![warn(missing_docs)]

pub mod auth;
pub mod chat_template;
pub mod config;
pub mod error;
pub mod extract;
pub mod generation;
pub mod handlers;
pub mod logprobs;
pub mod metrics;
pub mod protocol;
pub mod router;
pub mod sampling;
pub mod server;
pub mod state;
pub mod streaming;
mod time_format;

pub use config::ServerConfig;
pub use error::ApiError;
pub use router::router;
pub use server::{ServeError, ServeHooks, run};
pub use state::{AppState, Ready};
