//! The sampler, on the device: logits in, token ids (and the requested logprobs) out.
//!
//! Order of operations, as vLLM v1: raw logprobs for the output (before any processing);
//! min_tokens masking and logit_bias; repetition, frequency and presence penalties; greedy rows
//! take the argmax; the others are divided by their temperature, truncated by min_p, top_k and
//! top_p, and sampled by inverse-CDF with one uniform number per row drawn from the request's
//! own generator (so a seed gives the same tokens whatever else is in the batch). The final pick
//! (argmax or inverse CDF) is the backend's [`SamplingBackend::sample_tokens`].
//!
//! Everything runs as burn ops on `[rows, vocab]` tensors; the host uploads only small per-row
//! parameters and reads back token ids plus the requested top logprobs. Batches that need
//! only a temperature skip the processing and go to the pick directly ([`sample`]).

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

use burn_tensor::{Int, Tensor, TensorData, activation::log_softmax, backend::Backend};
use ember_kernels::SamplingBackend;

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

/// Samples one token per row of `logits` (`[rows, vocab]`, the LM head's dtype or f32).
///
/// Rows that need no processing but their temperature (no penalties, truncation or logprobs:
/// the common case, and every benchmark) take the plain path: the logits go to the backend's
/// pick as they are, and it applies the temperature while reading them. Otherwise they are
/// cast to f32 and processed as above first.
pub(crate) fn sample<B: SamplingBackend>(logits: Tensor<B, 2>, rows: &[SamplingRow<'_>]) -> SampledBatch<B> {
    let device = logits.device();
    let [_, vocab] = logits.dims();
    let (uniforms, temperatures) = pick_params(rows);
    let max_logprobs = rows.iter().filter_map(|r| r.params.logprobs).max();
    let updates = penalties::collect(rows, vocab);
    if max_logprobs.is_none() && updates.is_none() && !truncation::needed(rows, vocab) {
        return SampledBatch { token_ids: B::sample_tokens(logits, &uniforms, &temperatures), logprobs: None };
    }

    let logits = logits.cast(burn_tensor::FloatDType::F32);
    let raw_logprobs = max_logprobs.map(|_| log_softmax(logits.clone(), 1));
    let logits = match updates {
        Some(updates) => penalties::apply(logits, updates),
        None => logits,
    };
    let logits = if rows.iter().all(|r| r.params.is_greedy()) {
        logits
    } else {
        truncation::apply(logits / column(temperatures.clone(), &device), rows)
    };
    let ones = vec![1.0; rows.len()];
    let token_ids = B::sample_tokens(logits, &uniforms, &ones);
    let logprobs = raw_logprobs.map(|lp| top_logprobs(lp, token_ids.clone(), max_logprobs.unwrap_or(0)));
    SampledBatch { token_ids, logprobs }
}

/// The pick's per-row uniforms and temperatures. Greedy rows are marked by a negative
/// uniform; they keep temperature 1 (the argmax is the same after truncation, which always
/// keeps the top token).
fn pick_params(rows: &[SamplingRow<'_>]) -> (Vec<f32>, Vec<f32>) {
    let uniforms = rows.iter().map(|r| if r.params.is_greedy() { -1.0 } else { r.uniform }).collect();
    let temperatures = rows.iter().map(|r| if r.params.is_greedy() { 1.0 } else { r.params.temperature }).collect();
    (uniforms, temperatures)
}

/// When the rows take [`sample`]'s plain path (nothing but a temperature: no logprobs,
/// penalties, bias, min_tokens or truncation), the pick's parameters as the device expects
/// them ([`SamplingBackend::sample_tokens_device`]: the f32 bits of the uniforms, then of the
/// temperatures), so that a step graph can sample itself; `None` otherwise.
pub(crate) fn plain_pick_params(rows: &[SamplingRow<'_>], vocab: usize) -> Option<Vec<i32>> {
    let plain = rows.iter().all(|r| r.params.logprobs.is_none()) && penalties::collect(rows, vocab).is_none() && !truncation::needed(rows, vocab);
    if !plain {
        return None;
    }
    let (uniforms, temperatures) = pick_params(rows);
    Some(uniforms.iter().chain(&temperatures).map(|v| v.to_bits() as i32).collect())
}

impl<B: SamplingBackend> SampledBatch<B> {
    /// The sampled ids on the device, `[rows, 1]`.
    pub(crate) fn token_ids(&self) -> Tensor<B, 2, Int> {
        self.token_ids.clone()
    }

    /// Starts the read-back: ids alone are copied behind the work queued so far and waited
    /// for later; a batch with logprobs is read at once ([`Self::read`]).
    pub(crate) fn read_early(self, rows: &[SamplingRow<'_>]) -> SampleRead {
        if self.logprobs.is_none() {
            return SampleRead::Pending(B::read_ids_early(self.token_ids));
        }
        SampleRead::Ready(self.read(rows))
    }
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
pub(crate) use ember_kernels::read_ids;

/// Whether a request's sampling needs the host to wait for the step before it: penalties and
/// `min_tokens` read the token history (which lacks the tokens of a step in flight), and
/// logprobs are read back with the tokens in one synchronous transfer.
pub(crate) fn needs_sync(p: &ember_core::SamplingParams) -> bool {
    p.repetition_penalty != 1.0
        || p.frequency_penalty != 0.0
        || p.presence_penalty != 0.0
        || p.min_tokens > 0
        || p.logprobs.is_some()
        || p.prompt_logprobs.is_some()
}

/// A batch's tokens on their way to the host.
pub(crate) enum SampleRead {
    /// Read at once (logprobs came with them).
    Ready(Vec<SampledToken>),
    /// Only ids, still being copied ([`SamplingBackend::read_ids_early`]).
    Pending(ember_kernels::PendingIds),
}
