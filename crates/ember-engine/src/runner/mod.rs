//! The model runner: turns one [`SchedulerOutput`] into a forward pass on the device and a
//! [`ModelRunnerOutput`]. It owns the model, the paged KV cache and the per-request generators.
//!
//! Per step: copy-on-write block copies; flat inputs (token ids, positions, slot mapping) and
//! attention metadata; one forward over all scheduled tokens; logits only for the rows that
//! sample or need prompt logprobs; the on-device sampler; one read-back.
//!
//! A step is queued ([`ModelRunner::enqueue`]) and collected ([`ModelRunner::finish`])
//! separately, so that with async scheduling the engine core queues step N+1 before it waits
//! for step N's tokens: inputs N+1 needs from N come from N's device output
//! ([`pending_inputs`]), and N's ids are copied to the host behind N's work
//! ([`ember_kernels::SamplingBackend::read_ids_early`]), not behind N+1's.

mod inputs;
mod pending_inputs;
mod step_graphs;
mod step_profile;

use burn_tensor::{Int, Tensor, TensorData, activation::log_softmax};
use ember_core::{
    ModelRunnerOutput, PositionLogprobs, PromptLogprobs, RequestRunnerOutput, Scheduler, SchedulerOutput,
};
use ember_kernels::{KvCache, KvCacheSpec, PagedAttentionBackend, PendingIds};
use ember_models::DecoderModel;

use crate::sampler::{self, RequestGenerators, SamplingRow, top_logprobs};
use inputs::StepInputs;
use pending_inputs::PrevSampled;
use step_graphs::{ForwardContext, GraphOutput, StepGraphs};
use step_profile::{Phase, ProfilerRange, StepProfile};

/// Runs the model for the scheduler, on backend `B`.
pub(crate) struct ModelRunner<B: PagedAttentionBackend> {
    model: DecoderModel<B>,
    kv_cache: KvCache<B>,
    device: B::Device,
    generators: RequestGenerators,
    windows: Vec<Option<usize>>,
    /// Whether the step metadata needs the reference attention's padded groups.
    padded_groups: bool,
    /// Per-phase step timings (`EMBER_PROFILE_STEPS`).
    profile: Option<StepProfile>,
    /// The step a device profiler records (`EMBER_PROFILE_DECODE_SEQS`).
    profiler_range: Option<ProfilerRange>,
    /// Captured decode steps (CUDA graphs); disabled until [`Self::enable_step_graphs`].
    graphs: StepGraphs<B>,
    /// The last step's sampled ids, for the pending inputs of the next one.
    prev_sampled: Option<PrevSampled<B>>,
    /// Nothing was queued on this thread's cubecl stream since a step graph's replay returned
    /// its sampled tokens (the replay waited for the graph, and cubecl's stream was synced
    /// before it): the next replay need not sync cubecl's stream again, which cost ~0.15 ms
    /// of idle device per single-stream step (docs/perf.md, eleventh pass).
    cubecl_idle: bool,
}

/// A step whose work is queued on the device; [`ModelRunner::finish`] collects its output.
pub(crate) struct InFlightStep {
    outputs: Vec<RequestRunnerOutput>,
    /// The sampled rows' indices into `outputs`, and their ids on the way to the host.
    pending: Option<(Vec<usize>, PendingIds)>,
}

impl InFlightStep {
    fn ready(outputs: Vec<RequestRunnerOutput>) -> Self {
        Self { outputs, pending: None }
    }

    /// Whether its tokens are still on their way to the host.
    pub(crate) fn is_pending(&self) -> bool {
        self.pending.as_ref().is_some_and(|(_, ids)| !ids.is_ready())
    }
}

