//! The route table. `/v1/*` sits behind the API-key guard; everything is wrapped in a panic
//! catcher (a panicking handler answers 500, the server keeps serving), permissive CORS (vLLM's
//! default) and a 64 MiB body limit. Unknown paths and methods get OpenAI-shaped errors.
//!
//! To add an endpoint: write its handler in `handlers/`, add one `.route(...)` line here.

use std::any::Any;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::Uri;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::CorsLayer;

use crate::auth::require_api_key;
use crate::error::ApiError;
use crate::handlers::{chat, completions, embeddings, info, tokenize};
use crate::state::AppState;

/// Largest request body accepted.
const MAX_BODY_BYTES: usize = 64 << 20;

/// The OpenAI-compatible routes (guarded by the API key).
fn v1_routes(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/models", get(info::list_models))
        .route("/v1/completions", post(completions::create_completion))
        .route("/v1/chat/completions", post(chat::create_chat_completion))
        .route("/v1/embeddings", post(embeddings::create_embedding))
        .route_layer(from_fn_with_state(Arc::clone(state), require_api_key))
}

/// The whole application.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(v1_routes(&state))
        .route("/health", get(info::health))
        .route("/version", get(info::version))
        .route("/metrics", get(info::metrics))
        .route("/tokenize", post(tokenize::tokenize))
        .route("/detokenize", post(tokenize::detokenize))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(CorsLayer::permissive())
        .with_state(state)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::RouteNotFound(uri.path().to_string())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

fn panic_response(panic: Box<dyn Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    ApiError::Internal(format!("the server hit a bug while handling this request: {message}")).into_response()
}
