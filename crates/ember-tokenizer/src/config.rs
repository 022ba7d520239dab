//! The model-side configs that accompany `tokenizer.json`:
//! [`TokenizerConfig`] (`tokenizer_config.json`: special tokens, chat template)
//! and [`GenerationConfig`] (`generation_config.json`: eos ids, sampling defaults).

use std::path::Path;

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::TokenId;
use crate::error::{Result, TokenizerError};

/// Values above this in `model_max_length` are transformers' "no limit"
/// sentinel (`int(1e30)`) and similar; they are reported as `None`.
const UNLIMITED_MAX_LENGTH: f64 = 1e15;

/// The parts of `tokenizer_config.json` ember uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenizerConfig {
    /// Beginning-of-sequence token text.
    pub bos_token: Option<String>,
    /// End-of-sequence token text.
    pub eos_token: Option<String>,
    /// Padding token text.
    pub pad_token: Option<String>,
    /// Whether encoding with special tokens must start with the BOS token.
    pub add_bos_token: Option<bool>,
    /// The Jinja chat template (the `default` one when a list is given).
    pub chat_template: Option<String>,
    /// Maximum sequence length the tokenizer was configured for.
    pub model_max_length: Option<usize>,
}

impl TokenizerConfig {
    /// Reads `tokenizer_config.json`. Unknown fields are ignored; known fields
    /// of the wrong type are errors naming the field and the file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let value: Value = read_json(path)?;
        Self::from_value(path, &value)
    }

    fn from_value(path: &Path, value: &Value) -> Result<Self> {
        let field_error = |field: &str, message: &str| TokenizerError::Field {
            path: path.to_path_buf(),
            field: field.to_string(),
            message: message.to_string(),
        };
        let Some(obj) = value.as_object() else {
            return Err(field_error("<root>", "expected a JSON object"));
        };
        let get = |field: &str| obj.get(field).filter(|v| !v.is_null());
        let token = |field: &str| -> Result<Option<String>> {
            match get(field) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Object(o)) => match o.get("content") {
                    Some(Value::String(s)) => Ok(Some(s.clone())),
                    _ => Err(field_error(field, "token object has no string 'content'")),
                },
                Some(_) => Err(field_error(
                    field,
                    "expected a string or an object with 'content'",
                )),
            }
        };
        let add_bos_token = match get("add_bos_token") {
            None => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(field_error("add_bos_token", "expected true or false")),
        };
        let model_max_length = match get("model_max_length") {
            None => None,
            Some(v) => match v.as_f64() {
                Some(n) if n >= UNLIMITED_MAX_LENGTH => None,
                Some(n) if n >= 0.0 => v.as_u64().map(|n| n as usize).or(Some(n as usize)),
                _ => {
                    return Err(field_error(
                        "model_max_length",
                        "expected a non-negative number",
                    ));
                }
            },
        };
        Ok(Self {
            bos_token: token("bos_token")?,
            eos_token: token("eos_token")?,
            pad_token: token("pad_token")?,
            add_bos_token,
            chat_template: chat_template(get("chat_template"), &field_error)?,
            model_max_length,
        })
    }
}

/// `chat_template` is a string, or a list of `{name, template}` of which the
/// one named `default` is kept (none in the list is default: `None`).
fn chat_template(
    value: Option<&Value>,
    field_error: &dyn Fn(&str, &str) -> TokenizerError,
) -> Result<Option<String>> {
    const FIELD: &str = "chat_template";
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Array(items)) => {
            for item in items {
                let name = item.get("name").and_then(Value::as_str);
                let template = item.get("template").and_then(Value::as_str);
                match (name, template) {
                    (Some("default"), Some(t)) => return Ok(Some(t.to_string())),
                    (Some(_), Some(_)) => {}
                    _ => {
                        return Err(field_error(
                            FIELD,
                            "list entries must be objects with string 'name' and 'template'",
                        ));
                    }
                }
            }
            Ok(None)
        }
        Some(_) => Err(field_error(
            FIELD,
            "expected a string or a list of {name, template}",
        )),
    }
}

