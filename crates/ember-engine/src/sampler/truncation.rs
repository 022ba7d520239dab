//! min_p, top_k and top_p truncation of temperature-scaled logits, without sorting.
//!
//! burn has no device sort, so thresholds are found by bisection on the value axis:
//! - top_k: the largest `t` with `count(x >= t) >= k` (ties at the k-th value are all kept);
//! - top_p: the largest `t` with `sum(p[p >= t]) >= top_p · sum(p)` over the probabilities after
//!   top_k, i.e. the smallest set of most likely tokens holding `top_p` of the mass;
//! - min_p: tokens with `p < min_p · max(p)` are dropped.
//!
//! After [`BISECTION_STEPS`] halvings the bracket is below f32 resolution for any realistic
//! logit range. Rows that disable a criterion are unaffected by it.

use burn_tensor::{Bool, Tensor, TensorData, activation::softmax, backend::Backend};

use super::{SamplingRow, column};

/// Halvings of the threshold bracket.
const BISECTION_STEPS: usize = 32;

/// Whether any row truncates (min_p, top_k below the vocabulary, or top_p below 1).
pub(crate) fn needed(rows: &[SamplingRow<'_>], vocab: usize) -> bool {
    rows.iter().any(|r| r.params.min_p > 0.0 || r.params.top_k().is_some_and(|k| k < vocab) || r.params.top_p < 1.0)
}

/// Applies min_p, then top_k, then top_p (vLLM's order) to `x` (`[rows, vocab]`).
pub(crate) fn apply<B: Backend>(mut x: Tensor<B, 2>, rows: &[SamplingRow<'_>]) -> Tensor<B, 2> {
    let device = x.device();
    let [n, vocab] = x.dims();
    if rows.iter().any(|r| r.params.min_p > 0.0) {
        let min_p: Vec<f32> = rows.iter().map(|r| r.params.min_p).collect();
        let probs = softmax(x.clone(), 1);
        let threshold = probs.clone().max_dim(1) * column(min_p, &device);
        x = x.mask_fill(probs.lower(threshold.expand([n, vocab])), f32::NEG_INFINITY);
    }
    if rows.iter().any(|r| r.params.top_k().is_some_and(|k| k < vocab)) {
        let k: Vec<f32> = rows
            .iter()
            .map(|r| r.params.top_k().map_or(vocab, |k| k.min(vocab)) as f32)
            .collect();
        let threshold = kth_largest(x.clone(), column(k, &device));
        x = x.clone().mask_fill(x.lower(threshold.expand([n, vocab])), f32::NEG_INFINITY);
    }
    if rows.iter().any(|r| r.params.top_p < 1.0) {
        let p: Vec<f32> = rows.iter().map(|r| r.params.top_p.min(1.0)).collect();
        let disabled: Vec<bool> = rows.iter().map(|r| r.params.top_p >= 1.0).collect();
        let probs = softmax(x.clone(), 1);
        let threshold = top_p_threshold(probs.clone(), column(p, &device));
        let disabled = Tensor::<B, 2, Bool>::from_data(TensorData::new(disabled, [n, 1]), &device);
        let drop = probs.lower(threshold.expand([n, vocab])).bool_and(disabled.bool_not().expand([n, vocab]));
        x = x.mask_fill(drop, f32::NEG_INFINITY);
    }
    x
}

/// Per row, the largest `t` such that at least `k` entries are `>= t` (`k` clamped to the
/// number of finite entries).
fn kth_largest<B: Backend>(x: Tensor<B, 2>, k: Tensor<B, 2>) -> Tensor<B, 2> {
    let [n, vocab] = x.dims();
    let finite = x.clone().is_finite();
    let k = k.min_pair(finite.clone().float().sum_dim(1));
    let mut hi = x.clone().max_dim(1);
    let mut lo = x.clone().mask_fill(finite.bool_not(), f32::INFINITY).min_dim(1);
    for _ in 0..BISECTION_STEPS {
        let mid = (lo.clone() + hi.clone()) / 2.0;
        let count = x.clone().greater_equal(mid.clone().expand([n, vocab])).float().sum_dim(1);
        let ok = count.greater_equal(k.clone());
        lo = lo.mask_where(ok.clone(), mid.clone());
        hi = mid.mask_where(ok, hi);
    }
    lo
}

/// Per row, the largest `t` such that `sum(p[p >= t]) >= top_p · sum(p)`.
fn top_p_threshold<B: Backend>(probs: Tensor<B, 2>, top_p: Tensor<B, 2>) -> Tensor<B, 2> {
    let [n, vocab] = probs.dims();
    let mass_at = |t: &Tensor<B, 2>| {
        probs
            .clone()
            .mask_fill(probs.clone().lower(t.clone().expand([n, vocab])), 0.0)
            .sum_dim(1)
    };
    let target = probs.clone().sum_dim(1) * top_p;
    let top = probs.clone().max_dim(1);
    let mut lo = top.zeros_like();
    let mut hi = top.clone();
    for _ in 0..BISECTION_STEPS {
        let mid = (lo.clone() + hi.clone()) / 2.0;
        let ok = mass_at(&mid).greater_equal(target.clone());
        lo = lo.mask_where(ok.clone(), mid.clone());
        hi = mid.mask_where(ok, hi);
    }
    // The most likely token alone may already hold enough mass.
    let top_suffices = mass_at(&top).greater_equal(target);
    lo.mask_where(top_suffices, top)
}
