//! The sampling fields both generation endpoints accept (OpenAI's plus vLLM's extras), and
//! their conversion into the engine's [`SamplingParams`]: defaults layered as vLLM does
//! (request, then the model's `generation_config.json`, then OpenAI's), ranges checked with
//! errors naming the field, and the fields vLLM has but Ember does not yet support rejected
//! instead of silently ignored.

use std::collections::BTreeMap;

use ember_core::{CoreError, GenerationDefaults, SamplingOverrides, SamplingParams};
use serde::Deserialize;
use serde_json::Value;

use crate::error::ApiError;
use crate::protocol::common::StopField;

/// Sampling and stopping fields, parsed from the same body as the endpoint's own request type.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct SamplingFields {
    /// Choices per prompt.
    pub n: Option<i64>,
    /// Samples generated per prompt, of which the `n` most likely are returned.
    pub best_of: Option<i64>,
    /// Softmax temperature (0 = greedy).
    pub temperature: Option<f32>,
    /// Nucleus sampling mass, in (0, 1].
    pub top_p: Option<f32>,
    /// Top-k (0 or -1 = off).
    pub top_k: Option<i32>,
    /// Min-p, in [0, 1].
    pub min_p: Option<f32>,
    /// In [-2, 2].
    pub presence_penalty: Option<f32>,
    /// In [-2, 2].
    pub frequency_penalty: Option<f32>,
    /// > 0 (1 = off).
    pub repetition_penalty: Option<f32>,
    /// Stop strings.
    pub stop: Option<StopField>,
    /// Stop token ids.
    pub stop_token_ids: Option<Vec<u32>>,
    /// Keep the matched stop string in the text.
    pub include_stop_str_in_output: Option<bool>,
    /// Per-request seed.
    pub seed: Option<i64>,
    /// Top logprobs per prompt token.
    pub prompt_logprobs: Option<i64>,
    /// Token id (as a string key) -> bias in [-100, 100].
    pub logit_bias: Option<BTreeMap<String, f32>>,
    /// Tokens generated before EOS / stop ids may end the request.
    pub min_tokens: Option<i64>,
    /// Keep generating after EOS.
    pub ignore_eos: Option<bool>,
    /// Drop special tokens from the text (default true).
    pub skip_special_tokens: Option<bool>,
    /// Spaces between special tokens (default true).
    pub spaces_between_special_tokens: Option<bool>,
    /// Render logprob tokens as `token_id:N`.
    pub return_tokens_as_token_ids: Option<bool>,
    /// Not supported (beam search).
    pub use_beam_search: Option<bool>,
    /// Not supported yet.
    pub allowed_token_ids: Option<Value>,
    /// Not supported yet.
    pub bad_words: Option<Value>,
    /// Not supported yet.
    pub truncate_prompt_tokens: Option<Value>,
    /// Only `{"type": "text"}` is supported.
    pub response_format: Option<Value>,
    /// Not supported yet (structured outputs).
    pub guided_json: Option<Value>,
    /// Not supported yet (structured outputs).
    pub guided_regex: Option<Value>,
    /// Not supported yet (structured outputs).
    pub guided_choice: Option<Value>,
    /// Not supported yet (structured outputs).
    pub guided_grammar: Option<Value>,
}

/// What the endpoint decided before the sampling fields are applied.
#[derive(Debug, Clone, Copy, Default)]
pub struct EndpointLimits {
    /// The request's `max_tokens` after the endpoint's own default and the context cap.
    pub max_tokens: usize,
    /// Top logprobs per generated token, when asked for.
    pub logprobs: Option<usize>,
    /// `--max-logprobs`.
    pub max_logprobs: usize,
    /// Rows of the LM head (valid token ids are below it).
    pub vocab_size: usize,
}

