//! Cross-backend conformance against Hugging Face transformers, for every fixture model on every
//! backend available here (cpu always; wgpu on lavapipe when a Vulkan driver is installed; cuda
//! with EMBER_TEST_CUDA=1):
//! - greedy tokens identical to transformers for 32 steps, top-5 logprobs within 1e-3;
//! - prompt logprobs (logprob of each prompt token and the top-5) within 1e-3;
//! - the whole batch at once, under a small token budget (chunked prefill) and a KV pool too
//!   small for all prompts (preemption by recompute), gives the same tokens;
//! - prefix-cache hits give the same tokens as misses.

mod common;

use common::*;
use ember::{BackendKind, LLM, PromptInput, SamplingParams};

fn greedy_params(logprobs: bool) -> SamplingParams {
    let mut p = SamplingParams::greedy();
    p.max_tokens = Some(32);
    p.ignore_eos = true;
    if logprobs {
        p.logprobs = Some(5);
        p.prompt_logprobs = Some(5);
    }
    p
}

fn prompts(reference: &Reference) -> Vec<PromptInput> {
    reference.prompts.iter().map(|p| PromptInput::Tokens(p.token_ids.clone())).collect()
}

fn check_model(model: &str, backend: BackendKind) {
    let reference = reference(model);
    let ctx = |what: &str, i: usize| format!("{model} on {backend}: prompt {i}: {what}");

    // 1. Greedy tokens, sampled-token logprobs and prompt logprobs, all prompts in one batch.
    let mut llm = LLM::new(engine_args(model, backend)).unwrap_or_else(|e| panic!("{model} on {backend}: {e}"));
    let outputs = llm.generate(prompts(&reference), &greedy_params(true)).unwrap();
    for (i, (out, expected)) in outputs.iter().zip(&reference.prompts).enumerate() {
        let completion = &out.outputs[0];
        assert_eq!(completion.token_ids, expected.greedy.token_ids, "{}", ctx("greedy tokens", i));
        let logprobs = completion.logprobs.as_ref().expect("logprobs requested");
        for (step, (ours, theirs)) in logprobs.iter().zip(&expected.greedy.steps).enumerate() {
            assert_top_close(&as_pairs(ours), &theirs.top5, &ctx(&format!("step {step}"), i));
            assert!((ours.token.logprob - theirs.logprob).abs() <= LOGPROB_TOLERANCE, "{}", ctx("sampled logprob", i));
            assert_eq!(ours.token.rank, 1, "{}", ctx("greedy token rank", i));
        }
        let prompt_lp = out.prompt_logprobs.as_ref().expect("prompt logprobs requested");
        assert_eq!(prompt_lp.len(), expected.token_ids.len(), "{}", ctx("prompt logprob entries", i));
        assert!(prompt_lp[0].is_none(), "{}", ctx("first prompt position has no logprob", i));
        for theirs in &expected.prompt_logprobs {
            let ours = prompt_lp[theirs.position].as_ref().expect("prompt logprob present");
            assert_eq!(ours.token.token_id, theirs.token_id);
            assert!((ours.token.logprob - theirs.logprob).abs() <= LOGPROB_TOLERANCE, "{}", ctx("prompt token logprob", i));
            assert_top_close(&as_pairs(ours), &theirs.top5, &ctx(&format!("prompt position {}", theirs.position), i));
        }
        if expected.kind == "text" && !expected.greedy.text.is_empty() {
            assert_eq!(completion.text, expected.greedy.text, "{}", ctx("detokenized text", i));
        }
    }
    drop(llm);

    // 2. Chunked prefill (budget 16 tokens/step) and preemption (pool of 24 blocks of 4 tokens
    //    for prompts of up to 62 + 32 tokens): same tokens.
    let mut args = engine_args(model, backend);
    args.block_size = 4;
    args.max_num_batched_tokens = Some(16);
    args.max_model_len = Some(96);
    args.kv_cache_memory_bytes = Some(kv_bytes_for_blocks(model, 24, 4));
    let mut llm = LLM::new(args).unwrap();
    let outputs = llm.generate(prompts(&reference), &greedy_params(false)).unwrap();
    for (i, (out, expected)) in outputs.iter().zip(&reference.prompts).enumerate() {
        assert_eq!(out.outputs[0].token_ids, expected.greedy.token_ids, "{}", ctx("tokens under chunked prefill + preemption", i));
    }
    let stats = llm.engine().stats();
    assert!(stats.num_preemptions_total > 0, "{model} on {backend}: the small pool should force preemption");

    // 3. Prefix caching (a pool large enough to keep the first pass cached, blocks of 4 tokens):
    //    the same prompts again hit the cache and give the same tokens.
    drop(llm);
    let mut args = engine_args(model, backend);
    args.block_size = 4;
    let mut llm = LLM::new(args).unwrap();
    let first = llm.generate(prompts(&reference), &greedy_params(false)).unwrap();
    assert_eq!(first.iter().map(|o| o.num_cached_tokens).sum::<usize>(), 0, "{model} on {backend}: cold cache");
    let again = llm.generate(prompts(&reference), &greedy_params(false)).unwrap();
    for (i, (out, expected)) in again.iter().zip(&reference.prompts).enumerate() {
        let full_blocks = (expected.token_ids.len() - 1) / 4 * 4;
        assert_eq!(out.num_cached_tokens, full_blocks, "{}", ctx("prefix-cache hit tokens", i));
        assert_eq!(out.outputs[0].token_ids, expected.greedy.token_ids, "{}", ctx("tokens with prefix-cache hits", i));
    }
}

/// Bytes of KV cache for `blocks` blocks of `block_size` tokens of `model` in f32.
fn kv_bytes_for_blocks(model: &str, blocks: usize, block_size: usize) -> usize {
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir(model).join("config.json")).unwrap()).unwrap();
    let get = |k: &str| config[k].as_u64().map(|v| v as usize);
    let layers = get("num_hidden_layers").unwrap();
    let heads = get("num_attention_heads").unwrap();
    let kv_heads = get("num_key_value_heads").unwrap_or(heads);
    let head_dim = get("head_dim").unwrap_or(get("hidden_size").unwrap() / heads);
    blocks * block_size * 2 * layers * kv_heads * head_dim * 4
}

macro_rules! conformance_tests {
    ($($name:ident => $model:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                for backend in backends() {
                    let start = std::time::Instant::now();
                    check_model($model, backend);
                    eprintln!("{} on {backend}: ok in {:.1}s", $model, start.elapsed().as_secs_f64());
                }
            }
        )*
    };
}

conformance_tests! {
    llama3_matches_transformers => "llama3",
    llama2_matches_transformers => "llama2",
    mistral_matches_transformers => "mistral",
    qwen2_matches_transformers => "qwen2",
    qwen3_matches_transformers => "qwen3",
    gemma_matches_transformers => "gemma",
    gemma2_matches_transformers => "gemma2",
}
