//! The API-key guard on `/v1/*` (vLLM's rule: `/health`, `/metrics`, `/version`, `/tokenize`
//! and `/detokenize` stay open). The key is compared in constant time.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// Whether `authorization` (the header's value) carries `key` as a bearer token.
pub fn key_matches(authorization: Option<&str>, key: &str) -> bool {
    let Some(value) = authorization else { return false };
    let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else { return false };
    bool::from(token.trim().as_bytes().ct_eq(key.as_bytes()))
}

/// Middleware: 401 unless the request carries the configured key (no key configured: open).
pub async fn require_api_key(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    if let Some(key) = state.config.api_key.as_deref() {
        let given = request.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if !key_matches(given, key) {
            return ApiError::Unauthorized.into_response();
        }
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::key_matches;

    #[test]
    fn bearer_tokens() {
        assert!(key_matches(Some("Bearer sk-1"), "sk-1"));
        assert!(!key_matches(Some("Bearer sk-2"), "sk-1"));
        assert!(!key_matches(Some("Bearer sk-11"), "sk-1"));
        assert!(!key_matches(Some("sk-1"), "sk-1"));
        assert!(!key_matches(None, "sk-1"));
    }
}
