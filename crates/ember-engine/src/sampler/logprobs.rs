//! Logprobs on the device: the chosen token's logprob and rank, and the top-n alternatives.
//!
//! The top-n are found by n rounds of argmax + masking (n is at most `--max-logprobs`), which
//! every backend supports; ranks follow vLLM: 1 + the number of tokens strictly more likely.

use burn_tensor::{Int, Tensor, TensorData, backend::Backend};
use ember_core::{Logprob, PositionLogprobs};

use super::read_ids;

/// Logprob tensors of a batch, waiting to be read back.
pub(crate) struct LogprobsReadback<B: Backend> {
    /// `[rows, 1]` logprob of the chosen token.
    chosen: Tensor<B, 2>,
    /// `[rows, 1]` its rank.
    rank: Tensor<B, 2>,
    /// `[rows, n]` top ids and logprobs (n may be 0).
    top_ids: Option<Tensor<B, 2, Int>>,
    top_values: Option<Tensor<B, 2>>,
    n: usize,
}

/// Per-row logprobs read back: the chosen token and the top `n` of the batch.
#[derive(Debug, Clone)]
pub(crate) struct RowLogprobs(pub PositionLogprobs);

impl RowLogprobs {
    /// Keeps the first `n` alternatives (each row asks for its own count).
    pub(crate) fn truncated(&self, n: usize) -> PositionLogprobs {
        let mut lp = self.0.clone();
        lp.top.truncate(n);
        lp
    }
}

/// `logprobs`: `[rows, vocab]` log-softmax; `chosen`: `[rows, 1]` token ids; `n`: alternatives.
pub(crate) fn top_logprobs<B: Backend>(logprobs: Tensor<B, 2>, chosen: Tensor<B, 2, Int>, n: usize) -> LogprobsReadback<B> {
    let [rows, vocab] = logprobs.dims();
    let chosen_lp = logprobs.clone().gather(1, chosen);
    let rank = logprobs.clone().greater(chosen_lp.clone().expand([rows, vocab])).float().sum_dim(1) + 1.0;
    let (top_ids, top_values) = if n == 0 {
        (None, None)
    } else {
        let positions = Tensor::<B, 1, Int>::arange(0..vocab as i64, &logprobs.device()).reshape([1, vocab]).expand([rows, vocab]);
        let mut remaining = logprobs;
        let mut ids = Vec::with_capacity(n);
        let mut values = Vec::with_capacity(n);
        for _ in 0..n.min(vocab) {
            let id = remaining.clone().argmax(1);
            values.push(remaining.clone().gather(1, id.clone()));
            let hit = positions.clone().equal(id.clone().expand([rows, vocab]));
            remaining = remaining.mask_fill(hit, f32::NEG_INFINITY);
            ids.push(id);
        }
        (Some(Tensor::cat(ids, 1)), Some(Tensor::cat(values, 1)))
    };
    LogprobsReadback { chosen: chosen_lp, rank, top_ids, top_values, n: n.min(vocab) }
}

impl<B: Backend> LogprobsReadback<B> {
    /// Adds this readback's tensors to a transaction (read in the same transfer as the ids).
    pub(crate) fn register(&self, tx: burn_tensor::Transaction<B>) -> burn_tensor::Transaction<B> {
        let mut tx = tx.register(self.chosen.clone()).register(self.rank.clone());
        if let (Some(ids), Some(values)) = (&self.top_ids, &self.top_values) {
            tx = tx.register(ids.clone()).register(values.clone());
        }
        tx
    }

    /// Takes this readback's data (registered by [`Self::register`]) off `data`.
    pub(crate) fn unpack(self, data: &mut impl Iterator<Item = TensorData>, chosen_ids: &[u32]) -> Vec<RowLogprobs> {
        let mut next_f32 = || -> Vec<f32> {
            data.next().expect("logprob tensors were registered").convert::<f32>().to_vec().expect("f32 data")
        };
        let chosen = next_f32();
        let rank = next_f32();
        let (top_ids, top_values) = if self.top_ids.is_some() {
            let ids = read_ids(data.next().expect("top ids were registered"));
            (ids, next_f32_from(data))
        } else {
            (Vec::new(), Vec::new())
        };
        let n = self.n;
        chosen_ids
            .iter()
            .enumerate()
            .map(|(r, &token_id)| {
                let top = (0..n)
                    .map(|i| Logprob { token_id: top_ids[r * n + i], logprob: top_values[r * n + i], rank: i + 1 })
                    .collect();
                RowLogprobs(PositionLogprobs {
                    token: Logprob { token_id, logprob: chosen[r], rank: rank[r] as usize },
                    top,
                })
            })
            .collect()
    }
}

fn next_f32_from(data: &mut impl Iterator<Item = TensorData>) -> Vec<f32> {
    data.next().expect("top values were registered").convert::<f32>().to_vec().expect("f32 data")
}
