//! [`AsyncEngine`]: the engine on its own thread, for servers.
//!
//! The engine (and every burn tensor) lives on one dedicated thread, built there. Callers talk
//! to it through a command channel; each generation request gets its own output channel
//! ([`RequestStream`]). Dropping a stream (a client that disconnected) aborts the request,
//! which frees its KV blocks at the next step. Between steps the thread publishes an
//! [`EngineSnapshot`] for metrics and health checks.
//!
//! Embedding models are served by the same thread: [`AsyncEngine::embed`] queues a request
//! and returns a future. Every embedding request that arrived since the last pass is run in
//! the same forward passes (requests batch together), and each gets its vectors back.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use ember_core::{GenerationDefaults, SamplingParams};
use ember_tokenizer::Tokenizer;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;

use crate::args::EngineArgs;
use crate::engine::LLMEngine;
use crate::engine_core::EngineInfo;
use crate::error::{EngineError, RequestError, Result};
use crate::outputs::RequestOutput;
use crate::prompt::PromptInput;

/// One item of a request's stream: an output, or the error that ended it.
pub type StreamItem = std::result::Result<RequestOutput, RequestError>;

/// What an embedding request resolves to: one vector per input, in order.
pub type EmbedResult = std::result::Result<Vec<Vec<f32>>, RequestError>;

enum Command {
    Generate { request_id: String, prompt: PromptInput, params: SamplingParams, sink: UnboundedSender<StreamItem> },
    Embed(EmbedJob),
    Abort(String),
}

struct EmbedJob {
    request_id: String,
    inputs: Vec<Vec<u32>>,
    dimensions: Option<usize>,
    reply: oneshot::Sender<EmbedResult>,
}

/// Counters and gauges the engine thread publishes after every step (vLLM's metric set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineSnapshot {
    /// Requests (samples) being run.
    pub num_requests_running: usize,
    /// Requests (samples) queued.
    pub num_requests_waiting: usize,
    /// Fraction of KV blocks in use.
    pub kv_cache_usage: f64,
    /// Preemptions since start.
    pub num_preemptions_total: u64,
    /// Prompt tokens looked up in the prefix cache since start.
    pub prefix_cache_queries: u64,
    /// Of those, tokens found.
    pub prefix_cache_hits: u64,
    /// Prompt tokens of accepted requests since start.
    pub prompt_tokens_total: u64,
    /// Tokens generated since start.
    pub generation_tokens_total: u64,
    /// Engine steps since start.
    pub steps_total: u64,
    /// Largest number of requests run together in one step since start.
    pub max_batch_size: usize,
}

/// Handle on the engine thread. Cheap to clone; the thread stops when every handle is dropped.
#[derive(Clone)]
pub struct AsyncEngine {
    commands: Sender<Command>,
    info: EngineInfo,
    tokenizer: Arc<Tokenizer>,
    generation_defaults: GenerationDefaults,
    snapshot: Arc<Mutex<EngineSnapshot>>,
    _thread: Arc<ThreadGuard>,
}

struct ThreadGuard(Option<JoinHandle<()>>);

impl Drop for ThreadGuard {
    fn drop(&mut self) {
        // The command channel closes with the last handle; the thread then drains and exits.
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

/// The outputs of one generation request, in order. Dropping it aborts the request.
pub struct RequestStream {
    request_id: String,
    outputs: UnboundedReceiver<StreamItem>,
    commands: Sender<Command>,
    finished: bool,
}

impl RequestStream {
    /// The next output (`None` once the request has finished or was aborted).
    pub async fn next(&mut self) -> Option<StreamItem> {
        if self.finished {
            return None;
        }
        let item = self.outputs.recv().await;
        match &item {
            Some(Ok(out)) if out.finished => self.finished = true,
            Some(Err(_)) | None => self.finished = true,
            _ => {}
        }
        item
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }
}

impl Drop for RequestStream {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.commands.send(Command::Abort(self.request_id.clone()));
        }
    }
}

