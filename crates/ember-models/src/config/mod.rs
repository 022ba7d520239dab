//! The strict, normalised model configuration every layer reads, built from `config.json`.
//!
//! [`RawHfConfig`] accepts whatever Hugging Face wrote; [`ModelConfig::from_raw`] resolves
//! family defaults, both config styles and per-layer attention windows, and rejects what Ember
//! cannot run with an error naming the field.

mod family;
mod raw;
mod rope;

pub use family::{Activation, ArchSpec, Family, NormStyle, activation_from_hf};
pub use raw::{OneOrMany, RawHfConfig};
pub use rope::{RopeConfig, RopeScaling};

use std::path::Path;

use crate::error::{ModelError, Result};

/// A model's architecture, resolved and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    /// The family (from `architectures`).
    pub family: Family,
    /// The family's switches.
    pub spec: ArchSpec,
    /// Model width.
    pub hidden_size: usize,
    /// MLP width.
    pub intermediate_size: usize,
    /// Decoder layers.
    pub num_layers: usize,
    /// Query heads.
    pub num_heads: usize,
    /// Key/value heads.
    pub num_kv_heads: usize,
    /// Size of each head.
    pub head_dim: usize,
    /// Rows of the embedding / LM head (may exceed the tokenizer's vocabulary).
    pub vocab_size: usize,
    /// Longest position the model supports (the default `max_model_len`).
    pub max_position_embeddings: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary embedding settings.
    pub rope: RopeConfig,
    /// LM head shares the embedding matrix.
    pub tie_word_embeddings: bool,
    /// q/k/v projections have biases.
    pub qkv_bias: bool,
    /// o_proj has a bias.
    pub o_bias: bool,
    /// MLP projections have biases.
    pub mlp_bias: bool,
    /// MLP activation.
    pub activation: Activation,
    /// Sliding window of each layer (`None` = full attention).
    pub layer_windows: Vec<Option<usize>>,
    /// Attention logit soft-capping (Gemma2).
    pub attn_logit_softcap: Option<f32>,
    /// Final logit soft-capping (Gemma2).
    pub final_logit_softcap: Option<f32>,
    /// Softmax scale applied to `q·k`.
    pub attn_scale: f32,
    /// dtype named by config.json (`torch_dtype` / `dtype`), e.g. "bfloat16".
    pub checkpoint_dtype: Option<String>,
    /// `bos_token_id`.
    pub bos_token_id: Option<u32>,
    /// `eos_token_id` (one or several).
    pub eos_token_ids: Vec<u32>,
}

