//! The engine core: the scheduler and the model runner stepping together
//! (schedule → execute → update), behind a backend-independent trait object so that only
//! [`crate::backend`] names a concrete burn backend.
//!
//! With async scheduling ([`crate::EngineArgs::async_scheduling`]) one step stays in flight
//! between calls: a call schedules and queues step N+1, then waits for step N and applies it,
//! so the device runs N+1 while the host processes N's outputs and schedules N+2. A step the
//! runner cannot queue behind another ([`ModelRunner::can_overlap`]: graph steps, sampling
//! that reads the token history) waits for the one in flight first; the outputs of each
//! step come back one call later than they would synchronously.

use ember_core::{CoreError, EngineCoreOutput, FinishReason, Request, Scheduler, SchedulerOutput, SchedulerStats};
use ember_kernels::PagedAttentionBackend;

use crate::args::Task;
use crate::embedding::EmbeddingInfo;
use crate::runner::{InFlightStep, ModelRunner};

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
    async_scheduling: bool,
    /// Keep steps in flight even when their tokens are ready ([`crate::EngineArgs::pipeline_ready_steps`]).
    pipeline_ready_steps: bool,
    /// The step queued by the last call, not yet applied (async scheduling only).
    in_flight: Option<(SchedulerOutput, InFlightStep)>,
}

impl<B: PagedAttentionBackend> EngineCore<B> {
    pub(crate) fn new(scheduler: Scheduler, runner: ModelRunner<B>, info: EngineInfo, async_scheduling: bool, pipeline_ready_steps: bool) -> Self {
        Self { scheduler, runner, info, async_scheduling, pipeline_ready_steps, in_flight: None }
    }

    /// Waits for a queued step and applies its output.
    fn apply(&mut self, (out, step): (SchedulerOutput, InFlightStep)) -> Vec<EngineCoreOutput> {
        let runner_out = self.runner.finish(step);
        self.scheduler.update_from_output(&out, &runner_out)
    }
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
        let mut out = self.scheduler.schedule();
        let mut outputs = Vec::new();
        if self.in_flight.is_some() && (out.is_empty() || !self.runner.can_overlap(&out)) {
            // Apply the step in flight first; `out` then takes its tokens from the host.
            let in_flight = self.in_flight.take().expect("checked above");
            outputs = self.apply(in_flight);
            self.scheduler.resolve_pending_inputs(&mut out);
        }
        let step = self.runner.enqueue(&out, &self.scheduler);
        // A step whose tokens are already on the host (graph steps, logprobs) is applied now:
        // keeping it would only delay its outputs by a step.
        let keep = self.async_scheduling && !out.is_empty() && (step.is_pending() || self.pipeline_ready_steps);
        let queued = (out, step);
        if let Some(in_flight) = self.in_flight.take() {
            outputs = self.apply(in_flight);
        }
        if keep {
            self.in_flight = Some(queued);
        } else {
            outputs.extend(self.apply(queued));
        }
        outputs
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
