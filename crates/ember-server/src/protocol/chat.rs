//! `/v1/chat/completions`: the request (messages checked and normalised for the chat template)
//! and the response and stream-chunk shapes (role delta first, then content deltas).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::common::{StreamOptions, Usage};
use crate::error::ApiError;
use crate::logprobs::{ChatLogprobs, PromptLogprobsJson};

/// Roles a message may have (OpenAI's, plus `function` for old clients).
pub const ROLES: [&str; 6] = ["system", "developer", "user", "assistant", "tool", "function"];

/// The endpoint's own fields; sampling fields are parsed separately.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatRequest {
    /// Served model name (optional).
    #[serde(default)]
    pub model: Option<String>,
    /// The conversation; checked by [`parse_messages`].
    pub messages: Vec<Value>,
    /// Tokens to generate (deprecated name); default: up to the context.
    #[serde(default)]
    pub max_tokens: Option<i64>,
    /// Tokens to generate (current name); wins over `max_tokens`.
    #[serde(default)]
    pub max_completion_tokens: Option<i64>,
    /// Return logprobs of the generated tokens.
    #[serde(default)]
    pub logprobs: Option<bool>,
    /// Alternatives per token (needs `logprobs: true`).
    #[serde(default)]
    pub top_logprobs: Option<i64>,
    /// Stream server-sent events.
    #[serde(default)]
    pub stream: Option<bool>,
    /// Usage reporting in streams.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// End the prompt with the assistant header (default true).
    #[serde(default)]
    pub add_generation_prompt: Option<bool>,
    /// Leave the last (assistant) message open, so the model continues it.
    #[serde(default)]
    pub continue_final_message: Option<bool>,
    /// A template for this request only.
    #[serde(default)]
    pub chat_template: Option<String>,
    /// Extra variables for the template (e.g. `enable_thinking`).
    #[serde(default)]
    pub chat_template_kwargs: Option<Map<String, Value>>,
    /// Prepend the last message's content to the reply when it has the reply's role.
    #[serde(default)]
    pub echo: Option<bool>,
    /// Tools, passed to the template.
    #[serde(default)]
    pub tools: Option<Value>,
    /// Only `none` (or absent) is supported: no tool-call parsing yet.
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// Documents, passed to the template (RAG templates).
    #[serde(default)]
    pub documents: Option<Value>,
    /// Add the tokenizer's special tokens when tokenizing the rendered prompt (default false:
    /// templates put BOS themselves).
    #[serde(default)]
    pub add_special_tokens: Option<bool>,
}

/// Checks roles and flattens content (a string, or a list of text parts) into the message
/// objects the template sees. Other fields (`name`, `tool_calls`, `tool_call_id`) pass through.
pub fn parse_messages(messages: &[Value]) -> Result<Vec<Value>, ApiError> {
    if messages.is_empty() {
        return Err(ApiError::field("messages", "messages must not be empty"));
    }
    messages.iter().enumerate().map(|(i, m)| parse_message(i, m)).collect()
}

fn parse_message(i: usize, message: &Value) -> Result<Value, ApiError> {
    let param = format!("messages[{i}]");
    let bad = |m: String| ApiError::field(param.clone(), m);
    let Some(obj) = message.as_object() else {
        return Err(bad(format!("{param} must be an object with a role and content")));
    };
    let role = match obj.get("role") {
        Some(Value::String(r)) if ROLES.contains(&r.as_str()) => r.clone(),
        Some(Value::String(r)) => {
            return Err(bad(format!("{param}: unknown role {r:?}; expected one of {}", ROLES.join(", "))));
        }
        Some(_) => return Err(bad(format!("{param}.role must be a string"))),
        None => return Err(bad(format!("{param} has no role"))),
    };
    let content = match obj.get("content") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => Value::String(text_parts(&param, parts)?),
        Some(Value::Null) | None if role == "assistant" => {
            if obj.get("tool_calls").is_some_and(|t| !t.is_null()) { Value::Null } else { Value::String(String::new()) }
        }
        Some(Value::Null) | None => return Err(bad(format!("{param} ({role}) has no content"))),
        Some(_) => return Err(bad(format!("{param}.content must be a string or a list of content parts"))),
    };
    let mut out = obj.clone();
    out.insert("role".into(), Value::String(role));
    out.insert("content".into(), content);
    Ok(Value::Object(out))
}