impl AsyncEngine {
    /// Builds the engine on a new thread and waits until it is loaded.
    pub fn start(args: EngineArgs) -> Result<Self> {
        let (commands, command_rx) = mpsc::channel::<Command>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(EngineInfo, Arc<Tokenizer>, GenerationDefaults)>>();
        let snapshot = Arc::new(Mutex::new(EngineSnapshot::default()));
        let published = Arc::clone(&snapshot);
        let thread = std::thread::Builder::new()
            .name("ember-engine".into())
            .spawn(move || match LLMEngine::new(args) {
                Ok(engine) => {
                    let ready = (engine.info().clone(), engine.tokenizer_arc(), engine.generation_defaults());
                    let _ = ready_tx.send(Ok(ready));
                    EngineLoop::new(engine, command_rx, published).run();
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| EngineError::InvalidArgs(format!("cannot start the engine thread: {e}")))?;
        let (info, tokenizer, generation_defaults) = ready_rx.recv().map_err(|_| EngineError::Backend {
            backend: "engine".into(),
            reason: "the engine thread stopped while loading (see the log above)".into(),
        })??;
        Ok(Self { commands, info, tokenizer, generation_defaults, snapshot, _thread: Arc::new(ThreadGuard(Some(thread))) })
    }

    /// Queues a request; its outputs arrive on the returned stream. Validation errors (prompt
    /// too long, bad parameters) arrive as the stream's first item.
    pub fn generate(&self, request_id: String, prompt: PromptInput, params: SamplingParams) -> RequestStream {
        let (sink, outputs) = unbounded_channel();
        let command = Command::Generate { request_id: request_id.clone(), prompt, params, sink };
        let alive = self.commands.send(command).is_ok();
        let mut stream = RequestStream { request_id, outputs, commands: self.commands.clone(), finished: false };
        if !alive {
            stream.finished = true;
        }
        stream
    }

    /// Embeds token-id sequences on the engine thread (never blocking the caller's thread);
    /// resolves to one vector per input. Validation errors (a generation model, an empty or
    /// over-long input, unsupported `dimensions`) resolve to [`RequestError::Invalid`].
    pub fn embed(
        &self,
        request_id: String,
        inputs: Vec<Vec<u32>>,
        dimensions: Option<usize>,
    ) -> impl std::future::Future<Output = EmbedResult> + Send + 'static {
        let (reply, result) = oneshot::channel();
        let sent = self.commands.send(Command::Embed(EmbedJob { request_id, inputs, dimensions, reply })).is_ok();
        async move {
            if !sent {
                return Err(RequestError::Internal("the engine has stopped".into()));
            }
            result.await.unwrap_or_else(|_| Err(RequestError::Internal("the engine stopped while embedding".into())))
        }
    }

    /// Aborts a request by id (no-op when unknown or finished).
    pub fn abort(&self, request_id: &str) {
        let _ = self.commands.send(Command::Abort(request_id.to_string()));
    }

    /// Facts about the engine (backend, KV blocks, context length).
    pub fn info(&self) -> &EngineInfo {
        &self.info
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.tokenizer
    }

    /// The model's `generation_config.json` sampling defaults (request values take precedence).
    pub fn generation_defaults(&self) -> &GenerationDefaults {
        &self.generation_defaults
    }

    /// The latest published counters.
    pub fn snapshot(&self) -> EngineSnapshot {
        self.snapshot.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The engine thread's state.
struct EngineLoop {
    engine: LLMEngine,
    commands: Receiver<Command>,
    snapshot: Arc<Mutex<EngineSnapshot>>,
    sinks: std::collections::HashMap<String, UnboundedSender<StreamItem>>,
    /// Validated embedding requests waiting for the next pass.
    embeds: Vec<EmbedJob>,
    totals: EngineSnapshot,
}

impl EngineLoop {
    fn new(engine: LLMEngine, commands: Receiver<Command>, snapshot: Arc<Mutex<EngineSnapshot>>) -> Self {
        Self { engine, commands, snapshot, sinks: Default::default(), embeds: Vec::new(), totals: EngineSnapshot::default() }
    }

    fn run(mut self) {
        loop {
            // Idle: block for work. Busy: take what has arrived and keep stepping.
            if !self.engine.has_unfinished_requests() {
                match self.commands.recv_timeout(Duration::from_millis(500)) {
                    Ok(command) => self.handle(command),
                    Err(RecvTimeoutError::Timeout) => continue,
                    Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            while let Ok(command) = self.commands.try_recv() {
                self.handle(command);
            }
            self.abort_abandoned();
            if !self.embeds.is_empty() {
                self.run_embeds();
            }
            if self.engine.has_unfinished_requests() {
                self.step();
            }
            self.publish();
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Generate { request_id, prompt, params, sink } => {
                match self.engine.add_request(request_id.clone(), prompt, params) {
                    Ok(prompt_tokens) => {
                        self.totals.prompt_tokens_total += prompt_tokens as u64;
                        self.sinks.insert(request_id, sink);
                    }
                    Err(e) => {
                        let _ = sink.send(Err(RequestError::from(&e)));
                    }
                }
            }
            Command::Embed(job) => match self.engine.validate_embedding(&job.inputs, job.dimensions) {
                Ok(()) => self.embeds.push(job),
                Err(e) => {
                    let _ = job.reply.send(Err(RequestError::from(&e)));
                }
            },
            Command::Abort(request_id) => {
                if self.sinks.remove(&request_id).is_some() {
                    self.engine.abort_request(&request_id);
                }
            }
        }
    }

    /// Runs every queued embedding request (those whose caller is still waiting) in shared
    /// passes, counts their tokens, publishes, then answers each.
    fn run_embeds(&mut self) {
        let jobs: Vec<EmbedJob> = self.embeds.drain(..).filter(|j| !j.reply.is_closed()).collect();
        if jobs.is_empty() {
            return;
        }
        let requests: Vec<(&[Vec<u32>], Option<usize>)> = jobs.iter().map(|j| (j.inputs.as_slice(), j.dimensions)).collect();
        let results = self.engine.embed_validated(&requests);
        let tokens: usize = jobs.iter().flat_map(|j| &j.inputs).map(Vec::len).sum();
        self.totals.prompt_tokens_total += tokens as u64;
        self.totals.steps_total += 1;
        self.totals.max_batch_size = self.totals.max_batch_size.max(jobs.iter().map(|j| j.inputs.len()).sum());
        self.publish();
        for (job, embeddings) in jobs.into_iter().zip(results) {
            tracing::debug!(request_id = %job.request_id, inputs = job.inputs.len(), "embedded");
            let _ = job.reply.send(Ok(embeddings));
        }
    }

    /// Aborts requests whose receiver is gone (a client that disconnected).
    fn abort_abandoned(&mut self) {
        let gone: Vec<String> = self.sinks.iter().filter(|(_, s)| s.is_closed()).map(|(id, _)| id.clone()).collect();
        for id in gone {
            self.sinks.remove(&id);
            self.engine.abort_request(&id);
        }
    }

    fn step(&mut self) {
        let running = self.engine.stats().num_running;
        self.totals.max_batch_size = self.totals.max_batch_size.max(running);
        self.totals.steps_total += 1;
        match self.engine.step() {
            Ok(outputs) => {
                for out in outputs {
                    let new_tokens: usize = out.outputs.iter().map(|c| c.delta_token_ids.len()).sum();
                    self.totals.generation_tokens_total += new_tokens as u64;
                    let finished = out.finished;
                    let id = out.request_id.clone();
                    let delivered = self.sinks.get(&id).is_some_and(|s| s.send(Ok(out)).is_ok());
                    if finished || !delivered {
                        self.sinks.remove(&id);
                        if !finished {
                            self.engine.abort_request(&id);
                        }
                    }
                }
            }
            Err(e) => {
                // A step failure (e.g. detokenization) ends every request in flight with the error.
                tracing::error!("engine step failed: {e}");
                for (id, sink) in self.sinks.drain() {
                    let _ = sink.send(Err(RequestError::Internal(e.to_string())));
                    self.engine.abort_request(&id);
                }
            }
        }
    }

    fn publish(&mut self) {
        let stats = self.engine.stats();
        let snapshot = EngineSnapshot {
            num_requests_running: stats.num_running,
            num_requests_waiting: stats.num_waiting,
            kv_cache_usage: stats.kv_cache_usage as f64,
            num_preemptions_total: stats.num_preemptions_total as u64,
            prefix_cache_queries: stats.prefix_cache_queries as u64,
            prefix_cache_hits: stats.prefix_cache_hits as u64,
            ..self.totals.clone()
        };
        if let Ok(mut s) = self.snapshot.lock() {
            *s = snapshot;
        }
    }
}
