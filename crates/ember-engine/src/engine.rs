//! [`LLMEngine`]: the request-level engine. It tokenizes and validates requests, fans out
//! `n > 1` into sibling samples, steps the core, and turns token outputs into
//! [`RequestOutput`]s (detokenization, stop strings, logprobs). On an embedding model
//! ([`Task::Embed`]) it runs [`LLMEngine::embed`] instead; each task refuses the other's
//! requests with vLLM's messages.

use std::sync::Arc;

use ember_core::{FinishReason, GenerationDefaults, Request, SamplingParams, SchedulerStats, TokenId, fan_out};
use ember_loader::ModelFiles;
use ember_models::ModelConfig;
use ember_tokenizer::Tokenizer;

use crate::args::{EngineArgs, Task};
use crate::backend::{ModelParts, build_core, build_embedding_core};
use crate::embedding::{COMPLETIONS_UNSUPPORTED, EMBEDDINGS_UNSUPPORTED, EmbeddingCoreApi, EmbeddingSpec, resolve_task};
use crate::engine_core::{EngineCoreApi, EngineInfo};
use crate::error::{EngineError, Result};
use crate::output_processor::{NewRequest, OutputProcessor};
use crate::outputs::RequestOutput;
use crate::prompt::PromptInput;

/// The engine: add requests, call [`LLMEngine::step`] until they finish.
pub struct LLMEngine {
    worker: Worker,
    tokenizer: Arc<Tokenizer>,
    processor: OutputProcessor,
    /// `None` for encoder (embedding) models.
    config: Option<ModelConfig>,
    eos_token_ids: Vec<TokenId>,
    max_logprobs: usize,
}

/// The backend-specific half: a generation core (scheduler + runner) or an embedding core.
enum Worker {
    Generate(Box<dyn EngineCoreApi>),
    Embed(Box<dyn EmbeddingCoreApi>),
}

impl LLMEngine {
    /// Resolves the model (local folder or hub id), loads tokenizer and weights on the chosen
    /// backend and sizes the KV cache.
    pub fn new(args: EngineArgs) -> Result<Self> {
        args.validate()?;
        let files = ember_loader::resolve_model(&args.model, args.revision.as_deref())?;
        Self::from_files(args, &files)
    }

    /// Like [`Self::new`] for an already resolved model folder.
    pub fn from_files(args: EngineArgs, files: &ModelFiles) -> Result<Self> {
        let task = resolve_task(args.task, files)?;
        let tokenizer_path = files.tokenizer.as_deref().ok_or_else(|| {
            EngineError::InvalidArgs(format!("{}: no tokenizer.json in the model folder", files.dir.display()))
        })?;
        let tokenizer = Tokenizer::from_files(
            tokenizer_path,
            files.tokenizer_config.as_deref(),
            files.generation_config.as_deref(),
        )?;
        let weights = files.open_weights()?;
        let (worker, config) = match task {
            Task::Embed => {
                let spec = EmbeddingSpec::from_files(files, &args)?;
                let core = build_embedding_core(&args, &spec, &weights)?;
                let config = match spec.backbone {
                    crate::embedding::Backbone::Decoder(c) => Some(c),
                    _ => None,
                };
                (Worker::Embed(core), config)
            }
            Task::Generate | Task::Auto => {
                let config = ModelConfig::from_file(&files.config)?;
                let max_model_len = match args.max_model_len {
                    None => config.max_position_embeddings,
                    Some(len) if len <= config.max_position_embeddings && len >= 2 => len,
                    Some(len) => {
                        return Err(EngineError::InvalidArgs(format!(
                            "--max-model-len {len} must be between 2 and the model's max_position_embeddings ({})",
                            config.max_position_embeddings
                        )));
                    }
                };
                let core = build_core(&args, &ModelParts { config: &config, weights: &weights, max_model_len })?;
                (Worker::Generate(core), Some(config))
            }
        };
        let mut eos_token_ids = tokenizer.eos_token_ids();
        for id in config.iter().flat_map(|c| &c.eos_token_ids) {
            if !eos_token_ids.contains(id) {
                eos_token_ids.push(*id);
            }
        }
        Ok(Self {
            worker,
            tokenizer: Arc::new(tokenizer),
            processor: OutputProcessor::default(),
            config,
            eos_token_ids,
            max_logprobs: args.max_logprobs,
        })
    }

