//! Scheduler and KV-cache configuration, each with `validate()`.
//!
//! Defaults follow vLLM's serving defaults where they exist; `max_model_len` and `num_blocks`
//! depend on the model and the device, so they have no default and are constructor arguments.

use serde::{Deserialize, Serialize};

use crate::error::CoreError;

fn invalid(field: &'static str, reason: String) -> CoreError {
    CoreError::InvalidConfig { field, reason }
}

/// Limits of one scheduling step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedulerConfig {
    /// Token budget of one step, prefill chunks and decodes together. Default
    /// [`Self::DEFAULT_MAX_NUM_BATCHED_TOKENS`]; the engine sets it per device and usage
    /// context (vLLM's `get_batch_defaults`). Prompts longer than this are prefilled in chunks.
    pub max_num_batched_tokens: usize,
    /// Maximum number of running requests. Default [`Self::DEFAULT_MAX_NUM_SEQS`]; the engine
    /// sets it per device and usage context.
    pub max_num_seqs: usize,
    /// Context length of the model in tokens: prompt plus output never exceeds it.
    pub max_model_len: usize,
    /// Cap on the tokens one request may prefill per step so long prompts do not starve
    /// others; 0 (default) disables the cap.
    pub long_prefill_token_threshold: usize,
}

impl SchedulerConfig {
    /// Token budget of a bare scheduler: 2048, vLLM's `SchedulerConfig` default (and its
    /// serving default on GPUs under 70 GiB).
    pub const DEFAULT_MAX_NUM_BATCHED_TOKENS: usize = 2048;
    /// Running-request cap of a bare scheduler: 256 (vLLM's default outside large GPUs).
    pub const DEFAULT_MAX_NUM_SEQS: usize = 256;

    /// The defaults above for a model of context length `max_model_len`.
    pub fn new(max_model_len: usize) -> Self {
        Self {
            max_num_batched_tokens: Self::DEFAULT_MAX_NUM_BATCHED_TOKENS,
            max_num_seqs: Self::DEFAULT_MAX_NUM_SEQS,
            max_model_len,
            long_prefill_token_threshold: 0,
        }
    }

    /// Checks that every limit allows progress.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.max_num_batched_tokens < 1 {
            return Err(invalid(
                "max_num_batched_tokens",
                "must be at least 1, got 0".into(),
            ));
        }
        if self.max_num_seqs < 1 {
            return Err(invalid("max_num_seqs", "must be at least 1, got 0".into()));
        }
        if self.max_model_len < 2 {
            return Err(invalid(
                "max_model_len",
                format!(
                    "must be at least 2 (one prompt and one output token), got {}",
                    self.max_model_len
                ),
            ));
        }
        Ok(())
    }
}

/// Shape of the paged KV cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheConfig {
    /// Tokens per KV-cache block. Default 16.
    pub block_size: usize,
    /// Number of blocks in the pool (sized by the engine from free device memory).
    pub num_blocks: usize,
    /// Reuse the K/V of identical prompt prefixes across requests. Default true.
    pub enable_prefix_caching: bool,
}

impl CacheConfig {
    /// The defaults above with `num_blocks` blocks.
    pub fn new(num_blocks: usize) -> Self {
        Self {
            block_size: 16,
            num_blocks,
            enable_prefix_caching: true,
        }
    }

    /// Checks the sizes are usable.
    pub fn validate(&self) -> Result<(), CoreError> {
        if self.block_size < 1 {
            return Err(invalid("block_size", "must be at least 1, got 0".into()));
        }
        if self.num_blocks < 1 {
            return Err(invalid("num_blocks", "must be at least 1, got 0".into()));
        }
        if u32::try_from(self.num_blocks).is_err() {
            return Err(invalid(
                "num_blocks",
                format!("must fit in u32, got {}", self.num_blocks),
            ));
        }
        Ok(())
    }

    /// Blocks needed to hold `num_tokens` token positions.
    pub fn blocks_for_tokens(&self, num_tokens: usize) -> usize {
        num_tokens.div_ceil(self.block_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_validation() {
        let s = SchedulerConfig::new(4096);
        assert_eq!((s.max_num_batched_tokens, s.max_num_seqs), (2048, 256));
        assert!(s.validate().is_ok());
        let bad = SchedulerConfig {
            max_num_seqs: 0,
            ..s.clone()
        };
        assert!(matches!(
            bad.validate(),
            Err(CoreError::InvalidConfig {
                field: "max_num_seqs",
                ..
            })
        ));
        let bad = SchedulerConfig {
            max_model_len: 1,
            ..s
        };
        assert!(matches!(
            bad.validate(),
            Err(CoreError::InvalidConfig {
                field: "max_model_len",
                ..
            })
        ));

        let c = CacheConfig::new(10);
        assert_eq!(c.block_size, 16);
        assert!(c.enable_prefix_caching);
        assert!(c.validate().is_ok());
        assert_eq!(c.blocks_for_tokens(17), 2);
        let bad = CacheConfig { block_size: 0, ..c };
        assert!(matches!(
            bad.validate(),
            Err(CoreError::InvalidConfig {
                field: "block_size",
                ..
            })
        ));
    }
}
