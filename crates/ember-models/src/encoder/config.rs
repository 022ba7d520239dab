//! `config.json` of a BERT-family encoder → a strict [`EncoderConfig`]. What distinguishes the
//! families is data ([`EncoderFamily::spec`]): checkpoint prefixes and how position ids start.

use std::path::Path;

use serde::Deserialize;

use crate::config::Activation;
use crate::error::{ModelError, Result};

/// A supported encoder family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderFamily {
    /// `BertModel` (all-MiniLM, bge-small/base/large-en, e5, gte...).
    Bert,
    /// `XLMRobertaModel` (bge-m3, multilingual-e5) and `RobertaModel`.
    XlmRoberta,
}

/// `(architectures value, model_type, family)`.
const ENCODERS: [(&str, &str, EncoderFamily); 6] = [
    ("BertModel", "bert", EncoderFamily::Bert),
    ("BertForMaskedLM", "bert", EncoderFamily::Bert),
    ("XLMRobertaModel", "xlm-roberta", EncoderFamily::XlmRoberta),
    ("XLMRobertaForMaskedLM", "xlm-roberta", EncoderFamily::XlmRoberta),
    ("RobertaModel", "roberta", EncoderFamily::XlmRoberta),
    ("RobertaForMaskedLM", "roberta", EncoderFamily::XlmRoberta),
];

/// What a family changes in the shared encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderSpec {
    /// Prefixes the encoder's tensors may carry in a checkpoint, tried in order (sentence-
    /// transformers checkpoints usually have none; `*ForMaskedLM` ones have the base model's).
    pub weight_prefixes: &'static [&'static str],
    /// Position ids start at `pad_token_id + 1` and padding tokens get `pad_token_id`
    /// (fairseq's scheme, transformers' `create_position_ids_from_input_ids`); else 0, 1, 2...
    pub positions_after_padding_idx: bool,
}

impl EncoderFamily {
    /// The family named by `architectures` (or, when that names none, by `model_type`).
    pub fn detect(architectures: &[String], model_type: Option<&str>) -> Option<Self> {
        let by_arch = architectures.iter().find_map(|a| ENCODERS.iter().find(|(name, _, _)| name == a));
        let by_type = || {
            architectures
                .is_empty()
                .then(|| ENCODERS.iter().find(|(_, ty, _)| Some(*ty) == model_type))
                .flatten()
        };
        by_arch.or_else(by_type).map(|(_, _, family)| *family)
    }

    /// The supported `architectures` values, comma separated.
    pub fn supported() -> String {
        ENCODERS.map(|(name, _, _)| name).join(", ")
    }

    /// The family's switches.
    pub fn spec(self) -> EncoderSpec {
        match self {
            Self::Bert => EncoderSpec { weight_prefixes: &["", "bert."], positions_after_padding_idx: false },
            Self::XlmRoberta => {
                EncoderSpec { weight_prefixes: &["", "roberta.", "xlm_roberta."], positions_after_padding_idx: true }
            }
        }
    }
}

/// The `config.json` fields an encoder needs; unknown fields are ignored.
#[derive(Debug, Clone, Default, Deserialize)]
struct RawEncoderConfig {
    #[serde(default)]
    architectures: Vec<String>,
    model_type: Option<String>,
    vocab_size: Option<usize>,
    hidden_size: Option<usize>,
    num_hidden_layers: Option<usize>,
    num_attention_heads: Option<usize>,
    intermediate_size: Option<usize>,
    hidden_act: Option<String>,
    max_position_embeddings: Option<usize>,
    type_vocab_size: Option<usize>,
    layer_norm_eps: Option<f64>,
    pad_token_id: Option<u32>,
    position_embedding_type: Option<String>,
    torch_dtype: Option<String>,
    dtype: Option<String>,
}

/// A BERT-family encoder's architecture, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct EncoderConfig {
    /// The family.
    pub family: EncoderFamily,
    /// Rows of the word embedding.
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Attention heads.
    pub num_heads: usize,
    /// `hidden_size / num_heads`.
    pub head_dim: usize,
    /// FFN width.
    pub intermediate_size: usize,
    /// FFN activation.
    pub activation: Activation,
    /// Rows of the position embedding.
    pub max_position_embeddings: usize,
    /// Rows of the token-type embedding (2 for BERT, 1 for XLM-R).
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// `pad_token_id` (XLM-R's position ids start after it).
    pub pad_token_id: u32,
    /// dtype named by config.json (`torch_dtype` / `dtype`).
    pub checkpoint_dtype: Option<String>,
}

impl EncoderConfig {
    /// Reads `config.json`; `Ok(None)` when it does not describe a supported encoder.
    pub fn from_file(path: &Path) -> Result<Option<Self>> {
        let raw: RawEncoderConfig = ember_loader::read_json(path)?;
        match EncoderFamily::detect(&raw.architectures, raw.model_type.as_deref()) {
            Some(family) => Self::from_raw(&raw, family).map(Some),
            None => Ok(None),
        }
    }

