//! The small endpoints: `/health` (503 while loading, 200 when ready), `/version`,
//! `/v1/models`, `/metrics`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::protocol::common::unix_now;
use crate::protocol::models::{ModelCard, ModelList, Version};
use crate::state::AppState;

/// `GET /health`: 200 with an empty body once the model is loaded, 503 before.
pub async fn health(State(state): State<Arc<AppState>>) -> Response {
    if state.is_ready() {
        StatusCode::OK.into_response()
    } else {
        ApiError::Loading.into_response()
    }
}

/// `GET /version`.
pub async fn version() -> Json<Version> {
    Json(Version { version: env!("CARGO_PKG_VERSION") })
}

/// `GET /v1/models`: one card per served name.
pub async fn list_models(State(state): State<Arc<AppState>>) -> Result<Json<ModelList>, ApiError> {
    let ready = state.ready()?;
    let created = unix_now();
    let data = state
        .config
        .served_model_names
        .iter()
        .map(|name| ModelCard {
            id: name.clone(),
            object: "model",
            created,
            owned_by: "ember",
            root: state.config.model_path.clone(),
            parent: None,
            max_model_len: ready.engine.info().max_model_len,
        })
        .collect();
    Ok(Json(ModelList { object: "list", data }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let snapshot = state.ready().ok().map(|r| r.engine.snapshot());
    let text = state.metrics.render(snapshot.as_ref());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}
