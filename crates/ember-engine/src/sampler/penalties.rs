//! Logit processing that touches few entries per row: `min_tokens` (end-of-sequence and stop ids
//! masked), `logit_bias`, and the repetition, frequency and presence penalties.
//!
//! The host lists the affected `(row, token)` entries with their parameters (a few per generated
//! token, never the vocabulary); the device gathers those logits, computes
//! `rep(l + bias) - frequency·count - presence·[count > 0]` (or -inf when masked), with
//! `rep(x) = x / p` for `x > 0` and `x · p` otherwise as vLLM, and scatters them back.

use std::collections::BTreeMap;

use burn_tensor::{Bool, IndexingUpdateOp, Int, Tensor, TensorData, backend::Backend};

use super::SamplingRow;

#[derive(Default, Clone, Copy)]
struct Entry {
    in_history: bool,
    output_count: u32,
    bias: f32,
    masked: bool,
}

/// The logit updates of one batch, listed on the host.
pub(crate) struct Updates {
    index: Vec<i64>,
    rep: Vec<f32>,
    sub: Vec<f32>,
    bias: Vec<f32>,
    masked: Vec<bool>,
}

/// The updates `rows` need over a vocabulary of `vocab`; `None` when no row needs any.
pub(crate) fn collect(rows: &[SamplingRow<'_>], vocab: usize) -> Option<Updates> {
    let mut index = Vec::new();
    let mut rep = Vec::new();
    let mut sub = Vec::new();
    let mut bias = Vec::new();
    let mut masked = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        let p = row.params;
        let mut entries: BTreeMap<u32, Entry> = BTreeMap::new();
        if p.repetition_penalty != 1.0 {
            for &t in row.prompt.iter().chain(row.output) {
                entries.entry(t).or_default().in_history = true;
            }
        }
        if p.frequency_penalty != 0.0 || p.presence_penalty != 0.0 {
            for &t in row.output {
                entries.entry(t).or_default().output_count += 1;
            }
        }
        for (&t, &b) in &p.logit_bias {
            entries.entry(t).or_default().bias = b;
        }
        if row.output.len() < p.min_tokens {
            for &t in row.eos_token_ids.iter().chain(&p.stop_token_ids) {
                entries.entry(t).or_default().masked = true;
            }
        }
        for (t, e) in entries {
            if t as usize >= vocab {
                continue; // validated upstream; never index out of the row
            }
            index.push((r * vocab + t as usize) as i64);
            rep.push(if e.in_history { p.repetition_penalty } else { 1.0 });
            let count = e.output_count as f32;
            sub.push(p.frequency_penalty * count + if e.output_count > 0 { p.presence_penalty } else { 0.0 });
            bias.push(e.bias);
            masked.push(e.masked);
        }
    }
    (!index.is_empty()).then_some(Updates { index, rep, sub, bias, masked })
}

/// Applies `updates` to `logits` (`[rows, vocab]`, f32).
pub(crate) fn apply<B: Backend>(logits: Tensor<B, 2>, updates: Updates) -> Tensor<B, 2> {
    let [n, vocab] = logits.dims();
    let Updates { index, rep, sub, bias, masked } = updates;
    let device = logits.device();
    let m = index.len();
    let vector = |v: Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v, [m]), (&device, burn_tensor::DType::F32));
    let index = Tensor::<B, 1, Int>::from_data(TensorData::new(index, [m]), &device);
    let masked = Tensor::<B, 1, Bool>::from_data(TensorData::new(masked, [m]), &device);
    let (rep, sub, bias) = (vector(rep), vector(sub), vector(bias));

    let flat = logits.reshape([n * vocab]);
    let current = flat.clone().select(0, index.clone()) + bias;
    let positive = current.clone().greater_elem(0.0);
    let penalised = (current.clone() * rep.clone()).mask_where(positive, current / rep) - sub;
    let updated = penalised.mask_fill(masked, f32::NEG_INFINITY);
    flat.scatter_nd(index.reshape([m, 1]), updated, IndexingUpdateOp::Assign)
        .reshape([n, vocab])
}
