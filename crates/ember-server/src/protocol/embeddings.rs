//! `/v1/embeddings` wire types (OpenAI's shape, vLLM's checks).
//!
//! `input` is a string, a list of strings, a list of token ids, or a list of token-id lists;
//! it is parsed by hand so that every mistake (empty, mixed types, negative ids) is a 400
//! naming `input`. `encoding_format` is `float` (default) or `base64` (the little-endian f32
//! bytes, standard base64, as OpenAI's Python client decodes them). `user` is accepted and
//! ignored.

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ApiError;

/// The request body.
#[derive(Debug, Clone, Deserialize)]
pub struct EmbeddingRequest {
    /// The served model name (optional).
    pub model: Option<String>,
    /// What to embed (see [`EmbeddingInput::parse`]).
    pub input: Option<Value>,
    /// `float` or `base64`.
    pub encoding_format: Option<String>,
    /// Matryoshka truncation.
    pub dimensions: Option<i64>,
    /// Accepted and ignored (OpenAI's end-user id).
    pub user: Option<String>,
}

/// The parsed `input`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddingInput {
    /// One or more texts.
    Texts(Vec<String>),
    /// One or more token-id sequences.
    Tokens(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// Parses `input`; errors name the `input` field.
    pub fn parse(input: Option<&Value>) -> Result<Self, ApiError> {
        let bad = |m: &str| ApiError::field("input", m);
        let shape = "input must be a string, a list of strings, a list of token ids or a list of token-id lists";
        let token = |v: &Value| v.as_u64().and_then(|t| u32::try_from(t).ok());
        match input {
            None | Some(Value::Null) => Err(bad("input is required")),
            Some(Value::String(s)) if s.is_empty() => Err(bad("input must not be an empty string")),
            Some(Value::String(s)) => Ok(Self::Texts(vec![s.clone()])),
            Some(Value::Array(items)) if items.is_empty() => Err(bad("input must not be an empty list")),
            Some(Value::Array(items)) => match &items[0] {
                Value::String(_) => {
                    let texts: Option<Vec<String>> = items.iter().map(|v| v.as_str().map(str::to_string)).collect();
                    let texts = texts.ok_or_else(|| bad(shape))?;
                    if texts.iter().any(String::is_empty) {
                        return Err(bad("input must not contain empty strings"));
                    }
                    Ok(Self::Texts(texts))
                }
                Value::Number(_) => {
                    let ids: Option<Vec<u32>> = items.iter().map(token).collect();
                    Ok(Self::Tokens(vec![ids.ok_or_else(|| bad("token ids must be integers in [0, 2^32)"))?]))
                }
                Value::Array(_) => {
                    let mut lists = Vec::with_capacity(items.len());
                    for item in items {
                        let ids: Option<Vec<u32>> = item.as_array().ok_or_else(|| bad(shape))?.iter().map(token).collect();
                        let ids = ids.ok_or_else(|| bad("token ids must be integers in [0, 2^32)"))?;
                        if ids.is_empty() {
                            return Err(bad("input must not contain empty token lists"));
                        }
                        lists.push(ids);
                    }
                    Ok(Self::Tokens(lists))
                }
                _ => Err(bad(shape)),
            },
            Some(_) => Err(bad(shape)),
        }
    }
}

/// `encoding_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodingFormat {
    /// A JSON array of numbers.
    Float,
    /// A base64 string of little-endian f32 bytes.
    Base64,
}

impl EncodingFormat {
    /// Parses the field (absent means float).
    pub fn parse(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("float") => Ok(Self::Float),
            Some("base64") => Ok(Self::Base64),
            Some(other) => Err(ApiError::field(
                "encoding_format",
                format!("encoding_format must be \"float\" or \"base64\", got {other:?}"),
            )),
        }
    }

    /// One embedding in this format.
    pub fn encode(self, embedding: Vec<f32>) -> EmbeddingValue {
        match self {
            Self::Float => EmbeddingValue::Float(embedding),
            Self::Base64 => {
                let bytes: Vec<u8> = embedding.iter().flat_map(|x| x.to_le_bytes()).collect();
                EmbeddingValue::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            }
        }
    }
}

/// An embedding as sent.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EmbeddingValue {
    /// `encoding_format: float`.
    Float(Vec<f32>),
    /// `encoding_format: base64`.
    Base64(String),
}

/// One entry of `data`.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingData {
    /// Always `embedding`.
    pub object: &'static str,
    /// Position of the input.
    pub index: usize,
    /// The vector.
    pub embedding: EmbeddingValue,
}

/// `usage` (embeddings have no completion tokens).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct EmbeddingUsage {
    /// Tokens embedded.
    pub prompt_tokens: usize,
    /// Same as `prompt_tokens`.
    pub total_tokens: usize,
}

/// The response body.
#[derive(Debug, Clone, Serialize)]
pub struct EmbeddingResponse {
    /// `embd-…`.
    pub id: String,
    /// Always `list`.
    pub object: &'static str,
    /// Unix seconds.
    pub created: u64,
    /// The served model name.
    pub model: String,
    /// One entry per input, in order.
    pub data: Vec<EmbeddingData>,
    /// Token counts.
    pub usage: EmbeddingUsage,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn input_forms_and_errors() {
        let p = |v: Value| EmbeddingInput::parse(Some(&v));
        assert_eq!(p(json!("hi")).unwrap(), EmbeddingInput::Texts(vec!["hi".into()]));
        assert_eq!(p(json!(["a", "b"])).unwrap(), EmbeddingInput::Texts(vec!["a".into(), "b".into()]));
        assert_eq!(p(json!([1, 2])).unwrap(), EmbeddingInput::Tokens(vec![vec![1, 2]]));
        assert_eq!(p(json!([[1], [2, 3]])).unwrap(), EmbeddingInput::Tokens(vec![vec![1], vec![2, 3]]));
        for bad in [json!(""), json!([]), json!(["a", ""]), json!([[]]), json!([1, -2]), json!(["a", 1]), json!({}), json!(3)] {
            let e = p(bad.clone()).unwrap_err();
            assert_eq!(e.param(), Some("input"), "{bad}: {e}");
        }
        assert_eq!(EmbeddingInput::parse(None).unwrap_err().param(), Some("input"));
    }

    #[test]
    fn base64_is_little_endian_f32() {
        // 1.0f32 = 00 00 80 3f, -2.0f32 = 00 00 00 c0 → "AACAPwAAAMA=".
        assert_eq!(EncodingFormat::Base64.encode(vec![1.0, -2.0]), EmbeddingValue::Base64("AACAPwAAAMA=".into()));
        assert_eq!(EncodingFormat::parse(Some("base64")).unwrap(), EncodingFormat::Base64);
        assert_eq!(EncodingFormat::parse(None).unwrap(), EncodingFormat::Float);
        assert_eq!(EncodingFormat::parse(Some("binary")).unwrap_err().param(), Some("encoding_format"));
    }
}
