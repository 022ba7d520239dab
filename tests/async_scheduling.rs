//! Async scheduling (on by default) changes when the host does its work, never what comes
//! out: the same requests give the same tokens, text, finish reasons and logprobs with
//! `async_scheduling` off, on every available backend. The mix covers what the pipeline
//! must get right: decode inputs taken from the step in flight, requests finishing by length,
//! by a stop token and by a stop string while the next step is already queued, `n > 1`,
//! seeded sampling, sampling that needs the token history (penalties, `min_tokens`) or
//! logprobs (those steps wait for the step in flight), and, with a KV cache of a few blocks,
//! preemptions of requests whose step is in flight.

mod common;

use common::*;
use ember::{BackendKind, CompletionOutput, LLM, PromptInput, RequestOutput, SamplingParams};

const MODEL: &str = "qwen3";

fn prompts() -> Vec<PromptInput> {
    reference(MODEL).prompts.iter().map(|p| PromptInput::Tokens(p.token_ids.clone())).collect()
}

fn run(backend: BackendKind, async_scheduling: bool, kv_cache_bytes: usize, params: &[SamplingParams]) -> (Vec<RequestOutput>, u64) {
    let mut args = engine_args(MODEL, backend);
    args.async_scheduling = async_scheduling;
    // cpu and wgpu read tokens at once, which the core would apply at once: keep those steps
    // in flight anyway, so that the pipelined path runs on every backend.
    args.pipeline_ready_steps = async_scheduling;
    args.kv_cache_memory_bytes = Some(kv_cache_bytes);
    args.max_model_len = Some(128);
    let mut llm = LLM::new(args).unwrap();
    let out = llm.generate_each(prompts(), params.to_vec()).unwrap();
    (out, llm.engine().stats().num_preemptions_total)
}

/// Same tokens, text and finish; logprobs equal up to f32 rounding: preemptions happen at
/// different steps in the two runs, so the rows are batched differently, and on cuda the
/// linear layers' kernel (and its summation order) depends on the batch's row count.
fn assert_same(a: &[CompletionOutput], b: &[CompletionOutput], context: &str) {
    assert_eq!(a.len(), b.len(), "{context}");
    for (x, y) in a.iter().zip(b) {
        assert_eq!((&x.token_ids, &x.text, x.finish_reason, &x.stop_reason), (&y.token_ids, &y.text, y.finish_reason, &y.stop_reason), "{context}");
        let close = |p: f64, q: f64| (p - q).abs() <= 1e-4 * (1.0 + p.abs());
        assert!(x.cumulative_logprob.zip(y.cumulative_logprob).is_none_or(|(p, q)| close(p, q)), "{context}: cumulative logprob");
        assert_eq!(x.cumulative_logprob.is_some(), y.cumulative_logprob.is_some(), "{context}");
        for (p, q) in x.logprobs.iter().flatten().zip(y.logprobs.iter().flatten()) {
            for (l, m) in std::iter::once(&p.token).chain(&p.top).zip(std::iter::once(&q.token).chain(&q.top)) {
                assert_eq!((l.token_id, l.rank), (m.token_id, m.rank), "{context}: logprob entries");
                assert!(close(f64::from(l.logprob), f64::from(m.logprob)), "{context}: logprob {} vs {}", l.logprob, m.logprob);
            }
        }
    }
}

fn greedy(max_tokens: usize) -> SamplingParams {
    SamplingParams { temperature: 0.0, max_tokens: Some(max_tokens), ignore_eos: true, ..Default::default() }
}

/// One request per reference prompt, each exercising a different path.
fn mix(stop_string: String, stop_token: u32) -> Vec<SamplingParams> {
    vec![
        greedy(24),
        SamplingParams { temperature: 0.8, seed: Some(11), max_tokens: Some(30), ignore_eos: true, ..Default::default() },
        SamplingParams { stop: vec![stop_string], ..greedy(40) },
        SamplingParams { temperature: 1.0, seed: Some(5), n: 2, max_tokens: Some(16), ignore_eos: true, ..Default::default() },
        SamplingParams { repetition_penalty: 1.3, frequency_penalty: 0.2, ..greedy(20) },
        SamplingParams { logprobs: Some(2), ..greedy(12) },
        SamplingParams { stop_token_ids: vec![stop_token], min_tokens: 3, ..greedy(36) },
    ]
}