impl SamplingFields {
    /// Rejects the fields Ember accepts for compatibility but cannot honour yet.
    pub fn check_supported(&self) -> Result<(), ApiError> {
        if self.use_beam_search == Some(true) {
            return Err(ApiError::Unsupported("use_beam_search is not supported yet".into()));
        }
        let unsupported = [
            ("allowed_token_ids", &self.allowed_token_ids),
            ("bad_words", &self.bad_words),
            ("truncate_prompt_tokens", &self.truncate_prompt_tokens),
            ("guided_json", &self.guided_json),
            ("guided_regex", &self.guided_regex),
            ("guided_choice", &self.guided_choice),
            ("guided_grammar", &self.guided_grammar),
        ];
        for (name, value) in unsupported {
            if value.as_ref().is_some_and(|v| !v.is_null()) {
                return Err(ApiError::Unsupported(format!("`{name}` is not supported yet")));
            }
        }
        if let Some(format) = self.response_format.as_ref().filter(|v| !v.is_null()) {
            let kind = format.get("type").and_then(Value::as_str).unwrap_or("");
            if kind != "text" {
                return Err(ApiError::Unsupported(format!(
                    "response_format {{\"type\": {kind:?}}} is not supported yet (structured outputs); only \"text\" is"
                )));
            }
        }
        Ok(())
    }

    /// `n`, checked (default 1).
    pub fn n(&self) -> Result<usize, ApiError> {
        positive("n", self.n.unwrap_or(1))
    }

    /// Whether logprob tokens are rendered as `token_id:N`.
    pub fn tokens_as_ids(&self, server_default: bool) -> bool {
        self.return_tokens_as_token_ids.unwrap_or(server_default)
    }

    /// The engine parameters: `defaults` is the model's generation config, `limits` what the
    /// endpoint resolved. Every range is checked here, so the engine never rejects them later.
    pub fn to_params(&self, defaults: &GenerationDefaults, limits: &EndpointLimits) -> Result<SamplingParams, ApiError> {
        self.check_supported()?;
        let user = SamplingOverrides {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            max_tokens: Some(limits.max_tokens),
        };
        let mut params = SamplingParams::from_overrides(defaults, &user);
        params.max_tokens = Some(limits.max_tokens);
        params.n = self.n()?;
        params.best_of = self.best_of.map(|b| positive("best_of", b)).transpose()?;
        params.presence_penalty = self.presence_penalty.unwrap_or(0.0);
        params.frequency_penalty = self.frequency_penalty.unwrap_or(0.0);
        params.stop = self.stop.clone().map(StopField::into_vec).unwrap_or_default();
        params.stop_token_ids = self.stop_token_ids.clone().unwrap_or_default();
        params.include_stop_str_in_output = self.include_stop_str_in_output.unwrap_or(false);
        params.seed = self.seed.map(|s| s as u64);
        params.min_tokens = non_negative("min_tokens", self.min_tokens.unwrap_or(0))?;
        params.ignore_eos = self.ignore_eos.unwrap_or(false);
        params.skip_special_tokens = self.skip_special_tokens.unwrap_or(true);
        params.spaces_between_special_tokens = self.spaces_between_special_tokens.unwrap_or(true);
        params.logprobs = limits.logprobs;
        params.prompt_logprobs = match self.prompt_logprobs {
            None => None,
            // vLLM: -1 means the whole vocabulary, which is above any sane --max-logprobs.
            Some(-1) => Some(limits.vocab_size),
            Some(k) => Some(non_negative("prompt_logprobs", k)?),
        };
        check_logprobs_limit("logprobs", params.logprobs, limits.max_logprobs)?;
        check_logprobs_limit("prompt_logprobs", params.prompt_logprobs, limits.max_logprobs)?;
        params.logit_bias = self.logit_bias(limits.vocab_size)?;
        if let Some(bad) = params.stop_token_ids.iter().find(|&&t| t as usize >= limits.vocab_size) {
            return Err(ApiError::field("stop_token_ids", format!("token id {bad} is out of vocabulary (size {})", limits.vocab_size)));
        }
        params.validate().map_err(|e| match e {
            CoreError::InvalidSamplingParams { field, reason } => ApiError::field(field, format!("{field} {reason}")),
            other => ApiError::BadRequest(other.to_string()),
        })?;
        Ok(params)
    }

