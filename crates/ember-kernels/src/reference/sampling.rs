//! Reference body of [`crate::SamplingBackend::sample_tokens`]: greedy rows take the argmax;
//! the others are sampled by inverse CDF on the device with one host-drawn uniform per row.
//!
//! A full prefix sum over a 100k+ vocabulary is quadratic with burn's cumsum kernel, so the
//! search is two-level: the vocabulary is split into chunks of [`CHUNK`] tokens, a prefix sum
//! over chunk masses picks the chunk holding the target mass, and a prefix sum inside that chunk
//! picks the token. The target inside the chunk is renormalised to the chunk's own prefix sum,
//! so a token of zero probability (masked) is never returned.

use burn_tensor::{Bool, DType, Int, Tensor, TensorData, activation::softmax, backend::Backend};

/// Tokens per chunk.
const CHUNK: usize = 256;

/// One token per row of `logits` (`[rows, vocab]`, cast to f32 and divided by
/// `temperatures[row]` unless all are 1): the argmax where `uniforms[row] < 0` (greedy rows),
/// else [`inverse_cdf`] with that uniform.
pub fn sample_tokens<B: Backend>(logits: Tensor<B, 2>, uniforms: &[f32], temperatures: &[f32]) -> Tensor<B, 2, Int> {
    let device = logits.device();
    let n = uniforms.len();
    let logits = logits.cast(burn_tensor::FloatDType::F32);
    let logits = if temperatures.iter().all(|&t| t == 1.0) {
        logits
    } else {
        logits / Tensor::<B, 2>::from_data(TensorData::new(temperatures.to_vec(), [n, 1]), (&device, DType::F32))
    };
    let greedy_ids = logits.clone().argmax(1);
    if uniforms.iter().all(|&u| u < 0.0) {
        return greedy_ids;
    }
    let column: Vec<f32> = uniforms.iter().map(|&u| if u < 0.0 { 0.5 } else { u }).collect();
    let sampled = inverse_cdf(logits, Tensor::from_data(TensorData::new(column, [n, 1]), (&device, DType::F32)));
    let greedy: Vec<bool> = uniforms.iter().map(|&u| u < 0.0).collect();
    let is_greedy = Tensor::<B, 2, Bool>::from_data(TensorData::new(greedy, [n, 1]), &device);
    sampled.mask_where(is_greedy, greedy_ids)
}

/// Samples one token per row from `softmax(logits)`; `uniform` is `[rows, 1]` in (0, 1).
pub fn inverse_cdf<B: Backend>(logits: Tensor<B, 2>, uniform: Tensor<B, 2>) -> Tensor<B, 2, Int> {
    let [n, vocab] = logits.dims();
    let chunk = CHUNK.min(vocab);
    let chunks = vocab.div_ceil(chunk);
    let mut probs = softmax(logits, 1);
    if chunks * chunk > vocab {
        let pad = Tensor::zeros([n, chunks * chunk - vocab], &probs.device());
        probs = Tensor::cat(vec![probs, pad], 1);
    }
    let probs = probs.reshape([n, chunks, chunk]);

    let chunk_mass = probs.clone().sum_dim(2).reshape([n, chunks]);
    let chunk_cum = chunk_mass.clone().cumsum(1);
    let total = chunk_cum.clone().narrow(1, chunks - 1, 1);
    let target = uniform * total;
    let j = count_below(chunk_cum.clone(), target.clone(), chunks);

    let before = chunk_cum.gather(1, j.clone()) - chunk_mass.clone().gather(1, j.clone());
    let mass_j = chunk_mass.gather(1, j.clone());
    let inside = probs
        .gather(1, j.clone().reshape([n, 1, 1]).expand([n, 1, chunk]))
        .reshape([n, chunk])
        .cumsum(1);
    let inside_total = inside.clone().narrow(1, chunk - 1, 1);
    let fraction = ((target - before) / mass_j).clamp(1e-7, 1.0);
    let offset = count_below(inside, fraction * inside_total, chunk);
    j * (chunk as i64) + offset
}

/// Per row, the number of entries of the non-decreasing `cum` below `target`, capped at
/// `len - 1`: the index of the first entry reaching `target`.
fn count_below<B: Backend>(cum: Tensor<B, 2>, target: Tensor<B, 2>, len: usize) -> Tensor<B, 2, Int> {
    let [n, _] = cum.dims();
    cum.lower(target.expand([n, len]))
        .float()
        .sum_dim(1)
        .clamp_max((len - 1) as f32)
        .int()
}