#[test]
fn async_scheduling_gives_the_same_outputs_as_synchronous_steps() {
    for backend in backends() {
        // A stop string and a stop token that greedy decoding of prompts 2 and 6 reaches.
        let probe = run(backend, false, 16 << 20, &vec![greedy(40); 7]).0;
        let text = &probe[2].outputs[0].text;
        let stop_string: String = text.chars().skip(text.chars().count() / 2).take(3).collect();
        let stop_token = probe[6].outputs[0].token_ids[20];
        let params = mix(stop_string, stop_token);

        // 16 MiB: no preemption; 192 KiB: 12 blocks of 16 tokens for eight sequences.
        for kv_cache_bytes in [16 << 20, 192 << 10] {
            let (sync, sync_preemptions) = run(backend, false, kv_cache_bytes, &params);
            let (pipelined, preemptions) = run(backend, true, kv_cache_bytes, &params);
            for (i, (a, b)) in sync.iter().zip(&pipelined).enumerate() {
                assert_same(&a.outputs, &b.outputs, &format!("{backend}, {kv_cache_bytes} bytes of KV cache: request {i} ({:?})", params[i]));
            }
            assert_eq!(sync[2].outputs[0].finish_reason, Some("stop"), "{backend}: the stop string should end request 2");
            assert_eq!(sync[6].outputs[0].finish_reason, Some("stop"), "{backend}: the stop token should end request 6");
            if kv_cache_bytes < 1 << 20 {
                assert!(sync_preemptions > 0 && preemptions > 0, "{backend}: the small cache should preempt ({sync_preemptions}, {preemptions})");
            }
        }
    }
}

/// A request aborted while its step is in flight returns its blocks at once; the step's token
/// for it is dropped when the step is applied, and the others run on to the tokens they get
/// without the abort.
#[test]
fn aborting_while_a_step_is_in_flight_frees_the_blocks_and_spares_the_others() {
    for backend in backends() {
        let greedy_prompts = |n: usize| prompts().into_iter().take(n).collect::<Vec<_>>();
        let expected = run(backend, false, 16 << 20, &vec![greedy(24); 7]).0;
        let mut args = engine_args(MODEL, backend);
        args.max_model_len = Some(128);
        args.pipeline_ready_steps = true;
        let mut llm = LLM::new(args).unwrap();
        let engine = llm.engine_mut();
        for (i, prompt) in greedy_prompts(3).into_iter().enumerate() {
            engine.add_request(format!("r{i}"), prompt, greedy(24)).unwrap();
        }
        for _ in 0..5 {
            engine.step().unwrap();
        }
        let usage = engine.stats().kv_cache_usage;
        let aborted = engine.abort_request("r1").expect("r1 is running");
        assert_eq!(aborted.outputs[0].finish_reason, Some("abort"), "{backend}");
        assert!(engine.stats().kv_cache_usage < usage, "{backend}: the aborted request's blocks are freed at once");
        let mut finished = Vec::new();
        while engine.has_unfinished_requests() {
            finished.extend(engine.step().unwrap().into_iter().filter(|o| o.finished));
        }
        // One more call applies the last step in flight, if any.
        finished.extend(engine.step().unwrap().into_iter().filter(|o| o.finished));
        finished.sort_by(|a, b| a.request_id.cmp(&b.request_id));
        let ids: Vec<&str> = finished.iter().map(|o| o.request_id.as_str()).collect();
        assert_eq!(ids, ["r0", "r2"], "{backend}: the aborted request gets no output after its abort");
        assert_eq!(finished[0].outputs[0].token_ids, expected[0].outputs[0].token_ids, "{backend}: r0");
        assert_eq!(finished[1].outputs[0].token_ids, expected[2].outputs[0].token_ids, "{backend}: r2");
        assert_eq!(engine.stats().kv_cache_usage, 0.0, "{backend}: every block is back");
    }
}
