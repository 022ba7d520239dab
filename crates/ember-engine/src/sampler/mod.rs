//! The sampler, on the device: logits in, token ids (and the requested logprobs) out.
//!
//! Order of operations, as vLLM v1: raw logprobs for the output (before any processing);
//! min_tokens masking and logit_bias; repetition, frequency and presence penalties; greedy rows
//! take the argmax; the others are divided by their temperature, truncated by min_p, top_k and
//! top_p, and sampled by inverse-CDF with one uniform number per row drawn from the request's
//! own generator (so a seed gives the same tokens whatever else is in the batch).
//!
//! Everything runs as burn ops on `[rows, vocab]` tensors; the host uploads only small per-row
//! parameters and reads back token ids plus the requested top logprobs.

mod inverse_cdf;
mod logprobs;
mod penalties;
mod rng;
mod row;
mod truncation;

#[cfg(test)]
mod tests;

pub(crate) use logprobs::{LogprobsReadback, top_logprobs};
pub(crate) use rng::RequestGenerators;
pub(crate) use row::SamplingRow;

use burn_tensor::{Bool, Int, Tensor, TensorData, activation::log_softmax, backend::Backend};

/// What the sampler produces for one batch, still on the device until [`SampledBatch::read`].
pub(crate) struct SampledBatch<B: Backend> {
    token_ids: Tensor<B, 2, Int>,
    logprobs: Option<LogprobsReadback<B>>,
}

/// Host-side result for one row.
#[derive(Debug, Clone)]
pub(crate) struct SampledToken {
    pub token_id: u32,
    pub logprobs: Option<ember_core::SampleLogprobs>,
}

/// Samples one token per row of `logits` (`[rows, vocab]`, f32).
pub(crate) fn sample<B: Backend>(logits: Tensor<B, 2>, rows: &[SamplingRow<'_>]) -> SampledBatch<B> {
    let device = logits.device();
    let [n, _] = logits.dims();
    let max_logprobs = rows.iter().filter_map(|r| r.params.logprobs).max();
    let raw_logprobs = max_logprobs.map(|_| log_softmax(logits.clone(), 1));

    let logits = penalties::apply(logits, rows);
    let greedy_ids = logits.clone().argmax(1);
    let token_ids = if rows.iter().all(|r| r.params.is_greedy()) {
        greedy_ids
    } else {
        let temperatures: Vec<f32> = rows
            .iter()
            .map(|r| if r.params.is_greedy() { 1.0 } else { r.params.temperature })
            .collect();
        let scaled = logits / column(temperatures, &device);
        let truncated = truncation::apply(scaled, rows);
        let uniforms: Vec<f32> = rows.iter().map(|r| r.uniform).collect();
        let sampled = inverse_cdf::sample(truncated, column(uniforms, &device));
        let greedy: Vec<bool> = rows.iter().map(|r| r.params.is_greedy()).collect();
        let is_greedy = Tensor::<B, 2, Bool>::from_data(TensorData::new(greedy, [n, 1]), &device);
        sampled.mask_where(is_greedy, greedy_ids)
    };
    let logprobs = raw_logprobs.map(|lp| top_logprobs(lp, token_ids.clone(), max_logprobs.unwrap_or(0)));
    SampledBatch { token_ids, logprobs }
}

impl<B: Backend> SampledBatch<B> {
    /// Reads the batch back (one transfer) and shapes it per row.
    pub(crate) fn read(self, rows: &[SamplingRow<'_>]) -> Vec<SampledToken> {
        let mut tx = burn_tensor::Transaction::default().register(self.token_ids);
        if let Some(lp) = &self.logprobs {
            tx = lp.register(tx);
        }
        let mut data = tx.execute().into_iter();
        let ids = read_ids(data.next().expect("token ids were registered"));
        let logprobs = self.logprobs.map(|lp| lp.unpack(&mut data, &ids));
        ids.iter()
            .enumerate()
            .map(|(i, &token_id)| SampledToken {
                token_id,
                logprobs: match (&logprobs, rows[i].params.logprobs) {
                    (Some(all), Some(n)) => Some(all[i].truncated(n)),
                    _ => None,
                },
            })
            .collect()
    }
}

/// `[rows, 1]` f32 column on `device`.
pub(crate) fn column<B: Backend>(values: Vec<f32>, device: &B::Device) -> Tensor<B, 2> {
    let n = values.len();
    Tensor::from_data(TensorData::new(values, [n, 1]), (device, burn_tensor::DType::F32))
}

/// Integer tensor data (i32 or i64 depending on the backend) as u32 ids.
pub(crate) fn read_ids(data: TensorData) -> Vec<u32> {
    data.convert::<i64>()
        .to_vec::<i64>()
        .expect("integer tensor data converts to i64")
        .into_iter()
        .map(|v| v as u32)
        .collect()
}
