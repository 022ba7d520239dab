//! End-to-end sampling behaviour through the offline API, on every available backend:
//! seeds (same seed, same tokens, whatever else is in the batch), `n > 1` samples sharing their
//! prompt blocks, stop strings and stop token ids, min_tokens, logit_bias, truncation that must
//! reduce to greedy, and request validation.

mod common;

use common::*;
use ember::{BackendKind, FinishReason, LLM, PromptInput, SamplingParams, StopReason};

const MODEL: &str = "qwen3";

fn llm(backend: BackendKind) -> LLM {
    LLM::new(engine_args(MODEL, backend)).unwrap()
}

fn prompt(i: usize) -> PromptInput {
    PromptInput::Tokens(reference(MODEL).prompts[i].token_ids.clone())
}

fn random(seed: Option<u64>, max_tokens: usize) -> SamplingParams {
    SamplingParams { temperature: 1.0, seed, max_tokens: Some(max_tokens), ignore_eos: true, ..Default::default() }
}

fn for_each_backend(check: impl Fn(BackendKind)) {
    for backend in backends() {
        check(backend);
    }
}

#[test]
fn seeded_requests_are_reproducible_and_batch_independent() {
    for_each_backend(|backend| {
        let mut llm = llm(backend);
        let alone = llm.generate(vec![prompt(3)], &random(Some(1234), 24)).unwrap();
        let mut params = vec![random(None, 12), random(Some(1234), 24), random(Some(7), 30)];
        params[0].temperature = 0.7;
        let batch = llm.generate_each(vec![prompt(5), prompt(3), prompt(2)], params).unwrap();
        assert_eq!(alone[0].outputs[0].token_ids, batch[1].outputs[0].token_ids, "{backend}: seed 1234 alone vs in a batch");
        let other_seed = llm.generate(vec![prompt(3)], &random(Some(4321), 24)).unwrap();
        assert_ne!(alone[0].outputs[0].token_ids, other_seed[0].outputs[0].token_ids, "{backend}: different seeds should differ");
    });
}

#[test]
fn n_samples_share_the_prompt_and_differ() {
    for_each_backend(|backend| {
        let mut llm = llm(backend);
        let mut params = random(Some(99), 16);
        params.n = 4;
        let out = llm.generate(vec![prompt(5)], &params).unwrap();
        let samples = &out[0].outputs;
        assert_eq!(samples.len(), 4);
        assert!(samples.iter().enumerate().all(|(i, s)| s.index == i && s.token_ids.len() == 16));
        let distinct: std::collections::HashSet<_> = samples.iter().map(|s| s.token_ids.clone()).collect();
        assert!(distinct.len() > 1, "{backend}: 4 random samples were identical");
        assert!(out[0].num_cached_tokens > 0, "{backend}: sibling samples should share prompt blocks");
        // Same seed again: the same four samples.
        let again = llm.generate(vec![prompt(5)], &params).unwrap();
        assert_eq!(out[0].outputs, again[0].outputs, "{backend}: n=4 with a seed is reproducible");
    });
}

#[test]
fn truncations_that_leave_one_token_equal_greedy() {
    for_each_backend(|backend| {
        let mut llm = llm(backend);
        let expected = &reference(MODEL).prompts[4].greedy.token_ids;
        for params in [
            SamplingParams { top_k: 1, ..random(Some(5), 32) },
            SamplingParams { top_p: 1e-6, ..random(Some(5), 32) },
            SamplingParams { min_p: 1.0, ..random(Some(5), 32) },
            SamplingParams { temperature: 0.0, ..random(Some(5), 32) },
        ] {
            let out = llm.generate(vec![prompt(4)], &params).unwrap();
            assert_eq!(&out[0].outputs[0].token_ids, expected, "{backend}: {params:?}");
        }
    });
}

#[test]
fn stop_strings_and_stop_tokens() {
    for_each_backend(|backend| {
        let mut llm = llm(backend);
        let reference = reference(MODEL);
        let greedy = &reference.prompts[1].greedy;
        let stop = stop_string_from(&greedy.text);
        let cut = greedy.text.find(&stop).unwrap();
        let mut params = SamplingParams::greedy();
        params.max_tokens = Some(32);
        params.ignore_eos = true;
        params.stop = vec![stop.clone()];
        let out = llm.generate(vec![prompt(1)], &params).unwrap();
        let c = &out[0].outputs[0];
        assert_eq!(c.text, greedy.text[..cut], "{backend}: text ends before the stop string");
        assert_eq!(c.finish_reason, Some(FinishReason::Stop.as_str()));
        assert_eq!(c.stop_reason, Some(StopReason::Str(stop.clone())));
        params.include_stop_str_in_output = true;
        let out = llm.generate(vec![prompt(1)], &params).unwrap();
        assert_eq!(out[0].outputs[0].text, greedy.text[..cut + stop.len()]);

        // A stop token id: the 5th greedy token ends generation there, min_tokens delays it.
        let greedy = &reference.prompts[3].greedy;
        let token = greedy.token_ids[4];
        let first = greedy.token_ids.iter().position(|&t| t == token).unwrap();
        let mut params = SamplingParams::greedy();
        params.max_tokens = Some(32);
        params.stop_token_ids = vec![token];
        let out = llm.generate(vec![prompt(3)], &params).unwrap();
        assert_eq!(out[0].outputs[0].token_ids, greedy.token_ids[..=first]);
        assert_eq!(out[0].outputs[0].stop_reason, Some(StopReason::TokenId(token)));
        params.min_tokens = first + 2;
        let out = llm.generate(vec![prompt(3)], &params).unwrap();
        let tokens = &out[0].outputs[0].token_ids;
        assert!(!tokens[..first + 2].contains(&token), "{backend}: min_tokens masks the stop token");
    });
}