    /// The generation core, or vLLM's error for a completion request to an embedding model.
    fn core(&mut self) -> Result<&mut Box<dyn EngineCoreApi>> {
        match &mut self.worker {
            Worker::Generate(core) => Ok(core),
            Worker::Embed(_) => Err(EngineError::InvalidRequest(COMPLETIONS_UNSUPPORTED.into())),
        }
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// A shared handle on the tokenizer (for threads other than the engine's).
    pub fn tokenizer_arc(&self) -> Arc<Tokenizer> {
        Arc::clone(&self.tokenizer)
    }

    /// The decoder's configuration (`None` for encoder embedding models).
    pub fn model_config(&self) -> Option<&ModelConfig> {
        self.config.as_ref()
    }

    /// Facts about the running engine (task, backend, dtype, KV blocks, context length).
    pub fn info(&self) -> &EngineInfo {
        match &self.worker {
            Worker::Generate(core) => core.info(),
            Worker::Embed(core) => core.info(),
        }
    }

    /// Scheduler statistics (running/waiting requests, KV usage, preemptions, prefix cache);
    /// all zero for embedding models, which have no scheduler.
    pub fn stats(&self) -> SchedulerStats {
        match &self.worker {
            Worker::Generate(core) => core.stats(),
            Worker::Embed(_) => SchedulerStats::default(),
        }
    }

    /// The model's `generation_config.json` sampling defaults.
    pub fn generation_defaults(&self) -> GenerationDefaults {
        let g = self.tokenizer.generation_config();
        GenerationDefaults {
            temperature: g.temperature,
            top_p: g.top_p,
            top_k: g.top_k,
            min_p: g.min_p,
            repetition_penalty: g.repetition_penalty,
            max_new_tokens: g.max_new_tokens,
        }
    }

    /// Tokenizes and validates a request, then queues it. Returns its number of prompt tokens.
    /// On an embedding model: [`EngineError::InvalidRequest`] ("The model does not support
    /// the Completions API").
    pub fn add_request(&mut self, request_id: impl Into<String>, prompt: PromptInput, params: SamplingParams) -> Result<usize> {
        let request_id = request_id.into();
        self.core()?;
        if self.processor.contains(&request_id) {
            return Err(EngineError::InvalidRequest(format!("request id {request_id:?} is already in use")));
        }
        params.validate()?;
        let (prompt_text, prompt_ids) = match prompt {
            PromptInput::Text(text) => {
                let ids = self.tokenizer.encode(&text, true)?;
                (Some(text), ids)
            }
            PromptInput::Tokens(ids) => (None, ids),
        };
        self.validate(&prompt_ids, &params)?;

        let children: Vec<Request> = if params.n > 1 {
            fan_out(&request_id, prompt_ids.clone(), &params, self.eos_token_ids.clone())
        } else {
            vec![Request::new(request_id.clone(), prompt_ids.clone(), Arc::new(params.clone()), self.eos_token_ids.clone())]
        };
        let child_ids: Vec<String> = children.iter().map(|c| c.request_id().to_string()).collect();
        let mut added = Vec::new();
        let core = self.core()?;
        for child in children {
            let id = child.request_id().to_string();
            if let Err(e) = core.add_request(child) {
                core.abort_requests(&added);
                return Err(e.into());
            }
            added.push(id);
        }
        self.processor.add(NewRequest {
            request_id: &request_id,
            prompt: prompt_text,
            prompt_token_ids: &prompt_ids,
            child_ids,
            stop: params.stop.clone(),
            include_stop_str_in_output: params.include_stop_str_in_output,
            skip_special_tokens: params.skip_special_tokens,
            wants_logprobs: params.logprobs.is_some(),
            wants_prompt_logprobs: params.prompt_logprobs.is_some(),
        });
        Ok(prompt_ids.len())
    }

    fn validate(&self, prompt: &[TokenId], params: &SamplingParams) -> Result<()> {
        let info = self.info();
        if prompt.is_empty() {
            return Err(EngineError::InvalidRequest("the prompt is empty".into()));
        }
        if let Some(bad) = prompt.iter().find(|&&t| t as usize >= info.vocab_size) {
            return Err(EngineError::InvalidRequest(format!(
                "token id {bad} is out of vocabulary (size {})",
                info.vocab_size
            )));
        }
        if prompt.len() >= info.max_model_len {
            return Err(EngineError::InvalidRequest(format!(
                "the prompt ({} tokens) is longer than the maximum model length minus one ({} tokens)",
                prompt.len(),
                info.max_model_len - 1
            )));
        }
        for (name, value) in [("logprobs", params.logprobs), ("prompt_logprobs", params.prompt_logprobs)] {
            if value.is_some_and(|n| n > self.max_logprobs) {
                return Err(EngineError::InvalidRequest(format!(
                    "{name} {} exceeds the maximum allowed ({}); raise --max-logprobs",
                    value.unwrap_or(0),
                    self.max_logprobs
                )));
            }
        }
        for (&t, _) in &params.logit_bias {
            if t as usize >= info.vocab_size {
                return Err(EngineError::InvalidRequest(format!("logit_bias token id {t} is out of vocabulary")));
            }
        }
        Ok(())
    }

    /// Aborts a request (all its samples), freeing its KV blocks. Returns its final output.
    pub fn abort_request(&mut self, request_id: &str) -> Option<RequestOutput> {
        let children = self.processor.child_ids(request_id);
        let Worker::Generate(core) = &mut self.worker else { return None };
        core.abort_requests(&children);
        self.processor.abort(request_id)
    }

    /// From now on [`Self::step`] returns only finished requests (vLLM's `FINAL_ONLY` output
    /// kind, what the offline [`crate::LLM`] uses: no per-step copies of growing outputs).
    pub(crate) fn set_final_only_outputs(&mut self) {
        self.processor.set_final_only(true);
    }

    /// Runs one engine step; returns the requests that progressed (none on embedding models).
    pub fn step(&mut self) -> Result<Vec<RequestOutput>> {
        let Worker::Generate(core) = &mut self.worker else { return Ok(Vec::new()) };
        let outputs = core.step();
        let (results, stopped) = self.processor.process(outputs, &self.tokenizer)?;
        if !stopped.is_empty() {
            core.finish_requests(&stopped, FinishReason::Stop);
        }
        Ok(results)
    }

    /// Whether any request is waiting or running.
    pub fn has_unfinished_requests(&self) -> bool {
        match &self.worker {
            Worker::Generate(core) => core.has_unfinished_requests(),
            Worker::Embed(_) => false,
        }
    }

    /// Checks embedding inputs without running them: the model must be an embedding model,
    /// every input non-empty, in vocabulary and within `max_model_len` tokens (vLLM rejects
    /// longer inputs rather than truncating them), `dimensions` acceptable to the model.
    pub fn validate_embedding(&self, inputs: &[Vec<TokenId>], dimensions: Option<usize>) -> Result<()> {
        let info = self.info();
        let Some(embedding) = &info.embedding else {
            return Err(EngineError::InvalidRequest(EMBEDDINGS_UNSUPPORTED.into()));
        };
        if inputs.is_empty() {
            return Err(EngineError::InvalidRequest("no input to embed".into()));
        }
        for (i, input) in inputs.iter().enumerate() {
            if input.is_empty() {
                return Err(EngineError::InvalidRequest(format!("input {i} is empty")));
            }
            if let Some(bad) = input.iter().find(|&&t| t as usize >= info.vocab_size) {
                return Err(EngineError::InvalidRequest(format!(
                    "input {i}: token id {bad} is out of vocabulary (size {})",
                    info.vocab_size
                )));
            }
            if input.len() > info.max_model_len {
                return Err(EngineError::InvalidRequest(format!(
                    "This model's maximum context length is {} tokens. However, you requested {} tokens in the \
                     input for embedding generation. Please reduce the length of the input.",
                    info.max_model_len,
                    input.len()
                )));
            }
        }
        if let Some(d) = dimensions {
            embedding.check_dimensions(d).map_err(EngineError::InvalidRequest)?;
        }
        Ok(())
    }

    /// Embeds token-id sequences: one vector per input, in order (see
    /// [`Self::validate_embedding`] for what is refused).
    pub fn embed(&mut self, inputs: &[Vec<TokenId>], dimensions: Option<usize>) -> Result<Vec<Vec<f32>>> {
        self.validate_embedding(inputs, dimensions)?;
        Ok(self.embed_validated(&[(inputs, dimensions)]).pop().unwrap_or_default())
    }

    /// Embeds several already validated requests in shared forward passes; one result list
    /// per request.
    pub(crate) fn embed_validated(&mut self, requests: &[(&[Vec<TokenId>], Option<usize>)]) -> Vec<Vec<Vec<f32>>> {
        let normalize = self.info().embedding.as_ref().is_some_and(|e| e.normalize);
        let Worker::Embed(core) = &mut self.worker else { return vec![Vec::new(); requests.len()] };
        let all: Vec<&[TokenId]> = requests.iter().flat_map(|(inputs, _)| inputs.iter().map(Vec::as_slice)).collect();
        let mut embeddings = core.embed(&all).into_iter();
        requests
            .iter()
            .map(|(inputs, dimensions)| {
                let mut mine: Vec<Vec<f32>> = embeddings.by_ref().take(inputs.len()).collect();
                if let Some(d) = dimensions {
                    mine.iter_mut().for_each(|e| ember_models::pooling::dimensions::truncate(e, *d, normalize));
                }
                mine
            })
            .collect()
    }
}