/// Sampling defaults and special ids from `generation_config.json`.
/// Every field is optional; unknown fields are ignored.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct GenerationConfig {
    /// End-of-sequence ids (the file may hold one id or a list; empty when absent).
    #[serde(deserialize_with = "one_or_many")]
    pub eos_token_id: Vec<TokenId>,
    /// Beginning-of-sequence id.
    pub bos_token_id: Option<TokenId>,
    /// Padding id.
    pub pad_token_id: Option<TokenId>,
    /// Default sampling temperature.
    pub temperature: Option<f32>,
    /// Default nucleus-sampling threshold.
    pub top_p: Option<f32>,
    /// Default top-k (0 or negative conventionally disables it).
    pub top_k: Option<i32>,
    /// Default min-p threshold.
    pub min_p: Option<f32>,
    /// Default repetition penalty.
    pub repetition_penalty: Option<f32>,
    /// Default generation length.
    pub max_new_tokens: Option<usize>,
    /// Whether the model's authors sample by default (false: greedy).
    pub do_sample: Option<bool>,
}

impl GenerationConfig {
    /// Reads `generation_config.json`; wrong types are errors naming the file,
    /// line and column.
    pub fn from_file(path: &Path) -> Result<Self> {
        read_json(path)
    }
}

/// `null`, one id, or a list of ids.
fn one_or_many<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<TokenId>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(TokenId),
        Many(Vec<TokenId>),
    }
    Ok(match Option::<OneOrMany>::deserialize(deserializer)? {
        None => Vec::new(),
        Some(OneOrMany::One(id)) => vec![id],
        Some(OneOrMany::Many(ids)) => ids,
    })
}

/// Reads and deserializes a JSON file with errors naming it.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| TokenizerError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| TokenizerError::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<TokenizerConfig> {
        TokenizerConfig::from_value(
            Path::new("tokenizer_config.json"),
            &serde_json::from_str(json).unwrap(),
        )
    }

    #[test]
    fn tokenizer_config_accepts_strings_objects_and_template_lists() {
        let cfg = parse(
            r#"{"bos_token": {"content": "<s>", "lstrip": false}, "eos_token": "</s>",
                "pad_token": null, "add_bos_token": true, "model_max_length": 1e30,
                "chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}"#,
        )
        .unwrap();
        assert_eq!(cfg.bos_token.as_deref(), Some("<s>"));
        assert_eq!(cfg.eos_token.as_deref(), Some("</s>"));
        assert_eq!(cfg.pad_token, None);
        assert_eq!(cfg.add_bos_token, Some(true));
        assert_eq!(cfg.model_max_length, None);
        assert_eq!(cfg.chat_template.as_deref(), Some("D"));

        let cfg = parse(r#"{"model_max_length": 8192, "chat_template": "{{ x }}"}"#).unwrap();
        assert_eq!(cfg.model_max_length, Some(8192));
        assert_eq!(cfg.chat_template.as_deref(), Some("{{ x }}"));
    }

    #[test]
    fn tokenizer_config_wrong_types_name_the_field_and_file() {
        for (json, field) in [
            (r#"{"eos_token": 5}"#, "eos_token"),
            (r#"{"bos_token": {"text": "<s>"}}"#, "bos_token"),
            (r#"{"add_bos_token": "yes"}"#, "add_bos_token"),
            (r#"{"model_max_length": -1}"#, "model_max_length"),
            (
                r#"{"chat_template": [{"name": "default"}]}"#,
                "chat_template",
            ),
            (r#"{"chat_template": 3}"#, "chat_template"),
            ("[]", "<root>"),
        ] {
            let msg = parse(json).unwrap_err().to_string();
            assert!(
                msg.contains(&format!("'{field}'")) && msg.contains("tokenizer_config.json"),
                "{msg}"
            );
        }
    }

    #[test]
    fn generation_config_eos_is_one_or_many() {
        let one: GenerationConfig =
            serde_json::from_str(r#"{"eos_token_id": 7, "temperature": 0.6}"#).unwrap();
        assert_eq!(one.eos_token_id, vec![7]);
        assert_eq!(one.temperature, Some(0.6));
        let many: GenerationConfig =
            serde_json::from_str(r#"{"eos_token_id": [7, 9], "do_sample": true, "top_k": 50, "transformers_version": "4"}"#)
                .unwrap();
        assert_eq!(
            (many.eos_token_id, many.do_sample, many.top_k),
            (vec![7, 9], Some(true), Some(50))
        );
        let none: GenerationConfig = serde_json::from_str(r#"{"eos_token_id": null}"#).unwrap();
        assert!(none.eos_token_id.is_empty());
        assert!(serde_json::from_str::<GenerationConfig>(r#"{"eos_token_id": "x"}"#).is_err());
    }
}
