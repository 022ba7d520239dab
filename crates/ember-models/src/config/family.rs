//! The supported model families and what distinguishes them, as data.
//!
//! All families share one decoder skeleton (`crate::decoder`); an [`ArchSpec`] says which
//! optional pieces a family switches on. Adding a Llama-like family is a new row here, not a
//! new model file.

pub use ember_kernels::{Activation, NormStyle};

use crate::error::{ModelError, Result};

/// A supported `architectures` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `LlamaForCausalLM` (Llama 2 and 3).
    Llama,
    /// `MistralForCausalLM`.
    Mistral,
    /// `Qwen2ForCausalLM`.
    Qwen2,
    /// `Qwen3ForCausalLM`.
    Qwen3,
    /// `GemmaForCausalLM`.
    Gemma,
    /// `Gemma2ForCausalLM`.
    Gemma2,
}

const FAMILIES: [(&str, Family); 6] = [
    ("LlamaForCausalLM", Family::Llama),
    ("MistralForCausalLM", Family::Mistral),
    ("Qwen2ForCausalLM", Family::Qwen2),
    ("Qwen3ForCausalLM", Family::Qwen3),
    ("GemmaForCausalLM", Family::Gemma),
    ("Gemma2ForCausalLM", Family::Gemma2),
];

/// Parses a transformers activation name (`hidden_act` / `hidden_activation`).
pub fn activation_from_hf(name: &str) -> Result<Activation> {
    match name {
        "silu" | "swish" => Ok(Activation::Silu),
        "gelu_pytorch_tanh" | "gelu_new" | "gelu_fast" => Ok(Activation::GeluTanh),
        "gelu" => Ok(Activation::Gelu),
        other => Err(ModelError::Unsupported(format!("activation {other:?}"))),
    }
}

/// What a family switches on in the shared decoder skeleton.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArchSpec {
    /// RMSNorm weight style.
    pub norm: NormStyle,
    /// Multiply embeddings by `sqrt(hidden_size)` (Gemma).
    pub scale_embeddings: bool,
    /// RMSNorm over each head of q and k before RoPE (Qwen3).
    pub qk_norm: bool,
    /// Gemma2's extra norms: after attention, and before/after the MLP.
    pub sandwich_norms: bool,
    /// Qwen2's fixed biases: q/k/v always have one and o_proj never, whatever
    /// `attention_bias` says. Otherwise `attention_bias` (default false) applies to q/k/v/o.
    pub always_qkv_bias: bool,
    /// Activation when config.json names none.
    pub default_activation: Activation,
    /// Whether the family reads `hidden_activation` (Gemma) rather than `hidden_act`.
    pub reads_hidden_activation: bool,
    /// Default `tie_word_embeddings`.
    pub default_tie_embeddings: bool,
}

impl Family {
    /// Finds the family named by config.json's `architectures`.
    pub fn from_architectures(architectures: &[String]) -> Result<Self> {
        architectures
            .iter()
            .find_map(|a| FAMILIES.iter().find(|(name, _)| name == a).map(|(_, f)| *f))
            .ok_or_else(|| ModelError::UnsupportedArchitecture {
                found: architectures.to_vec(),
                supported: FAMILIES.map(|(name, _)| name).join(", "),
            })
    }

    /// The family's `architectures` name.
    pub fn name(self) -> &'static str {
        FAMILIES.iter().find(|(_, f)| *f == self).map(|(n, _)| *n).unwrap_or("?")
    }

    /// The family's switches.
    pub fn spec(self) -> ArchSpec {
        let llama = ArchSpec {
            norm: NormStyle::Weight,
            scale_embeddings: false,
            qk_norm: false,
            sandwich_norms: false,
            always_qkv_bias: false,
            default_activation: Activation::Silu,
            reads_hidden_activation: false,
            default_tie_embeddings: false,
        };
        let gemma = ArchSpec {
            norm: NormStyle::OnePlusWeight,
            scale_embeddings: true,
            default_activation: Activation::GeluTanh,
            reads_hidden_activation: true,
            default_tie_embeddings: true,
            ..llama
        };
        match self {
            Family::Llama | Family::Mistral => llama,
            Family::Qwen2 => ArchSpec { always_qkv_bias: true, ..llama },
            Family::Qwen3 => ArchSpec { qk_norm: true, ..llama },
            Family::Gemma => gemma,
            Family::Gemma2 => ArchSpec { sandwich_norms: true, ..gemma },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_architecture_lists_supported_ones() {
        let err = Family::from_architectures(&["PhiForCausalLM".into()]).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("PhiForCausalLM") && msg.contains("Gemma2ForCausalLM"), "{msg}");
    }

    #[test]
    fn finds_family_by_name() {
        let f = Family::from_architectures(&["Qwen3ForCausalLM".into()]).unwrap();
        assert_eq!(f, Family::Qwen3);
        assert!(f.spec().qk_norm);
    }
}