    fn logit_bias(&self, vocab_size: usize) -> Result<BTreeMap<u32, f32>, ApiError> {
        let mut out = BTreeMap::new();
        for (key, &bias) in self.logit_bias.iter().flatten() {
            let id: u32 = key
                .trim()
                .parse()
                .map_err(|_| ApiError::field("logit_bias", format!("logit_bias key {key:?} is not a token id")))?;
            if id as usize >= vocab_size {
                return Err(ApiError::field(
                    "logit_bias",
                    format!("logit_bias token id {id} is out of vocabulary (size {vocab_size})"),
                ));
            }
            out.insert(id, bias);
        }
        Ok(out)
    }
}

/// Rejects a logprobs count above `--max-logprobs` (vLLM's 400).
pub fn check_logprobs_limit(name: &str, value: Option<usize>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(k) if k > max => Err(ApiError::field(
            name,
            format!("{name} ({k}) exceeds the maximum allowed value ({max}); the server's --max-logprobs limits it"),
        )),
        _ => Ok(()),
    }
}

fn positive(name: &str, value: i64) -> Result<usize, ApiError> {
    if value < 1 {
        return Err(ApiError::field(name, format!("{name} must be at least 1, got {value}")));
    }
    Ok(value as usize)
}

fn non_negative(name: &str, value: i64) -> Result<usize, ApiError> {
    usize::try_from(value).map_err(|_| ApiError::field(name, format!("{name} must be non-negative, got {value}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> EndpointLimits {
        EndpointLimits { max_tokens: 16, logprobs: None, max_logprobs: 20, vocab_size: 500 }
    }

    fn fields(json: serde_json::Value) -> SamplingFields {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn defaults_follow_request_then_model() {
        let model = GenerationDefaults { temperature: Some(0.6), top_p: Some(0.9), ..Default::default() };
        let p = fields(serde_json::json!({"temperature": 0.0})).to_params(&model, &limits()).unwrap();
        assert_eq!((p.temperature, p.top_p, p.max_tokens, p.n), (0.0, 0.9, Some(16), 1));
        let p = fields(serde_json::json!({"stop": "x", "logit_bias": {"7": 5.0}, "seed": 3})).to_params(&model, &limits()).unwrap();
        assert_eq!(p.stop, vec!["x".to_string()]);
        assert_eq!(p.logit_bias.get(&7), Some(&5.0));
        assert_eq!(p.seed, Some(3));
    }

    #[test]
    fn bad_values_name_their_field() {
        let d = GenerationDefaults::default();
        for (json, param) in [
            (serde_json::json!({"temperature": -1.0}), "temperature"),
            (serde_json::json!({"top_p": 0.0}), "top_p"),
            (serde_json::json!({"top_p": 1.5}), "top_p"),
            (serde_json::json!({"n": 0}), "n"),
            (serde_json::json!({"logit_bias": {"abc": 1.0}}), "logit_bias"),
            (serde_json::json!({"logit_bias": {"900": 1.0}}), "logit_bias"),
            (serde_json::json!({"prompt_logprobs": 21}), "prompt_logprobs"),
            (serde_json::json!({"stop_token_ids": [600]}), "stop_token_ids"),
            (serde_json::json!({"min_tokens": 17}), "min_tokens"),
        ] {
            let e = fields(json.clone()).to_params(&d, &limits()).unwrap_err();
            assert_eq!(e.param(), Some(param), "{json}: {e}");
            assert_eq!(e.status().as_u16(), 400);
        }
        let too_many = EndpointLimits { logprobs: Some(21), ..limits() };
        assert_eq!(fields(serde_json::json!({})).to_params(&d, &too_many).unwrap_err().param(), Some("logprobs"));
        assert!(fields(serde_json::json!({"response_format": {"type": "json_object"}})).to_params(&d, &limits()).is_err());
        assert!(fields(serde_json::json!({"response_format": {"type": "text"}})).to_params(&d, &limits()).is_ok());
    }
}
