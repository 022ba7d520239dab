//! Sampler unit tests on the cpu backend: truncation thresholds against a sorted reference,
//! inverse-CDF frequencies against softmax, penalties, logprob ranks, and the plain path's
//! temperature.

use burn_tensor::{Tensor, TensorData};
use ember_core::SamplingParams;

use super::*;

type B = burn_ndarray::NdArray<f32>;

fn logits(rows: &[Vec<f32>]) -> Tensor<B, 2> {
    let v = rows[0].len();
    let flat: Vec<f32> = rows.iter().flatten().copied().collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), v]), &Default::default())
}

fn row<'a>(params: &'a SamplingParams, output: &'a [u32], uniform: f32) -> SamplingRow<'a> {
    SamplingRow { params, prompt: &[], output, eos_token_ids: &[], uniform }
}

fn to_vec(t: Tensor<B, 2>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

#[test]
fn top_k_keeps_exactly_the_k_largest() {
    let x = vec![0.3, 2.0, -1.0, 1.5, 0.9, 2.5, -0.2, 1.1];
    let p = SamplingParams { top_k: 3, temperature: 1.0, ..Default::default() };
    let out = to_vec(truncation::apply(logits(&[x.clone()]), &[row(&p, &[], 0.5)]));
    let kept: Vec<usize> = (0..x.len()).filter(|&i| out[i].is_finite()).collect();
    assert_eq!(kept, vec![1, 3, 5]);
}

#[test]
fn top_p_keeps_smallest_set_reaching_the_mass() {
    // probabilities 0.5, 0.25, 0.125, 0.125 (in log space)
    let x: Vec<f32> = [0.5f32, 0.25, 0.125, 0.125].iter().map(|p| p.ln()).collect();
    for (top_p, expected) in [(0.5, 1), (0.6, 2), (0.75, 2), (0.8, 4), (0.4, 1)] {
        let p = SamplingParams { top_p, ..Default::default() };
        let out = to_vec(truncation::apply(logits(&[x.clone()]), &[row(&p, &[], 0.5)]));
        let kept = out.iter().filter(|v| v.is_finite()).count();
        assert_eq!(kept, expected, "top_p {top_p}");
    }
}

#[test]
fn min_p_and_disabled_rows() {
    let x: Vec<f32> = [0.6f32, 0.3, 0.06, 0.04].iter().map(|p| p.ln()).collect();
    let strict = SamplingParams { min_p: 0.2, top_k: 1, top_p: 0.1, ..Default::default() };
    let off = SamplingParams::default();
    let out = to_vec(truncation::apply(logits(&[x.clone(), x.clone()]), &[row(&strict, &[], 0.5), row(&off, &[], 0.5)]));
    assert_eq!(out[..4].iter().filter(|v| v.is_finite()).count(), 1);
    assert!(out[4..].iter().all(|v| v.is_finite()), "a row with everything off is untouched");
}

#[test]
fn inverse_cdf_matches_softmax_frequencies() {
    let probs = [0.05f32, 0.4, 0.0, 0.3, 0.25];
    let x: Vec<f32> = probs.iter().map(|p| if *p > 0.0 { p.ln() } else { f32::NEG_INFINITY }).collect();
    let n = 1000;
    let rows: Vec<Vec<f32>> = vec![x; n];
    let u: Vec<f32> = (0..n).map(|i| (i as f32 + 0.5) / n as f32).collect();
    let ids = ember_kernels::reference::sampling::inverse_cdf(logits(&rows), column::<B>(u, &Default::default()));
    let ids = read_ids(ids.into_data());
    for (t, p) in probs.iter().enumerate() {
        let freq = ids.iter().filter(|&&i| i as usize == t).count() as f32 / n as f32;
        assert!((freq - p).abs() < 0.005, "token {t}: frequency {freq} vs probability {p}");
    }
}

#[test]
fn inverse_cdf_with_many_chunks() {
    // 1000 tokens (4 chunks of 256, padded); all mass on tokens 3, 300 and 999.
    let mut x = vec![f32::NEG_INFINITY; 1000];
    x[3] = 0.0;
    x[300] = 0.0;
    x[999] = 0.0;
    let u = vec![0.1, 0.5, 0.9, 0.999_9];
    let ids = ember_kernels::reference::sampling::inverse_cdf(logits(&vec![x; 4]), column::<B>(u, &Default::default()));
    assert_eq!(read_ids(ids.into_data()), vec![3, 300, 999, 999]);
}

#[test]
fn penalties_bias_and_min_tokens() {
    let x = vec![1.0, -1.0, 2.0, 0.5];
    let mut p = SamplingParams { repetition_penalty: 2.0, frequency_penalty: 0.5, presence_penalty: 0.25, min_tokens: 5, ..Default::default() };
    p.logit_bias.insert(3, 1.0);
    let output = [0u32, 0, 1];
    let r = SamplingRow { params: &p, prompt: &[2], output: &output, eos_token_ids: &[3], uniform: 0.5 };
    let updates = penalties::collect(&[r], x.len()).expect("this row has updates");
    let out = to_vec(penalties::apply(logits(&[x]), updates));
    // token 0: 1.0/2 - 0.5*2 - 0.25 = -0.75; token 1: -1*2 - 0.5 - 0.25 = -2.75;
    // token 2 (prompt only): 2/2 = 1; token 3: eos masked (min_tokens not reached).
    assert_eq!(out, vec![-0.75, -2.75, 1.0, f32::NEG_INFINITY]);
}

#[test]
fn greedy_and_logprob_ranks() {
    let x = vec![0.1, 3.0, 2.0, -1.0];
    let mut p = SamplingParams::greedy();
    p.logprobs = Some(2);
    let rows = [row(&p, &[], 0.5)];
    let out = sample(logits(&[x.clone()]), &rows).read(&rows);
    assert_eq!(out[0].token_id, 1);
    let lp = out[0].logprobs.as_ref().unwrap();
    assert_eq!(lp.token.rank, 1);
    assert_eq!(lp.top.iter().map(|l| l.token_id).collect::<Vec<_>>(), vec![1, 2]);
    let norm: f32 = x.iter().map(|v| v.exp()).sum::<f32>().ln();
    assert!((lp.top[1].logprob - (2.0 - norm)).abs() < 1e-5);
}

#[test]
fn seeded_rows_do_not_depend_on_batch_neighbours() {
    let x = vec![0.5, 0.4, 0.3, 0.2, 0.1];
    let p = SamplingParams { temperature: 1.0, ..Default::default() };
    let alone = [row(&p, &[], 0.37)];
    let a = sample(logits(&[x.clone()]), &alone).read(&alone)[0].token_id;
    let other = SamplingParams { temperature: 0.5, top_k: 2, ..Default::default() };
    let batch = [row(&other, &[], 0.9), row(&p, &[], 0.37)];
    let b = sample(logits(&[vec![3.0, 0.0, 0.0, 0.0, 0.0], x]), &batch).read(&batch)[1].token_id;
    assert_eq!(a, b);
}

#[test]
fn plain_path_applies_the_temperature_as_the_processed_path() {
    // The plain path divides by the temperature inside the pick; asking for logprobs takes the
    // processed path, which divides the logits tensor first. Both must pick the same tokens.
    let x: Vec<f32> = (0..64).map(|i| ((i * 37 % 64) as f32) / 9.0).collect();
    for (temperature, uniform) in [(0.3, 0.2), (0.7, 0.55), (1.8, 0.9), (1.0, 0.01)] {
        let plain = SamplingParams { temperature, ..Default::default() };
        let with_logprobs = SamplingParams { temperature, logprobs: Some(1), ..Default::default() };
        let a = [row(&plain, &[], uniform)];
        let b = [row(&with_logprobs, &[], uniform)];
        assert!(penalties::collect(&a, x.len()).is_none() && !truncation::needed(&a, x.len()));
        let plain_token = sample(logits(&[x.clone()]), &a).read(&a)[0].token_id;
        let processed_token = sample(logits(&[x.clone()]), &b).read(&b)[0].token_id;
        assert_eq!(plain_token, processed_token, "temperature {temperature}, uniform {uniform}");
    }
    assert!(penalties::collect(&[row(&SamplingParams::greedy(), &[], 0.5)], 4).is_none());
}