impl<B: PagedAttentionBackend> ModelRunner<B> {
    /// Wraps a loaded model and allocates its KV cache.
    pub(crate) fn new(model: DecoderModel<B>, spec: KvCacheSpec, device: B::Device, seed: u64) -> Self {
        let windows = model.config().distinct_windows();
        let config = model.config();
        let params = ember_kernels::AttentionParams {
            num_heads: config.num_heads,
            num_kv_heads: config.num_kv_heads,
            head_dim: config.head_dim,
            scale: config.attn_scale,
            logit_softcap: config.attn_logit_softcap,
            sliding_window: None,
        };
        let padded_groups = B::needs_padded_groups(&params);
        Self {
            padded_groups,
            kv_cache: KvCache::new(spec, &device),
            model,
            device,
            generators: RequestGenerators::new(seed),
            windows,
            profile: StepProfile::from_env(),
            profiler_range: ProfilerRange::from_env(),
            graphs: StepGraphs::disabled(),
            prev_sampled: None,
            cubecl_idle: false,
        }
    }

    /// Runs small decode steps as captured graphs when the backend can
    /// (see [`step_graphs`]); `max_model_len` fixes their block-table width.
    pub(crate) fn enable_step_graphs(&mut self, max_model_len: usize) {
        // Gemma's embedding scale is a burn op the capture cannot record; the reference
        // attention (padded groups) is burn ops too.
        if !self.padded_groups && !self.model.config().spec.scale_embeddings {
            self.graphs = StepGraphs::new(&self.device, max_model_len, self.kv_cache.spec().block_size);
        }
    }

    /// Gives the model back, dropping the KV cache (after the memory-profiling step).
    pub(crate) fn into_model(self) -> DecoderModel<B> {
        self.model
    }

    fn mark(&mut self, phase: Phase) {
        if let Some(profile) = &mut self.profile {
            if profile.sync {
                let _ = B::sync(&self.device);
            }
            profile.done(phase);
        }
    }

    /// Runs one scheduled step to the end (timed by the profile when enabled).
    pub(crate) fn execute_model(&mut self, out: &SchedulerOutput, scheduler: &Scheduler) -> ModelRunnerOutput {
        let step = self.enqueue(out, scheduler);
        self.finish(step)
    }

    /// Whether `out` may be queued while the step before it is still in flight: its pending
    /// inputs then stay on the device, which a graph step cannot take (it copies host inputs
    /// in), and its sampling must need nothing the step in flight has not returned yet (the
    /// token history of penalties and `min_tokens`); logprobs are read back with a sync.
    pub(crate) fn can_overlap(&self, out: &SchedulerOutput) -> bool {
        let decode = out.scheduled.iter().all(|s| s.token_ids.len() == 1);
        !(decode && self.graphs.covers(out.scheduled.len()))
            && out.scheduled.iter().all(|s| !sampler::needs_sync(&s.sampling_params))
    }

    /// Queues one scheduled step's work on the device.
    pub(crate) fn enqueue(&mut self, out: &SchedulerOutput, scheduler: &Scheduler) -> InFlightStep {
        if let Some(profile) = &mut self.profile {
            profile.start();
        }
        let recorded = self.profiler_range.as_mut().is_some_and(|r| r.take(out.total_num_scheduled_tokens, out.scheduled.len()));
        if recorded {
            let _ = B::sync(&self.device);
            B::device_profiler(&self.device, true);
        }
        let step = self.execute(out, scheduler);
        if recorded {
            let _ = B::sync(&self.device);
            B::device_profiler(&self.device, false);
            tracing::info!(seqs = out.scheduled.len(), tokens = out.total_num_scheduled_tokens, "the device profiler recorded this step");
        }
        if let Some(profile) = &mut self.profile {
            profile.scheduled((!out.scheduled.is_empty()).then_some((out.total_num_scheduled_tokens, out.scheduled.len())));
        }
        step
    }

    /// Waits for a queued step's tokens and returns its output.
    pub(crate) fn finish(&mut self, step: InFlightStep) -> ModelRunnerOutput {
        let InFlightStep { mut outputs, pending } = step;
        if let Some((rows, ids)) = pending {
            for (&i, token) in rows.iter().zip(ids.wait()) {
                outputs[i].sampled_token_id = Some(token);
            }
            self.mark(Phase::Wait);
        }
        if let Some(profile) = &mut self.profile {
            profile.end();
        }
        ModelRunnerOutput { outputs }
    }