/// Four ASCII letters from the second half of a (random-model, mostly gibberish) continuation.
fn stop_string_from(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    (chars.len() / 3..chars.len() - 4)
        .map(|i| chars[i..i + 4].iter().collect::<String>())
        .find(|w| w.chars().all(|c| c.is_ascii_alphabetic()))
        .expect("the reference text has a run of four letters")
}

#[test]
fn logit_bias_and_repetition_penalty() {
    for_each_backend(|backend| {
        let mut llm = llm(backend);
        let mut params = SamplingParams::greedy();
        params.max_tokens = Some(8);
        params.ignore_eos = true;
        params.logit_bias.insert(42, 100.0);
        let out = llm.generate(vec![prompt(2)], &params).unwrap();
        assert_eq!(out[0].outputs[0].token_ids, vec![42; 8], "{backend}: +100 bias forces token 42");

        let mut params = SamplingParams::greedy();
        params.max_tokens = Some(24);
        params.ignore_eos = true;
        params.repetition_penalty = 1e6;
        let out = llm.generate(vec![prompt(1)], &params).unwrap();
        let tokens = &out[0].outputs[0].token_ids;
        let prompt_ids = &reference(MODEL).prompts[1].token_ids;
        let unique: std::collections::HashSet<_> = tokens.iter().collect();
        assert_eq!(unique.len(), tokens.len(), "{backend}: a huge repetition penalty never repeats");
        assert!(tokens.iter().all(|t| !prompt_ids.contains(t)), "{backend}: nor reuses prompt tokens");
    });
}

#[test]
fn bad_requests_are_rejected_and_leave_nothing_queued() {
    let mut llm = llm(BackendKind::Cpu);
    let too_long = PromptInput::Tokens(vec![1; 300]);
    let err = llm.generate(vec![prompt(1), too_long], &SamplingParams::greedy()).unwrap_err().to_string();
    assert!(err.contains("maximum model length"), "{err}");
    assert!(!llm.engine().has_unfinished_requests(), "the accepted prompt was rolled back");
    let err = llm.generate(vec![PromptInput::Tokens(vec![1, 9999])], &SamplingParams::greedy()).unwrap_err().to_string();
    assert!(err.contains("out of vocabulary"), "{err}");
    let err = llm.generate(vec![PromptInput::Tokens(vec![])], &SamplingParams::greedy()).unwrap_err().to_string();
    assert!(err.contains("empty"), "{err}");
    let params = SamplingParams { logprobs: Some(21), ..SamplingParams::greedy() };
    let err = llm.generate(vec![prompt(1)], &params).unwrap_err().to_string();
    assert!(err.contains("logprobs"), "{err}");
    let params = SamplingParams { top_p: 0.0, ..Default::default() };
    let err = llm.generate(vec![prompt(1)], &params).unwrap_err().to_string();
    assert!(err.contains("top_p"), "{err}");
    // Still serving afterwards.
    assert_eq!(llm.generate(vec![prompt(1)], &SamplingParams::greedy()).unwrap().len(), 1);
}

#[test]
fn text_prompts_and_abort_free_blocks() {
    let mut llm = llm(BackendKind::Cpu);
    let engine = llm.engine_mut();
    engine.add_request("a", PromptInput::Text("naïve café — 世界 🙂".into()), random(Some(1), 200)).unwrap();
    engine.add_request("b", PromptInput::Text("hello world".into()), random(Some(2), 200)).unwrap();
    for _ in 0..3 {
        engine.step().unwrap();
    }
    assert!(engine.stats().kv_cache_usage > 0.0);
    let aborted = engine.abort_request("a").unwrap();
    assert_eq!(aborted.outputs[0].finish_reason, Some("abort"));
    engine.abort_request("b").unwrap();
    assert!(!engine.has_unfinished_requests());
    assert_eq!(engine.stats().kv_cache_usage, 0.0, "aborted requests return every block");
}
