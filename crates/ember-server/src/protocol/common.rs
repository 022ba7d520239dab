//! Wire types shared by the completions and chat endpoints: `usage`, `stream_options`, the
//! `stop` field (a string or a list), `stop_reason`, ids and timestamps.

use ember_engine::StopReason;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `usage`: exact token counts of one response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt tokens (each prompt counted once, whatever `n`).
    pub prompt_tokens: usize,
    /// Generated tokens over all choices.
    pub completion_tokens: usize,
    /// The sum of the two.
    pub total_tokens: usize,
}

impl Usage {
    /// Usage from the two counts.
    pub fn new(prompt_tokens: usize, completion_tokens: usize) -> Self {
        Self { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens }
    }
}

/// `stream_options`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct StreamOptions {
    /// Send a last chunk with `usage` and no choices.
    #[serde(default)]
    pub include_usage: Option<bool>,
    /// Also put the running `usage` in every chunk (vLLM extension).
    #[serde(default)]
    pub continuous_usage_stats: Option<bool>,
}

/// What usage reporting a stream asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageMode {
    /// The final usage-only chunk.
    pub include: bool,
    /// Usage in every chunk.
    pub continuous: bool,
}

impl UsageMode {
    /// From the request's `stream_options`.
    pub fn from_options(options: Option<StreamOptions>) -> Self {
        let include = options.and_then(|o| o.include_usage).unwrap_or(false);
        let continuous = include && options.and_then(|o| o.continuous_usage_stats).unwrap_or(false);
        Self { include, continuous }
    }
}

/// `stop`: one string or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StopField {
    /// A single stop string.
    One(String),
    /// Several stop strings.
    Many(Vec<String>),
}

impl StopField {
    /// The stop strings as a list.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Self::One(s) => vec![s],
            Self::Many(v) => v,
        }
    }
}

/// vLLM's `stop_reason`: the stop string or stop token id that ended a choice, else null.
pub fn stop_reason_json(reason: Option<&StopReason>) -> Value {
    match reason {
        None => Value::Null,
        Some(StopReason::Str(s)) => Value::String(s.clone()),
        Some(StopReason::TokenId(id)) => Value::from(*id),
    }
}

/// Seconds since the Unix epoch (`created`).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A fresh response id such as `cmpl-3f2a…` (32 random hex digits).
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}-{:032x}", rand::random::<u128>())
}
