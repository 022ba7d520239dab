//! [`LLMEngine`]: the request-level engine. It tokenizes and validates requests, fans out
//! `n > 1` into sibling samples, steps the core, and turns token outputs into
//! [`RequestOutput`]s (detokenization, stop strings, logprobs).

use std::sync::Arc;

use ember_core::{FinishReason, GenerationDefaults, Request, SamplingParams, SchedulerStats, TokenId, fan_out};
use ember_loader::ModelFiles;
use ember_models::ModelConfig;
use ember_tokenizer::Tokenizer;

use crate::args::EngineArgs;
use crate::backend::{ModelParts, build_core};
use crate::engine_core::{EngineCoreApi, EngineInfo};
use crate::error::{EngineError, Result};
use crate::output_processor::{NewRequest, OutputProcessor};
use crate::outputs::RequestOutput;
use crate::prompt::PromptInput;

/// The engine: add requests, call [`LLMEngine::step`] until they finish.
pub struct LLMEngine {
    core: Box<dyn EngineCoreApi>,
    tokenizer: Arc<Tokenizer>,
    processor: OutputProcessor,
    config: ModelConfig,
    eos_token_ids: Vec<TokenId>,
    max_logprobs: usize,
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
        let config = ModelConfig::from_file(&files.config)?;
        let tokenizer_path = files.tokenizer.as_deref().ok_or_else(|| {
            EngineError::InvalidArgs(format!("{}: no tokenizer.json in the model folder", files.dir.display()))
        })?;
        let tokenizer = Tokenizer::from_files(
            tokenizer_path,
            files.tokenizer_config.as_deref(),
            files.generation_config.as_deref(),
        )?;
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
        let weights = files.open_weights()?;
        let core = build_core(&args, &ModelParts { config: &config, weights: &weights, max_model_len })?;
        let mut eos_token_ids = tokenizer.eos_token_ids();
        for id in &config.eos_token_ids {
            if !eos_token_ids.contains(id) {
                eos_token_ids.push(*id);
            }
        }
        Ok(Self {
            core,
            tokenizer: Arc::new(tokenizer),
            processor: OutputProcessor::default(),
            config,
            eos_token_ids,
            max_logprobs: args.max_logprobs,
        })
    }

    /// The model's tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// A shared handle on the tokenizer (for threads other than the engine's).
    pub fn tokenizer_arc(&self) -> Arc<Tokenizer> {
        Arc::clone(&self.tokenizer)
    }

    /// The model's configuration.
    pub fn model_config(&self) -> &ModelConfig {
        &self.config
    }

    /// Facts about the running engine (backend, dtype, KV blocks, context length).
    pub fn info(&self) -> &EngineInfo {
        self.core.info()
    }

    /// Scheduler statistics (running/waiting requests, KV usage, preemptions, prefix cache).
    pub fn stats(&self) -> SchedulerStats {
        self.core.stats()
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
    pub fn add_request(&mut self, request_id: impl Into<String>, prompt: PromptInput, params: SamplingParams) -> Result<usize> {
        let request_id = request_id.into();
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
        for child in children {
            let id = child.request_id().to_string();
            if let Err(e) = self.core.add_request(child) {
                self.core.abort_requests(&added);
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
        let info = self.core.info();
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
        self.core.abort_requests(&children);
        self.processor.abort(request_id)
    }

    /// Runs one engine step; returns the requests that progressed.
    pub fn step(&mut self) -> Result<Vec<RequestOutput>> {
        let outputs = self.core.step();
        let (results, stopped) = self.processor.process(outputs, &self.tokenizer)?;
        if !stopped.is_empty() {
            self.core.finish_requests(&stopped, FinishReason::Stop);
        }
        Ok(results)
    }

    /// Whether any request is waiting or running.
    pub fn has_unfinished_requests(&self) -> bool {
        self.core.has_unfinished_requests()
    }
}
