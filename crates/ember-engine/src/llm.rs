//! [`LLM`]: offline batch inference, the equivalent of vLLM's `LLM.generate`: give prompts and
//! sampling parameters, get every request's final output back, in input order. Continuous
//! batching runs underneath: all prompts are queued at once and stepped together.

use crate::args::EngineArgs;
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
        Ok(Self { engine: LLMEngine::new(args)?, next_id: 0 })
    }

    /// The underlying engine.
    pub fn engine(&self) -> &LLMEngine {
        &self.engine
    }

    /// Mutable access to the underlying engine.
    pub fn engine_mut(&mut self) -> &mut LLMEngine {
        &mut self.engine
    }

    /// Sampling parameters with the model's `generation_config.json` defaults applied.
    pub fn default_sampling_params(&self) -> SamplingParams {
        SamplingParams::default().with_generation_defaults(&self.engine.generation_defaults(), &SamplingOverrides::default())
    }

    /// Generates for every prompt with the same parameters.
    pub fn generate(&mut self, prompts: Vec<PromptInput>, params: &SamplingParams) -> Result<Vec<RequestOutput>> {
        let params = vec![params.clone(); prompts.len()];
        self.generate_each(prompts, params)
    }

    /// Generates with per-prompt parameters; returns final outputs in input order. When a
    /// prompt is rejected, nothing is left queued.
    pub fn generate_each(&mut self, prompts: Vec<PromptInput>, params: Vec<SamplingParams>) -> Result<Vec<RequestOutput>> {
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
        while self.engine.has_unfinished_requests() {
            for out in self.engine.step()? {
                if out.finished {
                    if let Some(slot) = ids.iter().position(|id| *id == out.request_id) {
                        finished[slot] = Some(out);
                    }
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
