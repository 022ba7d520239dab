//! Log-probability containers filled by the engine's sampler and passed through the scheduler.
//!
//! The core never computes logprobs; it only defines the shapes so that the model runner, the
//! scheduler output and the server agree on them.

use serde::{Deserialize, Serialize};

use crate::ids::TokenId;

/// One token's log-probability and its rank among the vocabulary (1 = most likely).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Logprob {
    /// The token.
    pub token_id: TokenId,
    /// Natural-log probability under the distribution the token was chosen from.
    pub logprob: f32,
    /// 1-based rank of the token by probability.
    pub rank: usize,
}

/// Logprobs at one position: the actual token's entry and the `k` most likely alternatives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionLogprobs {
    /// The token that was sampled (or, for a prompt position, the prompt token).
    pub token: Logprob,
    /// The top-`k` tokens by probability, most likely first (`k` = the requested count).
    pub top: Vec<Logprob>,
}

/// Logprobs of the token sampled this step.
pub type SampleLogprobs = PositionLogprobs;

/// Logprobs of the prompt tokens whose logits were computed this step, in prompt order: one
/// entry per prompt position covered by the step's chunk; the entry of prompt position 0 is
/// `None` (no token precedes it).
pub type PromptLogprobs = Vec<Option<PositionLogprobs>>;
