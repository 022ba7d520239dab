//! The engine core: the scheduler and the model runner stepping together
//! (schedule → execute → update), behind a backend-independent trait object so that only
//! [`crate::backend`] names a concrete burn backend.

use ember_core::{CoreError, EngineCoreOutput, FinishReason, Request, Scheduler, SchedulerStats};
use ember_kernels::PagedAttentionBackend;

use crate::args::Task;
use crate::embedding::EmbeddingInfo;
use crate::runner::ModelRunner;

/// Facts about a built engine, for logs and for request validation.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    /// What the engine serves: [`Task::Generate`] or [`Task::Embed`] (never `Auto`).
    pub task: Task,
    /// Backend name.
    pub backend: String,
    /// Compute dtype.
    pub dtype: String,
    /// KV blocks.
    pub num_blocks: usize,
    /// Tokens per block.
    pub block_size: usize,
    /// Context length (embedding models: the longest input).
    pub max_model_len: usize,
    /// Rows of the LM head (embedding models: of the word embedding).
    pub vocab_size: usize,
    /// Bytes of KV cache (0 for embedding models, which keep none between requests).
    pub kv_cache_bytes: usize,
    /// Most sequences in one step (as given, or the device's default).
    pub max_num_seqs: usize,
    /// Token budget of one step (as given, or the device's default).
    pub max_num_batched_tokens: usize,
    /// Embedding size, pooling and matryoshka sizes; `Some` exactly when `task` is `Embed`.
    pub embedding: Option<EmbeddingInfo>,
}

/// What the engine needs from a core, whatever its backend.
pub(crate) trait EngineCoreApi {
    fn add_request(&mut self, request: Request) -> Result<(), CoreError>;
    fn abort_requests(&mut self, ids: &[String]);
    fn finish_requests(&mut self, ids: &[String], reason: FinishReason);
    fn step(&mut self) -> Vec<EngineCoreOutput>;
    fn has_unfinished_requests(&self) -> bool;
    fn stats(&self) -> SchedulerStats;
    fn info(&self) -> &EngineInfo;
}

/// Scheduler + runner on backend `B`.
pub(crate) struct EngineCore<B: PagedAttentionBackend> {
    pub(crate) scheduler: Scheduler,
    pub(crate) runner: ModelRunner<B>,
    pub(crate) info: EngineInfo,
}

impl<B: PagedAttentionBackend> EngineCoreApi for EngineCore<B> {
    fn add_request(&mut self, request: Request) -> Result<(), CoreError> {
        self.scheduler.add_request(request)
    }

    fn abort_requests(&mut self, ids: &[String]) {
        self.scheduler.abort_requests(ids);
    }

    fn finish_requests(&mut self, ids: &[String], reason: FinishReason) {
        self.scheduler.finish_requests(ids, reason);
    }

    fn step(&mut self) -> Vec<EngineCoreOutput> {
        let out = self.scheduler.schedule();
        let runner_out = self.runner.execute_model(&out, &self.scheduler);
        self.scheduler.update_from_output(&out, &runner_out)
    }

    fn has_unfinished_requests(&self) -> bool {
        self.scheduler.has_unfinished_requests()
    }

    fn stats(&self) -> SchedulerStats {
        self.scheduler.stats()
    }

    fn info(&self) -> &EngineInfo {
        &self.info
    }
}
