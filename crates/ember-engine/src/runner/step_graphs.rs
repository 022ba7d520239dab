//! Graphs of decode steps (vLLM's CUDA-graph capture; `--enforce-eager` turns them off).
//!
//! At batch 1 a decode step launches ~330 kernels, most of them a few microseconds long, and
//! launching them one by one through cubecl costs more than running them. On a backend that
//! can capture a forward pass ([`StepGraphBackend`]), a decode step (one token per sequence)
//! of at most [`max_graph_seqs`] sequences runs through a graph instead, one per number of
//! sequences and [`StepGraphBackend::step_graph_context_key`]:
//!
//! 1. the first [`EAGER_STEPS_BEFORE_CAPTURE`] steps of a key run eagerly as any other step;
//!    the next runs eagerly while the backend records it; its results are the step's, and the
//!    recording becomes the graph;
//! 2. the second replays the graph, then runs the same step eagerly and compares the two
//!    hidden states bit for bit: a graph that missed a launch (a burn op the backend could not
//!    record) differs, and all graphs are dropped for the rest of the run, with a warning;
//! 3. later steps replay only: the step's token ids, positions, slots and block tables are
//!    copied into the captured input buffers (block tables padded to `max_model_len`), the
//!    graph runs, and the captured output tensor holds the hidden states. cubecl's stream is
//!    synced first, unless the runner knows nothing was queued on it since the last replay
//!    (one sampled graph step after another: the sync was ~0.15 ms of idle device a step).
//!
//! When the step's sampling needs nothing but a temperature per row ([`sampler::plain_pick_params`]),
//! the graph also runs the LM head and the token pick, and a replay hands back the token ids
//! (their f32 uniforms and temperatures are one more input): the host then waits once per
//! step, for the ids, instead of launching the LM head and the sampler after the graph and
//! waiting for them too.
//!
//! The graphs do not hold the KV cache (burn would then copy it instead of updating it in
//! place); a step with copy-on-write block copies drops them, since the copy may move it.
//!
//! Prefill and mixed steps, and larger decode batches, stay eager: there the kernels are long
//! and the launches overlap them. Larger batches also use the Hopper GEMM, whose TMA
//! descriptors the recording cannot replay yet.

use std::collections::HashMap;

use burn_tensor::{DType, Int, Tensor, TensorData};
use ember_kernels::{AttentionMetadata, FlatHostMetadata, FlatMetadata, KvCache, PagedAttentionBackend, StepGraph};
use ember_models::DecoderModel;

use crate::sampler;

use super::inputs::StepInputs;

/// What a graph step produced.
pub(crate) enum GraphOutput<B: PagedAttentionBackend> {
    /// The final hidden states (the caller computes logits and samples).
    Hidden(Tensor<B, 2>),
    /// One sampled token per sequence (the graph sampled itself).
    Tokens(Vec<u32>),
}

/// Largest decode batch run through a graph: the rows whose linear layers run the GEMV
/// (`ember_kernels::gemv_max_rows`; the GEMM above takes TMA descriptors, which graphs do not
/// record).
pub(crate) fn max_graph_seqs() -> usize {
    ember_kernels::gemv_max_rows()
}

/// Whether graphs may sample (`EMBER_GRAPH_SAMPLING=0`: never, to measure the difference;
/// read once).
fn graph_sampling() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("EMBER_GRAPH_SAMPLING").map_or(true, |v| v != "0"))
}

/// Which graph a decode step needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GraphKey {
    num_seqs: usize,
    context: usize,
    /// Whether the graph runs the LM head and the token pick too.
    sampled: bool,
}

/// A captured step and the tensor its replays write the hidden states into.
struct Captured<B: PagedAttentionBackend> {
    graph: Box<dyn StepGraph>,
    hidden: Tensor<B, 2>,
    validated: bool,
}

/// An eager pass over graph-shaped inputs: the hidden states, the token ids when it sampled,
/// and the tensors a replay rewrites, in replay order.
struct EagerStep<B: PagedAttentionBackend> {
    hidden: Tensor<B, 2>,
    tokens: Option<Tensor<B, 2, Int>>,
    inputs: Vec<Tensor<B, 1, Int>>,
}

/// How many steps of a key run eagerly before the next one is captured. A capture costs the
/// first time about 0.75 s on the H200 (NVRTC compiles the step's kernels again for the graph's
/// stream): the offline run's one or two final steps of a few sequences paid it for nothing
/// (docs/perf.md, tenth pass), while a stream of small decode steps loses two eager steps.
pub(crate) const EAGER_STEPS_BEFORE_CAPTURE: usize = 2;

