//! Layering of model defaults (`generation_config.json`) under user-supplied sampling values.
//!
//! Precedence for each field a model may default: the user's value, else the model's
//! `generation_config.json` value, else the value already in [`SamplingParams`] (its default). Only the
//! six fields vLLM reads from `generation_config.json` take part; every other field is set by
//! the caller directly on `SamplingParams`. `do_sample` is ignored, as in vLLM.

use serde::{Deserialize, Serialize};

use crate::sampling_params::SamplingParams;

/// The sampling defaults a model ships in `generation_config.json`; every field optional.
///
/// Deserializes straight from that file (unknown keys are ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GenerationDefaults {
    /// Model's default temperature; `None` when the file does not set it.
    pub temperature: Option<f32>,
    /// Model's default `top_p`.
    pub top_p: Option<f32>,
    /// Model's default `top_k` (0 or -1 = disabled).
    pub top_k: Option<i32>,
    /// Model's default `min_p`.
    pub min_p: Option<f32>,
    /// Model's default `repetition_penalty`.
    pub repetition_penalty: Option<f32>,
    /// Model's default cap on generated tokens (becomes `max_tokens`).
    pub max_new_tokens: Option<usize>,
}

/// The values the user explicitly set for the fields a model may default; `None` = not set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingOverrides {
    /// User's temperature.
    pub temperature: Option<f32>,
    /// User's `top_p`.
    pub top_p: Option<f32>,
    /// User's `top_k`.
    pub top_k: Option<i32>,
    /// User's `min_p`.
    pub min_p: Option<f32>,
    /// User's `repetition_penalty`.
    pub repetition_penalty: Option<f32>,
    /// User's `max_tokens` (OpenAI's `max_tokens` / `max_completion_tokens`).
    pub max_tokens: Option<usize>,
}

impl SamplingParams {
    /// Sets the six model-defaultable fields from `user`, else `defaults`, else keeps `self`'s
    /// value (normally the [`SamplingParams::default`] one); every other field is kept as is.
    pub fn with_generation_defaults(
        self,
        defaults: &GenerationDefaults,
        user: &SamplingOverrides,
    ) -> Self {
        Self {
            temperature: user
                .temperature
                .or(defaults.temperature)
                .unwrap_or(self.temperature),
            top_p: user.top_p.or(defaults.top_p).unwrap_or(self.top_p),
            top_k: user.top_k.or(defaults.top_k).unwrap_or(self.top_k),
            min_p: user.min_p.or(defaults.min_p).unwrap_or(self.min_p),
            repetition_penalty: user
                .repetition_penalty
                .or(defaults.repetition_penalty)
                .unwrap_or(self.repetition_penalty),
            max_tokens: user
                .max_tokens
                .or(defaults.max_new_tokens)
                .or(self.max_tokens),
            ..self
        }
    }

    /// `SamplingParams::default()` with the model defaults and user values layered on top.
    pub fn from_overrides(defaults: &GenerationDefaults, user: &SamplingOverrides) -> Self {
        SamplingParams::default().with_generation_defaults(defaults, user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_beats_model_beats_openai_default() {
        let defaults = GenerationDefaults {
            temperature: Some(0.6),
            top_p: Some(0.9),
            top_k: Some(20),
            max_new_tokens: Some(512),
            ..Default::default()
        };
        let user = SamplingOverrides {
            temperature: Some(0.0),
            ..Default::default()
        };
        let p = SamplingParams::from_overrides(&defaults, &user);
        assert_eq!(p.temperature, 0.0);
        assert_eq!(p.top_p, 0.9);
        assert_eq!(p.top_k(), Some(20));
        assert_eq!(p.min_p, 0.0);
        assert_eq!(p.repetition_penalty, 1.0);
        assert_eq!(p.max_tokens, Some(512));
    }

    #[test]
    fn other_fields_are_kept() {
        let base = SamplingParams {
            n: 3,
            seed: Some(7),
            max_tokens: Some(9),
            ..Default::default()
        };
        let p = base.with_generation_defaults(&GenerationDefaults::default(), &Default::default());
        assert_eq!(p.n, 3);
        assert_eq!(p.seed, Some(7));
        // Unset by user and model: the caller's own value survives.
        assert_eq!(p.max_tokens, Some(9));
        let none =
            SamplingParams::from_overrides(&GenerationDefaults::default(), &Default::default());
        assert_eq!(none.max_tokens, None);
    }
}
