//! `/tokenize` and `/detokenize` (vLLM's shapes): a prompt or chat messages in, token ids out,
//! and back.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `/tokenize` request: `prompt`, or `messages` rendered with the chat template.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenizeRequest {
    /// Served model name (optional).
    #[serde(default)]
    pub model: Option<String>,
    /// Text to tokenize.
    #[serde(default)]
    pub prompt: Option<String>,
    /// Chat messages to render and tokenize.
    #[serde(default)]
    pub messages: Option<Vec<Value>>,
    /// Add special tokens (default: true for `prompt`, false for `messages`).
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
    /// For `messages`: end with the assistant header (default true).
    #[serde(default)]
    pub add_generation_prompt: Option<bool>,
    /// For `messages`: leave the last message open.
    #[serde(default)]
    pub continue_final_message: Option<bool>,
    /// For `messages`: extra template variables.
    #[serde(default)]
    pub chat_template_kwargs: Option<Map<String, Value>>,
    /// Also return each token's text.
    #[serde(default)]
    pub return_token_strs: Option<bool>,
}

/// `/tokenize` response.
#[derive(Debug, Clone, Serialize)]
pub struct TokenizeResponse {
    /// Number of tokens.
    pub count: usize,
    /// The context length.
    pub max_model_len: usize,
    /// The token ids.
    pub tokens: Vec<u32>,
    /// Each token's text, when asked for.
    pub token_strs: Option<Vec<String>>,
}

/// `/detokenize` request.
#[derive(Debug, Clone, Deserialize)]
pub struct DetokenizeRequest {
    /// Served model name (optional).
    #[serde(default)]
    pub model: Option<String>,
    /// The token ids.
    pub tokens: Vec<i64>,
}

/// `/detokenize` response.
#[derive(Debug, Clone, Serialize)]
pub struct DetokenizeResponse {
    /// The decoded text.
    pub prompt: String,
}