/// The runner's step graphs.
pub(crate) struct StepGraphs<B: PagedAttentionBackend> {
    enabled: bool,
    /// Block-table columns of every graph step: enough for `max_model_len`.
    table_width: usize,
    graphs: HashMap<GraphKey, Captured<B>>,
    /// Steps seen per key not yet captured (kept when graphs are dropped: a key seen often
    /// enough is captured again at once).
    seen: HashMap<GraphKey, usize>,
}

/// What one step's forward pass needs besides its inputs.
pub(crate) struct ForwardContext<'a, B: PagedAttentionBackend> {
    pub model: &'a DecoderModel<B>,
    pub cache: &'a mut KvCache<B>,
    pub device: &'a B::Device,
    pub windows: &'a [Option<usize>],
}

impl<B: PagedAttentionBackend> StepGraphs<B> {
    /// No graphs: every step runs eagerly.
    pub(crate) fn disabled() -> Self {
        Self { enabled: false, table_width: 1, graphs: HashMap::new(), seen: HashMap::new() }
    }

    /// Graphs for decode steps when the backend supports them on `device`.
    pub(crate) fn new(device: &B::Device, max_model_len: usize, block_size: usize) -> Self {
        let enabled = B::supports_step_graphs(device);
        if enabled {
            let max = max_graph_seqs();
            tracing::info!(max_batch = max, "decode steps of up to {max} sequences run as CUDA graphs (--enforce-eager turns this off)");
        }
        Self { enabled, table_width: max_model_len.div_ceil(block_size).max(1), graphs: HashMap::new(), seen: HashMap::new() }
    }

    /// Whether a decode step of `num_seqs` sequences would run through a graph.
    pub(crate) fn covers(&self, num_seqs: usize) -> bool {
        self.enabled && num_seqs > 0 && num_seqs <= max_graph_seqs()
    }

    /// The step through a graph, when it is a decode step graphs cover; `None`: the caller
    /// runs it eagerly. With `pick_params` (the step's sampling is plain: one row per
    /// sequence, in order, [`sampler::plain_pick_params`]) the graph samples too and returns the tokens.
    /// `cubecl_idle`: nothing was queued on cubecl's stream since it was last synced (the
    /// runner knows), so a replay need not sync it first. When this returns
    /// [`GraphOutput::Tokens`], cubecl's stream is idle: a replay queues nothing on it, and the
    /// eager paths (capture, validation) sync it before they return.
    pub(crate) fn forward(
        &mut self,
        ctx: ForwardContext<'_, B>,
        step: &StepInputs,
        pick_params: Option<&[i32]>,
        cubecl_idle: bool,
    ) -> Option<GraphOutput<B>> {
        let layout = &step.layout;
        let num_seqs = layout.seqs.len();
        if !self.covers(num_seqs) || layout.num_tokens() != num_seqs {
            return None;
        }
        let host = FlatHostMetadata::new(layout, self.table_width);
        if host.max_blocks_per_seq != self.table_width {
            return None;
        }
        // Gemma2's final soft-capping is burn ops, which a graph cannot record.
        let pick_params = pick_params.filter(|_| ctx.model.config().final_logit_softcap.is_none() && graph_sampling());
        let context = B::step_graph_context_key(num_seqs, host.max_context_len);
        let key = GraphKey { num_seqs, context, sampled: pick_params.is_some() };
        let ids: Vec<i32> = step.input_ids.iter().map(|&t| t as i32).collect();
        if !self.graphs.contains_key(&key) {
            let seen = self.seen.entry(key).or_insert(0);
            *seen += 1;
            if *seen <= EAGER_STEPS_BEFORE_CAPTURE {
                return None;
            }
            return Some(self.capture(ctx, step, key, ids, host, pick_params));
        }
        let captured = self.graphs.get_mut(&key).expect("checked above");
        if !cubecl_idle {
            let _ = B::sync(ctx.device); // earlier steps' cubecl work is done before the graph runs
        }
        let mut inputs: Vec<&[i32]> = vec![&ids, &host.token_pos, &host.slot_mapping, &host.token_seq, &host.block_tables];
        inputs.extend(pick_params);
        let mut tokens = vec![0i32; if pick_params.is_some() { num_seqs } else { 0 }];
        let mut outputs: Vec<&mut [i32]> = if pick_params.is_some() { vec![&mut tokens] } else { Vec::new() };
        if let Err(why) = captured.graph.replay(&inputs, &mut outputs) {
            self.disable(&format!("a replay failed: {why}"));
            return None;
        }
        let hidden = captured.hidden.clone();
        let replayed = || match pick_params {
            Some(_) => GraphOutput::Tokens(tokens.iter().map(|&t| t as u32).collect()),
            None => GraphOutput::Hidden(hidden.clone()),
        };
        if captured.validated {
            return Some(replayed());
        }
        let device = ctx.device.clone();
        let eager = eager_step(ctx, step, ids, host, pick_params);
        let same_hidden = hidden.clone().into_data().as_bytes() == eager.hidden.clone().into_data().as_bytes();
        let same_tokens = eager.tokens.as_ref().is_none_or(|t| sampler::read_ids(t.clone().into_data()) == tokens.iter().map(|&t| t as u32).collect::<Vec<_>>());
        let output = if same_hidden && same_tokens {
            self.graphs.get_mut(&key).expect("checked above").validated = true;
            tracing::debug!(num_seqs, sampled = key.sampled, "step graph matches the eager pass");
            replayed()
        } else {
            self.disable("a replay differs from the eager pass (a launch was not recorded)");
            eager.output()
        };
        // Sampled tokens tell the runner that cubecl's stream is idle (see `forward`).
        let _ = B::sync(&device);
        Some(output)
    }

