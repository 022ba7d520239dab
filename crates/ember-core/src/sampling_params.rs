//! [`SamplingParams`]: how one request's tokens are chosen and when generation stops.
//!
//! Field names and defaults follow vLLM's `SamplingParams` (which follow the OpenAI API), so the
//! server maps request JSON onto it field by field. `validate` is the single place where ranges
//! are checked; a value that passed `validate` never makes the sampler or the scheduler fail.
//! Model-specific defaults (`generation_config.json`) are layered in by
//! [`SamplingParams::with_generation_defaults`] (see [`crate::GenerationDefaults`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::ids::TokenId;

/// Temperatures below this are treated as greedy decoding (vLLM's `_SAMPLING_EPS`).
pub const GREEDY_TEMPERATURE_EPS: f32 = 1e-5;

/// Largest magnitude accepted for one `logit_bias` entry (OpenAI's documented range).
pub const MAX_ABS_LOGIT_BIAS: f32 = 100.0;

/// Per-request sampling and stopping parameters.
///
/// Deserializing fills every missing field with the default documented on it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SamplingParams {
    /// Number of completions returned for the prompt. Default 1. The engine fans `n > 1` out into
    /// `n` child requests (see [`crate::fan_out`]).
    pub n: usize,
    /// Number of completions generated before the best `n` are kept; `None` (default) means `n`.
    /// Accepted and validated for API compatibility; the core schedules `n` children only.
    pub best_of: Option<usize>,
    /// Softmax temperature; `0` (or anything below 1e-5) means greedy. Default 1.0.
    pub temperature: f32,
    /// Nucleus sampling: keep the smallest set of tokens whose probability reaches `top_p`.
    /// In `(0, 1]`; default 1.0 (disabled).
    pub top_p: f32,
    /// Keep only the `top_k` most likely tokens; `0` or `-1` disables it (default 0).
    /// Read it through [`SamplingParams::top_k`].
    pub top_k: i32,
    /// Drop tokens whose probability is below `min_p` times the top token's. In `[0, 1]`;
    /// default 0.0 (disabled).
    pub min_p: f32,
    /// Penalty subtracted once from the logit of every token already generated. In `[-2, 2]`;
    /// default 0.0.
    pub presence_penalty: f32,
    /// Penalty subtracted from a token's logit per time it was generated. In `[-2, 2]`;
    /// default 0.0.
    pub frequency_penalty: f32,
    /// Multiplicative penalty on tokens seen in the prompt or output (> 1 discourages repeats).
    /// Must be > 0; default 1.0 (disabled).
    pub repetition_penalty: f32,
    /// Added to the logits of the given token ids before sampling; each value in `[-100, 100]`.
    /// Default empty.
    pub logit_bias: BTreeMap<TokenId, f32>,
    /// Minimum number of generated tokens before EOS or `stop_token_ids` may end the request.
    /// Default 0.
    pub min_tokens: usize,
    /// Maximum number of generated tokens; `None` (default) means up to the context length.
    pub max_tokens: Option<usize>,
    /// Keep generating after the model's EOS token. Default false.
    pub ignore_eos: bool,
    /// Strings that end generation when they appear in the output text (checked by the engine's
    /// detokenizer, not the scheduler). Default empty.
    pub stop: Vec<String>,
    /// Token ids that end generation (after `min_tokens`), reported as the stop reason.
    /// Default empty.
    pub stop_token_ids: Vec<TokenId>,
    /// Keep the matched stop string in the returned text. Default false.
    pub include_stop_str_in_output: bool,
    /// Seed of the request's private random generator; `None` (default) uses the engine's.
    pub seed: Option<u64>,
    /// Number of top log-probabilities returned per generated token; `None` (default) returns
    /// none. The limit is checked by the engine.
    pub logprobs: Option<usize>,
    /// Number of top log-probabilities returned per prompt token; `None` (default) returns none.
    /// Requests asking for them skip the prefix cache (every prompt position must be computed).
    pub prompt_logprobs: Option<usize>,
    /// Drop special tokens from the detokenized text. Default true.
    pub skip_special_tokens: bool,
    /// Put spaces between special tokens in the detokenized text. Default true.
    pub spaces_between_special_tokens: bool,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            n: 1,
            best_of: None,
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            min_p: 0.0,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            repetition_penalty: 1.0,
            logit_bias: BTreeMap::new(),
            min_tokens: 0,
            max_tokens: None,
            ignore_eos: false,
            stop: Vec::new(),
            stop_token_ids: Vec::new(),
            include_stop_str_in_output: false,
            seed: None,
            logprobs: None,
            prompt_logprobs: None,
            skip_special_tokens: true,
            spaces_between_special_tokens: true,
        }
    }
}

fn invalid(field: &'static str, reason: String) -> CoreError {
    CoreError::InvalidSamplingParams { field, reason }
}

