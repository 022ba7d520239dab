//! [`LLM`]: offline batch inference, the equivalent of vLLM's `LLM.generate` and `LLM.embed`:
//! give prompts (and sampling or pooling parameters), get every request's final output back,
//! in input order. Continuous batching runs underneath generation: all prompts are queued at
//! once and stepped together; embeddings run in batched forward passes.

use crate::args::{EngineArgs, Task};
use crate::embedding::{EmbeddingOutput, EmbeddingRequestOutput, PoolingParams};
use crate::engine::LLMEngine;
use crate::error::{EngineError, Result};
use crate::outputs::RequestOutput;
use crate::prompt::PromptInput;
use ember_core::{SamplingOverrides, SamplingParams};

/// Offline inference over a batch of prompts.
pub struct LLM {
    engine: LLMEngine,
    next_id: u64,
}

impl LLM {
    /// Loads the model (see [`LLMEngine::new`]).
    pub fn new(args: EngineArgs) -> Result<Self> {
        let mut engine = LLMEngine::new(args)?;
        engine.set_final_only_outputs();
        Ok(Self { engine, next_id: 0 })
    }

    /// The underlying engine.
    pub fn engine(&self) -> &LLMEngine {
        &self.engine
    }

    /// Mutable access to the underlying engine. Its [`LLMEngine::step`] returns finished
    /// requests only (the offline output kind; no per-step copies of growing outputs).
    pub fn engine_mut(&mut self) -> &mut LLMEngine {
        &mut self.engine
    }

    /// Sampling parameters with the model's `generation_config.json` defaults applied.
    pub fn default_sampling_params(&self) -> SamplingParams {
        SamplingParams::default().with_generation_defaults(&self.engine.generation_defaults(), &SamplingOverrides::default())
    }

    /// Embeds every prompt (text is tokenized with special tokens, as sentence-transformers
    /// does); one output per prompt, in order. Errors when the model is not an embedding model.
    pub fn embed(&mut self, prompts: Vec<PromptInput>, params: &PoolingParams) -> Result<Vec<EmbeddingRequestOutput>> {
        if self.engine.info().task != Task::Embed {
            return Err(EngineError::InvalidRequest(
                "LLM::embed needs an embedding model (this one was loaded for text generation; see --task)".into(),
            ));
        }
        let mut texts = Vec::with_capacity(prompts.len());
        let mut inputs = Vec::with_capacity(prompts.len());
        for prompt in prompts {
            match prompt {
                PromptInput::Text(text) => {
                    inputs.push(self.engine.tokenizer().encode(&text, true)?);
                    texts.push(Some(text));
                }
                PromptInput::Tokens(ids) => {
                    inputs.push(ids);
                    texts.push(None);
                }
            }
        }
        let embeddings = self.engine.embed(&inputs, params.dimensions)?;
        Ok(texts
            .into_iter()
            .zip(inputs)
            .zip(embeddings)
            .map(|((prompt, prompt_token_ids), embedding)| {
                let request_id = format!("offline-{}", self.next_id);
                self.next_id += 1;
                EmbeddingRequestOutput { request_id, prompt, prompt_token_ids, outputs: EmbeddingOutput { embedding } }
            })
            .collect())
    }

    /// Generates for every prompt with the same parameters.
    pub fn generate(&mut self, prompts: Vec<PromptInput>, params: &SamplingParams) -> Result<Vec<RequestOutput>> {
        let params = vec![params.clone(); prompts.len()];
        self.generate_each(prompts, params)
    }

    /// Generates with per-prompt parameters; returns final outputs in input order. When a
    /// prompt is rejected, nothing is left queued.
    pub fn generate_each(&mut self, prompts: Vec<PromptInput>, params: Vec<SamplingParams>) -> Result<Vec<RequestOutput>> {
        if self.engine.info().task == Task::Embed {
            return Err(EngineError::InvalidRequest(
                "this is an embedding model (task embed): it cannot generate text; use LLM::embed, or \
                 `ember serve MODEL --task embed` and POST /v1/embeddings"
                    .into(),
            ));
        }
        if prompts.len() != params.len() {
            return Err(EngineError::InvalidRequest(format!(
                "{} prompts but {} sampling parameter sets",
                prompts.len(),
                params.len()
            )));
        }
        let mut ids: Vec<String> = Vec::with_capacity(prompts.len());
        for (prompt, p) in prompts.into_iter().zip(params) {
            let id = format!("offline-{}", self.next_id);
            self.next_id += 1;
            if let Err(e) = self.engine.add_request(id.clone(), prompt, p) {
                for queued in &ids {
                    self.engine.abort_request(queued);
                }
                return Err(e);
            }
            ids.push(id);
        }
        let mut finished: Vec<Option<RequestOutput>> = vec![None; ids.len()];
        let slots: std::collections::HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        while self.engine.has_unfinished_requests() {
            for out in self.engine.step()? {
                if out.finished
                    && let Some(&slot) = slots.get(out.request_id.as_str())
                {
                    finished[slot] = Some(out);
                }
            }
        }
        finished
            .into_iter()
            .zip(&ids)
            .map(|(o, id)| o.ok_or_else(|| EngineError::InvalidRequest(format!("request {id} produced no output"))))
            .collect()
    }
}