impl ModelConfig {
    /// Reads and normalises a `config.json` file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let raw: RawHfConfig = ember_loader::read_json(path)?;
        Self::from_raw(&raw)
    }

    /// Normalises a raw config (see module docs).
    pub fn from_raw(raw: &RawHfConfig) -> Result<Self> {
        let family = Family::from_architectures(&raw.architectures)?;
        let spec = family.spec();
        let hidden_size = required(raw.hidden_size, "hidden_size")?;
        let num_heads = required(raw.num_attention_heads, "num_attention_heads")?;
        let num_layers = required(raw.num_hidden_layers, "num_hidden_layers")?;
        let num_kv_heads = raw.num_key_value_heads.unwrap_or(num_heads);
        if num_kv_heads == 0 || num_heads % num_kv_heads != 0 {
            return Err(invalid("num_key_value_heads", format!("{num_kv_heads} does not divide num_attention_heads {num_heads}")));
        }
        let head_dim = match raw.head_dim {
            Some(d) => d,
            None if hidden_size % num_heads == 0 => hidden_size / num_heads,
            None => return Err(invalid("head_dim", format!("absent, and hidden_size {hidden_size} is not a multiple of {num_heads} heads"))),
        };
        if head_dim % 2 != 0 {
            return Err(invalid("head_dim", format!("{head_dim} is odd; rotary embeddings need an even size")));
        }

        let act_name = if spec.reads_hidden_activation { raw.hidden_activation.as_deref() } else { raw.hidden_act.as_deref() };
        let activation = act_name.map(activation_from_hf).transpose()?.unwrap_or(spec.default_activation);
        let attention_bias = raw.attention_bias.unwrap_or(false);
        let (qkv_bias, o_bias) = if spec.always_qkv_bias { (true, false) } else { (attention_bias, attention_bias) };

        let layer_windows = layer_windows(raw, family, num_layers)?;
        let attn_scale = match family {
            Family::Gemma2 => {
                let scalar = raw.query_pre_attn_scalar.unwrap_or(head_dim as f64);
                (scalar as f32).powf(-0.5)
            }
            _ => (head_dim as f32).powf(-0.5),
        };
        let softcap = |v: Option<f64>| v.filter(|c| *c > 0.0).map(|c| c as f32);

        let config = Self {
            family,
            spec,
            hidden_size,
            intermediate_size: required(raw.intermediate_size, "intermediate_size")?,
            num_layers,
            num_heads,
            num_kv_heads,
            head_dim,
            vocab_size: required(raw.vocab_size, "vocab_size")?,
            max_position_embeddings: required(raw.max_position_embeddings, "max_position_embeddings")?,
            rms_norm_eps: raw.rms_norm_eps.unwrap_or(1e-6),
            rope: RopeConfig::from_hf(raw.rope_theta, raw.rope_scaling.as_ref(), raw.rope_parameters.as_ref(), 10_000.0)?,
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(spec.default_tie_embeddings),
            qkv_bias,
            o_bias,
            mlp_bias: raw.mlp_bias.unwrap_or(false),
            activation,
            layer_windows,
            attn_logit_softcap: if family == Family::Gemma2 { softcap(raw.attn_logit_softcapping) } else { None },
            final_logit_softcap: if family == Family::Gemma2 { softcap(raw.final_logit_softcapping) } else { None },
            attn_scale,
            checkpoint_dtype: raw.torch_dtype.clone().or_else(|| raw.dtype.clone()),
            bos_token_id: raw.bos_token_id.as_ref().and_then(|b| b.to_vec().first().copied()),
            eos_token_ids: raw.eos_token_id.as_ref().map(OneOrMany::to_vec).unwrap_or_default(),
        };
        Ok(config)
    }

    /// The distinct sliding windows used by the layers (`None` for full attention).
    pub fn distinct_windows(&self) -> Vec<Option<usize>> {
        let mut windows = Vec::new();
        for w in &self.layer_windows {
            if !windows.contains(w) {
                windows.push(*w);
            }
        }
        windows
    }
}

fn layer_windows(raw: &RawHfConfig, family: Family, num_layers: usize) -> Result<Vec<Option<usize>>> {
    let window = || {
        raw.sliding_window
            .ok_or_else(|| invalid("sliding_window", "sliding_attention layers need a sliding_window".into()))
    };
    if let Some(types) = &raw.layer_types {
        if types.len() != num_layers {
            return Err(invalid("layer_types", format!("has {} entries for {num_layers} layers", types.len())));
        }
        return types
            .iter()
            .map(|t| match t.as_str() {
                "full_attention" => Ok(None),
                "sliding_attention" => window().map(Some),
                other => Err(ModelError::Unsupported(format!("layer type {other:?}"))),
            })
            .collect();
    }
    Ok(match family {
        Family::Mistral => vec![raw.sliding_window; num_layers],
        Family::Qwen2 | Family::Qwen3 if raw.use_sliding_window.unwrap_or(false) => {
            let first = raw.max_window_layers.unwrap_or(num_layers);
            (0..num_layers).map(|i| if i >= first { raw.sliding_window } else { None }).collect()
        }
        Family::Gemma2 => {
            let w = window()?;
            (0..num_layers).map(|i| (i % 2 == 0).then_some(w)).collect()
        }
        _ => vec![None; num_layers],
    })
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
mod tests;
