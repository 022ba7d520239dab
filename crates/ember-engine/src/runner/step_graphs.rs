//! Graphs of decode steps (vLLM's CUDA-graph capture; `--enforce-eager` turns them off).
//!
//! At batch 1 a decode step launches ~330 kernels, most of them a few microseconds long, and
//! launching them one by one through cubecl costs more than running them. On a backend that
//! can capture a forward pass ([`StepGraphBackend`]), a decode step (one token per sequence)
//! of at most [`max_graph_seqs`] sequences runs through a graph instead, one per number of
//! sequences and [`StepGraphBackend::step_graph_context_key`]:
//!
//! 1. the first step of a key runs eagerly while the backend records it; its results are the
//!    step's, and the recording becomes the graph;
//! 2. the second replays the graph, then runs the same step eagerly and compares the two
//!    hidden states bit for bit: a graph that missed a launch (a burn op the backend could not
//!    record) differs, and all graphs are dropped for the rest of the run, with a warning;
//! 3. later steps replay only: the step's token ids, positions, slots and block tables are
//!    copied into the captured input buffers (block tables padded to `max_model_len`), the
//!    graph runs, and the captured output tensor holds the hidden states.
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

use super::inputs::StepInputs;

/// Largest decode batch run through a graph: the rows whose linear layers run the GEMV
/// (`ember_kernels::gemv_max_rows`; the GEMM above takes TMA descriptors, which graphs do not
/// record).
pub(crate) fn max_graph_seqs() -> usize {
    ember_kernels::gemv_max_rows()
}

/// Which graph a decode step needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct GraphKey {
    num_seqs: usize,
    context: usize,
}

/// A captured step and the tensor its replays write the hidden states into.
struct Captured<B: PagedAttentionBackend> {
    graph: Box<dyn StepGraph>,
    hidden: Tensor<B, 2>,
    validated: bool,
}

/// The runner's step graphs.
pub(crate) struct StepGraphs<B: PagedAttentionBackend> {
    enabled: bool,
    /// Block-table columns of every graph step: enough for `max_model_len`.
    table_width: usize,
    graphs: HashMap<GraphKey, Captured<B>>,
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
        Self { enabled: false, table_width: 1, graphs: HashMap::new() }
    }

    /// Graphs for decode steps when the backend supports them on `device`.
    pub(crate) fn new(device: &B::Device, max_model_len: usize, block_size: usize) -> Self {
        let enabled = B::supports_step_graphs(device);
        if enabled {
            let max = max_graph_seqs();
            tracing::info!(max_batch = max, "decode steps of up to {max} sequences run as CUDA graphs (--enforce-eager turns this off)");
        }
        Self { enabled, table_width: max_model_len.div_ceil(block_size).max(1), graphs: HashMap::new() }
    }

    /// The step's hidden states through a graph, when it is a decode step graphs cover;
    /// `None`: the caller runs it eagerly.
    pub(crate) fn forward(&mut self, ctx: ForwardContext<'_, B>, step: &StepInputs) -> Option<Tensor<B, 2>> {
        let layout = &step.layout;
        let num_seqs = layout.seqs.len();
        if !self.enabled || num_seqs == 0 || num_seqs > max_graph_seqs() || layout.num_tokens() != num_seqs {
            return None;
        }
        let host = FlatHostMetadata::new(layout, self.table_width);
        if host.max_blocks_per_seq != self.table_width {
            return None;
        }
        let key = GraphKey { num_seqs, context: B::step_graph_context_key(num_seqs, host.max_context_len) };
        let ids: Vec<i32> = step.input_ids.iter().map(|&t| t as i32).collect();
        if !self.graphs.contains_key(&key) {
            return Some(self.capture(ctx, step, key, ids, host));
        }
        let captured = self.graphs.get_mut(&key).expect("checked above");
        let _ = B::sync(ctx.device); // earlier steps' cubecl work is done before the graph runs
        let inputs: [&[i32]; 5] = [&ids, &host.token_pos, &host.slot_mapping, &host.token_seq, &host.block_tables];
        if let Err(why) = captured.graph.replay(&inputs) {
            self.disable(&format!("a replay failed: {why}"));
            return None;
        }
        let hidden = captured.hidden.clone();
        if captured.validated {
            return Some(hidden);
        }
        let eager = eager_forward(ctx, step, ids, host).0;
        let (graph_bits, eager_bits) = (hidden.clone().into_data(), eager.clone().into_data());
        if graph_bits.as_bytes() == eager_bits.as_bytes() {
            self.graphs.get_mut(&key).expect("checked above").validated = true;
            tracing::debug!(num_seqs, "step graph matches the eager pass");
            Some(hidden)
        } else {
            self.disable("a replay differs from the eager pass (a launch was not recorded)");
            Some(eager)
        }
    }

    /// Runs the step eagerly while the backend records it, and keeps the graph.
    fn capture(&mut self, ctx: ForwardContext<'_, B>, step: &StepInputs, key: GraphKey, ids: Vec<i32>, host: FlatHostMetadata) -> Tensor<B, 2> {
        let device = ctx.device.clone();
        let cache = ctx.cache.tensors();
        B::begin_step_graph(&device);
        let (hidden, inputs) = eager_forward(ctx, step, ids, host);
        match B::end_step_graph(&device, &inputs, &cache) {
            Ok(graph) => {
                tracing::debug!(num_seqs = key.num_seqs, context = key.context, "captured a step graph");
                self.graphs.insert(key, Captured { graph, hidden: hidden.clone(), validated: false });
            }
            Err(why) => self.disable(&format!("the capture failed: {why}")),
        }
        hidden
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

/// The eager forward pass over graph-shaped inputs (i32 ids and positions, block tables of
/// the fixed width); returns the hidden states and the input tensors in replay order.
fn eager_forward<B: PagedAttentionBackend>(
    ctx: ForwardContext<'_, B>,
    step: &StepInputs,
    ids: Vec<i32>,
    host: FlatHostMetadata,
) -> (Tensor<B, 2>, Vec<Tensor<B, 1, Int>>) {
    let len = ids.len();
    let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids, [len]), (ctx.device, DType::I32));
    let mut metadata = AttentionMetadata::<B>::with_padded_groups(&step.layout, ctx.windows, ctx.device, false);
    metadata.flat = FlatMetadata::upload(host, ctx.device);
    let flat = &metadata.flat;
    let tables = flat.block_tables.clone().reshape([flat.block_tables.dims().iter().product::<usize>()]);
    let inputs = vec![ids.clone(), flat.token_pos.clone(), flat.slot_mapping.clone(), flat.token_seq.clone(), tables];
    let hidden = ctx.model.forward(ids, flat.token_pos.clone(), ctx.cache, &metadata);
    (hidden, inputs)
}
