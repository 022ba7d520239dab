//! [`StepGraphBackend`]: replaying a step's forward pass as one device graph (vLLM's CUDA-graph
//! capture for decode). Launching hundreds of small kernels one by one costs more than the
//! kernels themselves at batch 1; a captured graph is launched once per step.
//!
//! The contract: between [`StepGraphBackend::begin_step_graph`] and
//! [`StepGraphBackend::end_step_graph`] the caller runs one forward pass eagerly (its results
//! are valid); the backend records what that pass launched. The graph it returns replays the
//! same launches on the same buffers: the caller then writes a new step's inputs into the
//! capture's input tensors (same shapes) through [`StepGraph::replay`], which also reads back
//! the small output tensors named at capture (the sampled token ids); larger outputs (the
//! hidden states) stay in their captured tensors for the caller to read. Backends without graphs keep the default bodies (unsupported),
//! and the engine runs every step eagerly.

use burn_tensor::{Int, Tensor, backend::Backend};

/// A captured forward pass.
pub trait StepGraph: Send {
    /// Writes `inputs` (i32 values, one slice per input tensor given at capture, in that
    /// order, each at most as long as its tensor) into the captured input buffers, runs the
    /// graph, waits for it, and copies the read-back tensors given at capture into `outputs`
    /// (one slice each, in that order, each filled from the tensor's first elements).
    ///
    /// # Errors
    /// A driver error, or inputs or outputs that do not fit the captured buffers.
    fn replay(&mut self, inputs: &[&[i32]], outputs: &mut [&mut [i32]]) -> Result<(), String>;
}

/// Backends that can capture a forward pass into a [`StepGraph`].
pub trait StepGraphBackend: Backend {
    /// Whether [`Self::end_step_graph`] can succeed on `device` at all.
    fn supports_step_graphs(_device: &Self::Device) -> bool {
        false
    }

    /// What of a step's token count and longest context its launches depend on (grid sizes):
    /// steps that differ here need different graphs. The default, the length itself, is
    /// always safe.
    fn step_graph_context_key(_num_tokens: usize, max_context_len: usize) -> usize {
        max_context_len
    }

    /// Starts recording what this thread launches on `device`.
    fn begin_step_graph(_device: &Self::Device) {}

    /// Stops recording and builds the graph; `inputs` are the i32 tensors the caller will
    /// rewrite before each replay, `read_back` the i32 tensors each replay copies back to the
    /// host. `external` are buffers the caller keeps alive and in place
    /// itself (the KV cache): the graph does not hold them, so that burn may still update them
    /// in place, and the caller must drop the graph if they move. Fails (and the caller stays
    /// eager) when anything launched during the recording cannot be replayed.
    ///
    /// # Errors
    /// Why the recording cannot become a graph.
    fn end_step_graph(
        _device: &Self::Device,
        _inputs: &[Tensor<Self, 1, Int>],
        _read_back: &[Tensor<Self, 2, Int>],
        _external: &[Tensor<Self, 4>],
    ) -> Result<Box<dyn StepGraph>, String> {
        Err("step graphs are not supported on this backend".into())
    }
}

crate::reference_backends!(StepGraphBackend);
