//! End-to-end tests of `ember serve`: each test starts the real binary on a tiny fixture model
//! (`--port 0`) and talks raw HTTP to it. Generation is checked against the transformers
//! references recorded with the fixtures; errors against OpenAI's error shape; lifecycle
//! (API key, cancellation, concurrency, metrics) against what `/metrics` reports.
//!
//! Most tests run on `cpu` (a server starts in well under a second there); `wgpu.rs` runs one
//! server on lavapipe and checks the same core behaviour, skipping with the reason when no
//! Vulkan driver is installed.

#[path = "../common/mod.rs"]
mod common;
#[path = "../server_support/mod.rs"]
mod server_support;

mod errors;
mod generation;
mod lifecycle;
mod streaming;
mod wgpu;

use serde_json::Value;

/// Ids from logprob tokens rendered as `token_id:N` (`return_tokens_as_token_ids`).
pub fn ids_from_tokens(tokens: &Value) -> Vec<u32> {
    tokens
        .as_array()
        .expect("logprobs.tokens")
        .iter()
        .map(|t| {
            let s = t.as_str().expect("token string");
            s.strip_prefix("token_id:").unwrap_or_else(|| panic!("{s} is not token_id:N")).parse().expect("id")
        })
        .collect()
}

/// Asserts an OpenAI error body: status, `error.type`, and (when given) that `error.param`
/// names the field (`messages` matches `messages[0]`).
pub fn assert_error(status: u16, body: &Value, want_status: u16, want_param: Option<&str>, context: &str) {
    assert_eq!(status, want_status, "{context}: {body}");
    let error = body.get("error").unwrap_or_else(|| panic!("{context}: no error object in {body}"));
    let message = error["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{context}: empty message in {body}");
    assert!(error["type"].as_str().is_some_and(|t| !t.is_empty()), "{context}: no type in {body}");
    assert!(error.get("code").is_some(), "{context}: no code in {body}");
    if let Some(param) = want_param {
        let got = error["param"].as_str().unwrap_or("");
        assert!(got == param || got.starts_with(&format!("{param}[")), "{context}: param {got:?}, want {param:?}: {body}");
    }
}