    /// Runs the step eagerly while the backend records it, and keeps the graph.
    fn capture(
        &mut self,
        ctx: ForwardContext<'_, B>,
        step: &StepInputs,
        key: GraphKey,
        ids: Vec<i32>,
        host: FlatHostMetadata,
        pick_params: Option<&[i32]>,
    ) -> GraphOutput<B> {
        let device = ctx.device.clone();
        let cache = ctx.cache.tensors();
        B::begin_step_graph(&device);
        let eager = eager_step(ctx, step, ids, host, pick_params);
        let read_back: Vec<Tensor<B, 2, Int>> = eager.tokens.iter().cloned().collect();
        let graph = B::end_step_graph(&device, &eager.inputs, &read_back, &cache);
        let graph = if key.sampled && eager.tokens.is_none() { Err("the backend has no token pick on the device".into()) } else { graph };
        match graph {
            Ok(graph) => {
                tracing::debug!(num_seqs = key.num_seqs, context = key.context, sampled = key.sampled, "captured a step graph");
                self.graphs.insert(key, Captured { graph, hidden: eager.hidden.clone(), validated: false });
            }
            Err(why) => self.disable(&format!("the capture failed: {why}")),
        }
        let output = eager.output();
        let _ = B::sync(&device); // as after a validation: tokens mean an idle cubecl stream
        output
    }

    /// Drops every captured graph (they are captured again when needed): the KV cache's
    /// buffers may have moved (block copies run through burn ops, which may reallocate).
    pub(crate) fn invalidate(&mut self) {
        self.graphs.clear();
    }

    fn disable(&mut self, why: &str) {
        tracing::warn!("decode steps run eagerly from now on: {why}");
        self.enabled = false;
        self.graphs.clear();
    }
}

impl<B: PagedAttentionBackend> EagerStep<B> {
    /// What the step produced, read as a graph step's output.
    fn output(self) -> GraphOutput<B> {
        match self.tokens {
            Some(tokens) => GraphOutput::Tokens(sampler::read_ids(tokens.into_data())),
            None => GraphOutput::Hidden(self.hidden),
        }
    }
}

/// The eager pass over graph-shaped inputs (i32 ids and positions, block tables of the fixed
/// width): the forward pass, and with `pick_params` the LM head over every row and the
/// device's token pick.
fn eager_step<B: PagedAttentionBackend>(
    ctx: ForwardContext<'_, B>,
    step: &StepInputs,
    ids: Vec<i32>,
    host: FlatHostMetadata,
    pick_params: Option<&[i32]>,
) -> EagerStep<B> {
    let len = ids.len();
    let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [len]), (ctx.device, DType::I32));
    let mut metadata = AttentionMetadata::<B>::with_padded_groups(&step.layout, ctx.windows, ctx.device, false);
    metadata.flat = FlatMetadata::upload(host, ctx.device);
    let flat = &metadata.flat;
    let tables = flat.block_tables.clone().reshape([flat.block_tables.dims().iter().product::<usize>()]);
    let mut inputs = vec![ids.clone(), flat.token_pos.clone(), flat.slot_mapping.clone(), flat.token_seq.clone(), tables];
    let hidden = ctx.model.forward(ids, flat.token_pos.clone(), ctx.cache, &metadata);
    let tokens = pick_params.and_then(|params| {
        let params = Tensor::<B, 1, Int>::from_data(TensorData::new(params.to_vec(), [params.len()]), (ctx.device, DType::I32));
        inputs.push(params.clone());
        B::sample_tokens_device(ctx.model.compute_logits(hidden.clone()), params)
    });
    EagerStep { hidden, tokens, inputs }
}
