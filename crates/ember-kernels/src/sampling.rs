//! [`SamplingBackend`]: the backend-extension trait for the last step of sampling, picking one
//! token per row from processed logits (after penalties, temperature and truncation). The
//! default is the reference in burn ops ([`crate::reference::sampling`]); the CUDA backend
//! does it in one kernel (`kernels/sampling.cu`), which matters because the reference is a few
//! dozen launches over `[rows, vocab]` tensors every step.

use burn_tensor::{Int, Tensor, backend::Backend};

use crate::reference::sampling as reference;

/// Picks the sampled tokens.
pub trait SamplingBackend: Backend {
    /// One token id per row of `logits` (`[rows, vocab]`, any float dtype, read as f32 and
    /// divided by `temperatures[row]`) as `[rows, 1]`: the argmax where `uniforms[row] < 0`
    /// (greedy rows), else the first token at which the running sum of `softmax(logits[row])`
    /// reaches `uniforms[row]` (in (0, 1)) of the row's total; tokens of probability 0 (logit
    /// -inf) are never returned. Temperatures of 1 leave the logits as they are.
    fn sample_tokens(logits: Tensor<Self, 2>, uniforms: &[f32], temperatures: &[f32]) -> Tensor<Self, 2, Int> {
        reference::sample_tokens(logits, uniforms, temperatures)
    }

    /// [`Self::sample_tokens`] with the per-row parameters already on the device:
    /// `row_params` is `[2 rows]` i32 words holding the f32 bits of the uniforms, then of the
    /// temperatures (so that a step graph can take them as one of its i32 inputs and replay
    /// the pick with new ones). `None` (the default): the backend has no such kernel.
    fn sample_tokens_device(_logits: Tensor<Self, 2>, _row_params: Tensor<Self, 1, Int>) -> Option<Tensor<Self, 2, Int>> {
        None
    }

    /// `ids` with `ids[rows[i]] = sampled[from[i]]` for every `i` (all `[n]`): the inputs a step
    /// takes from the ids sampled by the step before it (async scheduling). The default is
    /// burn's select and scatter.
    fn patch_input_ids(ids: Tensor<Self, 1, Int>, rows: Tensor<Self, 1, Int>, sampled: Tensor<Self, 1, Int>, from: Tensor<Self, 1, Int>) -> Tensor<Self, 1, Int> {
        let n = rows.dims()[0];
        ids.scatter_nd(rows.reshape([n, 1]), sampled.select(0, from), burn_tensor::IndexingUpdateOp::Assign)
    }

    /// Starts copying the token ids `ids` to the host behind the work queued so far, so that
    /// the host can queue more work (the next step) before it waits for them
    /// ([`PendingIds::wait`]). The default reads them at once ([`PendingIds::Ready`]).
    fn read_ids_early(ids: Tensor<Self, 2, Int>) -> PendingIds {
        PendingIds::Ready(read_ids(ids.into_data()))
    }
}

/// Token ids on their way to the host ([`SamplingBackend::read_ids_early`]).
pub enum PendingIds {
    /// Already read.
    Ready(Vec<u32>),
    /// Being copied; the closure waits for the copy.
    Copying(Box<dyn FnOnce() -> Vec<u32> + Send>),
}

impl PendingIds {
    /// Whether the ids are already on the host.
    pub fn is_ready(&self) -> bool {
        matches!(self, Self::Ready(_))
    }

    /// Blocks until the ids are on the host.
    pub fn wait(self) -> Vec<u32> {
        match self {
            Self::Ready(ids) => ids,
            Self::Copying(wait) => wait(),
        }
    }
}

/// Integer tensor data as token ids.
pub fn read_ids(data: burn_tensor::TensorData) -> Vec<u32> {
    data.convert::<i64>().to_vec::<i64>().expect("integer tensor data converts to i64").into_iter().map(|v| v as u32).collect()
}

crate::reference_backends!(SamplingBackend);