    fn execute(&mut self, out: &SchedulerOutput, scheduler: &Scheduler) -> InFlightStep {
        for id in &out.finished_req_ids {
            self.generators.remove(id);
        }
        if out.scheduled.is_empty() {
            return InFlightStep::ready(Vec::new());
        }
        // Any path below but a sampled graph replay queues cubecl work.
        let cubecl_idle = std::mem::take(&mut self.cubecl_idle) && out.blocks_to_copy.is_empty();
        self.copy_blocks(out);

        let block_size = self.kv_cache.spec().block_size;
        let mut step = StepInputs::build(out, scheduler, block_size);
        let patch = pending_inputs::resolve(self.prev_sampled.as_ref(), out, &mut step);
        let mut outputs = vec![RequestRunnerOutput::default(); out.scheduled.len()];
        let rows = self.sampling_rows(&step, out, scheduler);
        // A decode step (every row samples, in order) with plain sampling may sample inside its graph.
        let in_order = step.prompt_rows.is_empty() && step.sample_rows.iter().enumerate().all(|(i, r)| r.row == i && r.scheduled == i);
        let pick_params = if in_order && rows.len() == out.scheduled.len() {
            sampler::plain_pick_params(&rows, self.model.config().vocab_size)
        } else {
            None
        };
        let ctx = ForwardContext { model: &self.model, cache: &mut self.kv_cache, device: &self.device, windows: &self.windows };
        // A graph copies host inputs in: not with inputs still on the device.
        let graph = if patch.is_none() { self.graphs.forward(ctx, &step, pick_params.as_deref(), cubecl_idle) } else { None };
        let hidden = match graph {
            Some(GraphOutput::Tokens(tokens)) => {
                self.cubecl_idle = true;
                self.mark(Phase::Forward);
                for (output, &token) in outputs.iter_mut().zip(&tokens) {
                    output.sampled_token_id = Some(token);
                }
                self.prev_sampled = Some(PrevSampled::on_host(out, tokens));
                return InFlightStep::ready(outputs);
            }
            Some(GraphOutput::Hidden(hidden)) => hidden,
            None => {
                let metadata = ember_kernels::AttentionMetadata::<B>::with_padded_groups(&step.layout, &self.windows, &self.device, self.padded_groups);
                let mut input_ids = int_tensor::<B>(step.input_ids.clone(), &self.device);
                if let Some(patch) = patch {
                    input_ids = patch.apply(input_ids, &self.device);
                }
                let positions = int_tensor::<B>(step.layout.positions(), &self.device);
                self.mark(Phase::Prepare);
                self.model.forward(input_ids, positions, &mut self.kv_cache, &metadata)
            }
        };
        self.mark(Phase::Forward);

        let num_sample = step.sample_rows.len();
        self.prev_sampled = None;
        if num_sample + step.prompt_rows.len() == 0 {
            return InFlightStep::ready(outputs); // a prefill chunk that neither samples nor scores
        }
        let logit_rows: Vec<i64> = step
            .sample_rows
            .iter()
            .map(|r| r.row)
            .chain(step.prompt_rows.iter().map(|r| r.row))
            .map(|r| r as i64)
            .collect();
        let logits = self.model.compute_logits(hidden.select(0, int_tensor::<B>(logit_rows, &self.device)));

        let mut pending = None;
        if num_sample > 0 {
            let sample_logits = logits.clone().narrow(0, 0, num_sample);
            let batch = sampler::sample(sample_logits, &rows);
            self.mark(Phase::Sample);
            self.prev_sampled = Some(PrevSampled::on_device(out, &step, batch.token_ids()));
            match batch.read_early(&rows) {
                sampler::SampleRead::Ready(sampled) => {
                    self.mark(Phase::Wait);
                    for (r, token) in step.sample_rows.iter().zip(sampled) {
                        outputs[r.scheduled].sampled_token_id = Some(token.token_id);
                        outputs[r.scheduled].logprobs = token.logprobs;
                    }
                }
                sampler::SampleRead::Pending(ids) => {
                    pending = Some((step.sample_rows.iter().map(|r| r.scheduled).collect(), ids));
                }
            }
        }
        if !step.prompt_rows.is_empty() {
            let prompt_logits = logits.narrow(0, num_sample, step.prompt_rows.len()).cast(burn_tensor::FloatDType::F32);
            self.prompt_logprobs(prompt_logits, &step, out, &mut outputs);
        }
        InFlightStep { outputs, pending }
    }

