//! Ember's pure-Rust core: ids, sampling parameters, the paged KV-cache block pool with prefix
//! caching, the KV-cache manager and the vLLM-v1-style scheduler. No tensors here: the engine
//! turns a [`SchedulerOutput`] into a forward pass and hands back a [`ModelRunnerOutput`].

#![warn(missing_docs)]

mod block_hash;
mod block_pool;
mod config;
mod error;
mod free_block_queue;
mod generation_defaults;
mod ids;
mod kv_cache_manager;
mod logprobs;
mod parallel_sampling;
mod request;
mod sampling_params;
mod scheduler;
mod scheduler_output;
mod stop_checker;

pub use block_hash::{BlockHash, hash_block_tokens, hash_request_tokens};
pub use block_pool::{BlockPool, KvCacheBlock, PrefixCacheStats};
pub use config::{CacheConfig, SchedulerConfig};
pub use error::CoreError;
pub use free_block_queue::FreeBlockQueue;
pub use generation_defaults::{GenerationDefaults, SamplingOverrides};
pub use ids::{BlockId, RequestId, TokenId};
pub use kv_cache_manager::{BlockCopy, KvCacheManager};
pub use logprobs::{Logprob, PositionLogprobs, PromptLogprobs, SampleLogprobs};
pub use parallel_sampling::{child_request_id, fan_out, parse_child_request_id};
pub use request::{FinishReason, Request, RequestStatus, StopReason};
pub use sampling_params::{GREEDY_TEMPERATURE_EPS, MAX_ABS_LOGIT_BIAS, SamplingParams};
pub use scheduler::{Scheduler, SchedulerStats};
pub use scheduler_output::{
    EngineCoreOutput, ModelRunnerOutput, RequestRunnerOutput, ScheduledRequest, SchedulerOutput,
};