impl SamplingParams {
    /// Greedy decoding (temperature 0), every other field at its default.
    pub fn greedy() -> Self {
        Self {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Whether sampling reduces to argmax (`temperature < 1e-5`, like vLLM).
    pub fn is_greedy(&self) -> bool {
        self.temperature < GREEDY_TEMPERATURE_EPS
    }

    /// `top_k` as an option: `None` when disabled (`0` or `-1`).
    pub fn top_k(&self) -> Option<usize> {
        usize::try_from(self.top_k).ok().filter(|&k| k > 0)
    }

    /// Checks every range documented on the fields; the error names the first bad field.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.n < 1 {
            return Err(invalid("n", format!("must be at least 1, got {}", self.n)));
        }
        if let Some(best_of) = self.best_of
            && best_of < self.n
        {
            return Err(invalid(
                "best_of",
                format!(
                    "must be greater than or equal to n ({}), got {best_of}",
                    self.n
                ),
            ));
        }
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(invalid(
                "temperature",
                format!("must be a finite number >= 0, got {}", self.temperature),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(invalid(
                "top_p",
                format!("must be in (0, 1], got {}", self.top_p),
            ));
        }
        if self.top_k < -1 {
            return Err(invalid(
                "top_k",
                format!(
                    "must be -1 or 0 (disabled) or a positive count, got {}",
                    self.top_k
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return Err(invalid(
                "min_p",
                format!("must be in [0, 1], got {}", self.min_p),
            ));
        }
        if !(-2.0..=2.0).contains(&self.presence_penalty) {
            return Err(invalid(
                "presence_penalty",
                format!("must be in [-2, 2], got {}", self.presence_penalty),
            ));
        }
        if !(-2.0..=2.0).contains(&self.frequency_penalty) {
            return Err(invalid(
                "frequency_penalty",
                format!("must be in [-2, 2], got {}", self.frequency_penalty),
            ));
        }
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(invalid(
                "repetition_penalty",
                format!(
                    "must be a finite number > 0, got {}",
                    self.repetition_penalty
                ),
            ));
        }
        if let Some((token, bias)) = self
            .logit_bias
            .iter()
            .find(|(_, b)| b.is_nan() || b.abs() > MAX_ABS_LOGIT_BIAS)
        {
            return Err(invalid(
                "logit_bias",
                format!("values must be in [-100, 100], got {bias} for token {token}"),
            ));
        }
        if let Some(max_tokens) = self.max_tokens {
            if max_tokens < 1 {
                return Err(invalid(
                    "max_tokens",
                    format!("must be at least 1, got {max_tokens}"),
                ));
            }
            if self.min_tokens > max_tokens {
                return Err(invalid(
                    "min_tokens",
                    format!(
                        "must be less than or equal to max_tokens ({max_tokens}), got {}",
                        self.min_tokens
                    ),
                ));
            }
        }
        if self.stop.iter().any(String::is_empty) {
            return Err(invalid(
                "stop",
                "must not contain an empty string".to_string(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field_of(params: &SamplingParams) -> Option<&'static str> {
        match params.validate() {
            Err(CoreError::InvalidSamplingParams { field, .. }) => Some(field),
            Err(other) => panic!("unexpected error {other}"),
            Ok(()) => None,
        }
    }

    #[test]
    fn defaults_match_vllm() {
        let p = SamplingParams::default();
        assert_eq!(p.n, 1);
        assert_eq!(p.temperature, 1.0);
        assert_eq!(p.top_p, 1.0);
        assert_eq!(p.top_k(), None);
        assert_eq!(p.repetition_penalty, 1.0);
        assert!(p.skip_special_tokens && p.spaces_between_special_tokens);
        assert!(!p.is_greedy());
        assert!(SamplingParams::greedy().is_greedy());
        assert_eq!(field_of(&p), None);
    }

    #[test]
    fn top_k_normalization() {
        for (raw, expected) in [(-1, None), (0, None), (1, Some(1)), (50, Some(50))] {
            let p = SamplingParams {
                top_k: raw,
                ..Default::default()
            };
            assert_eq!(p.top_k(), expected, "top_k={raw}");
            assert_eq!(field_of(&p), None);
        }
        assert_eq!(
            field_of(&SamplingParams {
                top_k: -2,
                ..Default::default()
            }),
            Some("top_k")
        );
    }

    #[test]
    fn each_bad_field_is_named() {
        let d = SamplingParams::default;
        let cases: Vec<(SamplingParams, &str)> = vec![
            (SamplingParams { n: 0, ..d() }, "n"),
            (
                SamplingParams {
                    n: 3,
                    best_of: Some(2),
                    ..d()
                },
                "best_of",
            ),
            (
                SamplingParams {
                    temperature: -0.1,
                    ..d()
                },
                "temperature",
            ),
            (
                SamplingParams {
                    temperature: f32::NAN,
                    ..d()
                },
                "temperature",
            ),
            (SamplingParams { top_p: 0.0, ..d() }, "top_p"),
            (SamplingParams { top_p: 1.01, ..d() }, "top_p"),
            (SamplingParams { min_p: 1.5, ..d() }, "min_p"),
            (
                SamplingParams {
                    presence_penalty: 2.5,
                    ..d()
                },
                "presence_penalty",
            ),
            (
                SamplingParams {
                    frequency_penalty: -2.5,
                    ..d()
                },
                "frequency_penalty",
            ),
            (
                SamplingParams {
                    repetition_penalty: 0.0,
                    ..d()
                },
                "repetition_penalty",
            ),
            (
                SamplingParams {
                    max_tokens: Some(0),
                    ..d()
                },
                "max_tokens",
            ),
            (
                SamplingParams {
                    max_tokens: Some(4),
                    min_tokens: 5,
                    ..d()
                },
                "min_tokens",
            ),
            (
                SamplingParams {
                    stop: vec![String::new()],
                    ..d()
                },
                "stop",
            ),
            (
                SamplingParams {
                    logit_bias: BTreeMap::from([(7, 101.0)]),
                    ..d()
                },
                "logit_bias",
            ),
        ];
        for (params, field) in cases {
            assert_eq!(field_of(&params), Some(field), "{params:?}");
        }
    }

    #[test]
    fn greedy_threshold() {
        assert!(
            SamplingParams {
                temperature: 9e-6,
                ..Default::default()
            }
            .is_greedy()
        );
        assert!(
            !SamplingParams {
                temperature: 1e-4,
                ..Default::default()
            }
            .is_greedy()
        );
    }
}