/// Joins text parts with newlines (vLLM's "string" content format); other parts are refused.
fn text_parts(param: &str, parts: &[Value]) -> Result<String, ApiError> {
    let mut texts = Vec::new();
    for part in parts {
        match (part.get("type").and_then(Value::as_str), part.get("text").and_then(Value::as_str)) {
            (Some("text"), Some(text)) => texts.push(text),
            (Some(kind), _) if kind != "text" => {
                return Err(ApiError::Unsupported(format!("{param}: content parts of type {kind:?} are not supported (text only)")));
            }
            _ => return Err(ApiError::field(param, format!("{param}: a content part must be {{\"type\": \"text\", \"text\": ...}}"))),
        }
    }
    Ok(texts.join("\n"))
}

/// The reply of one choice.
#[derive(Debug, Clone, Serialize)]
pub struct ChatMessage {
    /// `assistant` (or the last message's role with `add_generation_prompt: false`).
    pub role: String,
    /// The generated text.
    pub content: Option<String>,
    /// Always empty: tool-call parsing is not supported yet.
    pub tool_calls: Vec<Value>,
}

/// One choice of a chat completion.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChoice {
    /// Sample index.
    pub index: usize,
    /// The reply.
    pub message: ChatMessage,
    /// Logprobs of the reply's tokens.
    pub logprobs: Option<ChatLogprobs>,
    /// `stop` or `length`.
    pub finish_reason: Option<&'static str>,
    /// The stop string or token id that ended it (vLLM).
    pub stop_reason: Value,
}

/// The non-streaming response.
#[derive(Debug, Clone, Serialize)]
pub struct ChatResponse {
    /// `chatcmpl-…`.
    pub id: String,
    /// Always `chat.completion`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model name.
    pub model: String,
    /// The choices.
    pub choices: Vec<ChatChoice>,
    /// Token counts.
    pub usage: Usage,
    /// Logprobs of the prompt tokens (vLLM; only when asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_logprobs: Option<PromptLogprobsJson>,
}

/// A streamed message delta.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Delta {
    /// Only in a choice's first chunk.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// New text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// One choice of a stream chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChunkChoice {
    /// Sample index.
    pub index: usize,
    /// What is new.
    pub delta: Delta,
    /// Logprobs of the new tokens.
    pub logprobs: Option<ChatLogprobs>,
    /// Set in the choice's last chunk.
    pub finish_reason: Option<&'static str>,
    /// Set in the choice's last chunk (vLLM).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reason: Option<Value>,
}

/// One stream chunk.
#[derive(Debug, Clone, Serialize)]
pub struct ChatChunk {
    /// The same `chatcmpl-…` id in every chunk.
    pub id: String,
    /// Always `chat.completion.chunk`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model name.
    pub model: String,
    /// The choices that changed (empty in the final usage chunk).
    pub choices: Vec<ChatChunkChoice>,
    /// null in every chunk but the last when `include_usage` is set; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Option<Usage>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_are_checked_and_flattened() {
        let out = parse_messages(&[
            json!({"role": "system", "content": "s"}),
            json!({"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}),
            json!({"role": "assistant", "content": null}),
        ])
        .unwrap();
        assert_eq!(out[1]["content"], "a\nb");
        assert_eq!(out[2]["content"], "");
        assert_eq!(parse_messages(&[]).unwrap_err().param(), Some("messages"));
        assert_eq!(parse_messages(&[json!({"role": "wizard", "content": "x"})]).unwrap_err().param(), Some("messages[0]"));
        assert!(parse_messages(&[json!({"role": "user"})]).is_err());
        assert!(parse_messages(&[json!({"role": "user", "content": 3})]).is_err());
        let image = json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]});
        assert_eq!(parse_messages(&[image]).unwrap_err().status().as_u16(), 400);
    }
}
