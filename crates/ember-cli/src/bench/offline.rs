//! What `bench throughput` and `bench latency` share: loading the engine from the engine flags,
//! the benchmark's sampling parameters (vLLM's: `ignore_eos`, `max_tokens = output_len`,
//! temperature 1.0 and top_p 1.0 unless `--temperature` says otherwise), and driving a batch of
//! token prompts through `LLMEngine` to completion with a progress bar.

use std::time::Instant;

use ember_engine::{EngineInfo, LLM, PromptInput, RequestOutput, SamplingParams, TokenId, UsageContext};
use indicatif::{ProgressBar, ProgressStyle};

use super::dataset::RandomDataset;
use crate::EngineFlags;

/// A loaded engine plus the random prompts drawn for it.
pub struct OfflineBench {
    llm: LLM,
    next_id: u64,
    /// Random-token prompts over the model's vocabulary.
    pub dataset: RandomDataset,
}

impl OfflineBench {
    /// Loads the model named by `flags` (seeding the dataset with `--seed`) and logs what it got.
    pub fn load(flags: &EngineFlags) -> anyhow::Result<Self> {
        let args = flags.to_engine_args(UsageContext::LlmClass)?;
        let started = Instant::now();
        let llm = LLM::new(args)?;
        let info = llm.engine().info().clone();
        tracing::info!(
            "loaded {} in {:.1}s: backend {}, dtype {}, {} KV blocks of {} tokens, max_model_len {}",
            flags.model()?,
            started.elapsed().as_secs_f64(),
            info.backend,
            info.dtype,
            info.num_blocks,
            info.block_size,
            info.max_model_len
        );
        let dataset = RandomDataset::new(llm.engine().tokenizer(), Some(info.vocab_size), flags.seed)?;
        tracing::info!("random prompts over {} token ids (special tokens excluded), seed {}", dataset.allowed().len(), flags.seed);
        Ok(Self { llm, next_id: 0, dataset })
    }

    /// Backend, dtype and sizes of the loaded engine.
    pub fn info(&self) -> &EngineInfo {
        self.llm.engine().info()
    }

    /// The context length the engine was sized for.
    pub fn max_model_len(&self) -> usize {
        self.info().max_model_len
    }

    /// Fails early, with the flag to change, when a prompt plus its output cannot fit.
    pub fn check_lengths(&self, input_len: usize, output_len: usize) -> anyhow::Result<()> {
        anyhow::ensure!(input_len >= 1 && output_len >= 1, "--input-len and --output-len must be at least 1");
        let max = self.max_model_len();
        anyhow::ensure!(
            input_len + output_len <= max,
            "--input-len {input_len} + --output-len {output_len} exceeds the context length {max} (--max-model-len)"
        );
        Ok(())
    }

    /// Queues every prompt and steps the engine until all have finished; outputs in input order.
    /// `bar` advances by one per finished request.
    pub fn run(&mut self, prompts: Vec<Vec<TokenId>>, params: &SamplingParams, bar: &ProgressBar) -> anyhow::Result<Vec<RequestOutput>> {
        let engine = self.llm.engine_mut();
        let mut ids: Vec<String> = Vec::with_capacity(prompts.len());
        for prompt in prompts {
            let id = format!("bench-{}", self.next_id);
            self.next_id += 1;
            if let Err(e) = engine.add_request(id.clone(), PromptInput::Tokens(prompt), params.clone()) {
                for queued in &ids {
                    engine.abort_request(queued);
                }
                return Err(e.into());
            }
            ids.push(id);
        }
        let index: std::collections::HashMap<&str, usize> = ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
        let mut finished: Vec<Option<RequestOutput>> = vec![None; ids.len()];
        while engine.has_unfinished_requests() {
            for out in engine.step()? {
                if out.finished
                    && let Some(&slot) = index.get(out.request_id.as_str())
                {
                    finished[slot] = Some(out);
                    bar.inc(1);
                }
            }
        }
        finished
            .into_iter()
            .zip(&ids)
            .map(|(o, id)| o.ok_or_else(|| anyhow::anyhow!("request {id} finished without output")))
            .collect()
    }
}

/// vLLM's benchmark sampling: exactly `output_len` tokens (EOS ignored), full distribution.
pub fn sampling_params(output_len: usize, temperature: f32) -> SamplingParams {
    SamplingParams { max_tokens: Some(output_len), ignore_eos: true, temperature, top_p: 1.0, ..Default::default() }
}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn progress(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let template = format!("{what} {{bar:40}} {{pos}}/{{len}} [{{elapsed_precise}}<{{eta_precise}}]");
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

/// Generated tokens of every sample of every output.
pub fn output_tokens(outputs: &[RequestOutput]) -> usize {
    outputs.iter().flat_map(|o| &o.outputs).map(|c| c.token_ids.len()).sum()
}