    fn from_raw(raw: &RawEncoderConfig, family: EncoderFamily) -> Result<Self> {
        let hidden_size = required(raw.hidden_size, "hidden_size")?;
        let num_heads = required(raw.num_attention_heads, "num_attention_heads")?;
        if hidden_size % num_heads != 0 {
            return Err(invalid("num_attention_heads", format!("{num_heads} does not divide hidden_size {hidden_size}")));
        }
        if let Some(kind) = raw.position_embedding_type.as_deref().filter(|k| *k != "absolute") {
            return Err(ModelError::Unsupported(format!("position_embedding_type {kind:?} (only \"absolute\")")));
        }
        let activation = match raw.hidden_act.as_deref() {
            None => Activation::Gelu,
            Some(name) => crate::config::activation_from_hf(name)?,
        };
        let config = Self {
            family,
            vocab_size: required(raw.vocab_size, "vocab_size")?,
            hidden_size,
            num_layers: required(raw.num_hidden_layers, "num_hidden_layers")?,
            num_heads,
            head_dim: hidden_size / num_heads,
            intermediate_size: required(raw.intermediate_size, "intermediate_size")?,
            activation,
            max_position_embeddings: required(raw.max_position_embeddings, "max_position_embeddings")?,
            type_vocab_size: raw.type_vocab_size.unwrap_or(2),
            layer_norm_eps: raw.layer_norm_eps.unwrap_or(1e-12),
            pad_token_id: raw.pad_token_id.unwrap_or(if family == EncoderFamily::XlmRoberta { 1 } else { 0 }),
            checkpoint_dtype: raw.torch_dtype.clone().or_else(|| raw.dtype.clone()),
        };
        if config.type_vocab_size == 0 {
            return Err(invalid("type_vocab_size", "must be positive".into()));
        }
        if config.max_positions() == 0 {
            return Err(invalid("max_position_embeddings", format!("{} leaves no room after pad_token_id", config.max_position_embeddings)));
        }
        Ok(config)
    }

    /// The family's switches.
    pub fn spec(&self) -> EncoderSpec {
        self.family.spec()
    }

    /// The longest input the position table covers (XLM-R: `max_position_embeddings −
    /// pad_token_id − 1`, e.g. 514 → 512).
    pub fn max_positions(&self) -> usize {
        if self.spec().positions_after_padding_idx {
            self.max_position_embeddings.saturating_sub(self.pad_token_id as usize + 1)
        } else {
            self.max_position_embeddings
        }
    }

    /// Position ids of one sequence, as transformers computes them.
    pub fn position_ids(&self, token_ids: &[u32]) -> Vec<i64> {
        if !self.spec().positions_after_padding_idx {
            return (0..token_ids.len() as i64).collect();
        }
        let pad = self.pad_token_id;
        let mut seen = 0i64;
        token_ids
            .iter()
            .map(|&t| {
                if t == pad {
                    pad as i64
                } else {
                    seen += 1;
                    pad as i64 + seen
                }
            })
            .collect()
    }
}

fn required(value: Option<usize>, field: &'static str) -> Result<usize> {
    match value {
        Some(v) if v > 0 => Ok(v),
        Some(_) => Err(invalid(field, "must be positive".into())),
        None => Err(invalid(field, "missing".into())),
    }
}

fn invalid(field: &'static str, reason: String) -> ModelError {
    ModelError::InvalidConfig { field, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> RawEncoderConfig {
        serde_json::from_str(json).unwrap()
    }

    const BASE: &str = r#""hidden_size": 64, "num_attention_heads": 4, "num_hidden_layers": 2,
        "intermediate_size": 128, "vocab_size": 100, "max_position_embeddings": 66"#;

    #[test]
    fn detects_families_by_architecture_then_model_type() {
        assert_eq!(EncoderFamily::detect(&["BertModel".into()], None), Some(EncoderFamily::Bert));
        assert_eq!(EncoderFamily::detect(&["XLMRobertaModel".into()], Some("bert")), Some(EncoderFamily::XlmRoberta));
        assert_eq!(EncoderFamily::detect(&[], Some("xlm-roberta")), Some(EncoderFamily::XlmRoberta));
        assert_eq!(EncoderFamily::detect(&["Qwen3ForCausalLM".into()], Some("qwen3")), None);
    }

    #[test]
    fn xlm_roberta_positions_start_after_padding_idx() {
        let c = EncoderConfig::from_raw(&raw(&format!("{{{BASE}, \"pad_token_id\": 1}}")), EncoderFamily::XlmRoberta).unwrap();
        assert_eq!(c.max_positions(), 64);
        assert_eq!(c.position_ids(&[0, 7, 1, 9]), vec![2, 3, 1, 4]);
        let b = EncoderConfig::from_raw(&raw(&format!("{{{BASE}}}")), EncoderFamily::Bert).unwrap();
        assert_eq!((b.max_positions(), b.position_ids(&[101, 0, 102])), (66, vec![0, 1, 2]));
        assert_eq!((b.type_vocab_size, b.layer_norm_eps, b.activation), (2, 1e-12, Activation::Gelu));
    }

    #[test]
    fn rejects_what_it_cannot_run_naming_the_field() {
        let err = EncoderConfig::from_raw(&raw(r#"{"hidden_size": 64}"#), EncoderFamily::Bert).unwrap_err();
        assert!(err.to_string().contains("num_attention_heads"), "{err}");
        let rel = format!("{{{BASE}, \"position_embedding_type\": \"relative_key\"}}");
        let err = EncoderConfig::from_raw(&raw(&rel), EncoderFamily::Bert).unwrap_err();
        assert!(err.to_string().contains("relative_key"), "{err}");
    }
}