    /// The sampler's view of each row that samples this step, with its uniform drawn from the
    /// request's generator (once per sampled token, whichever path then samples).
    fn sampling_rows<'a>(&mut self, step: &StepInputs, out: &'a SchedulerOutput, scheduler: &'a Scheduler) -> Vec<SamplingRow<'a>> {
        step.sample_rows
            .iter()
            .map(|r| {
                let s = &out.scheduled[r.scheduled];
                let request = scheduler.get_request(&s.request_id).expect("scheduled request exists");
                let params = s.sampling_params.as_ref();
                let uniform = if params.is_greedy() { 0.5 } else { self.generators.uniform(&s.request_id, params.seed) };
                SamplingRow {
                    params,
                    prompt: request.prompt_token_ids(),
                    output: request.output_token_ids(),
                    eos_token_ids: if params.ignore_eos { &[] } else { request.eos_token_ids() },
                    uniform,
                }
            })
            .collect()
    }

    fn copy_blocks(&mut self, out: &SchedulerOutput) {
        if out.blocks_to_copy.is_empty() {
            return;
        }
        self.graphs.invalidate();
        let src: Vec<i64> = out.blocks_to_copy.iter().map(|(s, _)| s.0 as i64).collect();
        let dst: Vec<i64> = out.blocks_to_copy.iter().map(|(_, d)| d.0 as i64).collect();
        let (src, dst) = (int_tensor::<B>(src, &self.device), int_tensor::<B>(dst, &self.device));
        for layer in 0..self.kv_cache.spec().num_layers {
            let cache = self.kv_cache.take_layer(layer);
            let cache = B::copy_blocks(cache, src.clone(), dst.clone());
            self.kv_cache.put_layer(layer, cache);
        }
    }

    fn prompt_logprobs(
        &self,
        logits: Tensor<B, 2>,
        step: &StepInputs,
        out: &SchedulerOutput,
        outputs: &mut [RequestRunnerOutput],
    ) {
        let n = step
            .prompt_rows
            .iter()
            .filter_map(|r| out.scheduled[r.scheduled].sampling_params.prompt_logprobs)
            .max()
            .unwrap_or(0);
        let targets: Vec<i64> = step.prompt_rows.iter().map(|r| r.target as i64).collect();
        let len = targets.len();
        let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [len, 1]), &self.device);
        let readback = top_logprobs(log_softmax(logits, 1), targets, n);
        let tx = readback.register(burn_tensor::Transaction::default());
        let mut data = tx.execute().into_iter();
        let target_ids: Vec<u32> = step.prompt_rows.iter().map(|r| r.target).collect();
        let per_row = readback.unpack(&mut data, &target_ids);

        for (i, s) in out.scheduled.iter().enumerate() {
            let Some(wanted) = s.sampling_params.prompt_logprobs else { continue };
            if s.num_computed_tokens >= s.num_prompt_tokens {
                continue;
            }
            let mut entries: PromptLogprobs = Vec::new();
            if s.num_computed_tokens == 0 {
                entries.push(None);
            }
            entries.extend(
                step.prompt_rows
                    .iter()
                    .zip(&per_row)
                    .filter(|(r, _)| r.scheduled == i)
                    .map(|(_, lp)| Some::<PositionLogprobs>(lp.truncated(wanted))),
            );
            outputs[i].prompt_logprobs = Some(entries);
        }
    }
}

fn int_tensor<B: PagedAttentionBackend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}
