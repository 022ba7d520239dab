//! Conformance in bf16 on cuda (with EMBER_TEST_CUDA=1; skipped elsewhere: cpu computes in f32
//! only and wgpu has no bf16) against the same f32 transformers references as
//! `tests/conformance.rs`. bf16 rounds every activation to 8 bits of mantissa, so exact tokens
//! are not the bar. The yardstick is transformers itself in bf16: its prompt logprobs move from
//! its f32 ones by up to [`TRANSFORMERS_BF16_DRIFT`] on these (deliberately high-gain) models
//! (`tests/fixtures/bf16_drift.py`). Per model, Ember in bf16 must stay within 1.5x that drift:
//! - every prompt-token logprob (teacher-forced, so no divergence);
//! - the greedy tokens equal the reference's up to the first step where the reference's own
//!   top-2 margin is below [`MARGIN`] (beyond it, a bf16 run may take the other branch and
//!   legitimately continue differently), with their logprobs within the same tolerance.

mod common;

use common::*;
use ember::{BackendKind, DtypeChoice, LLM, PromptInput, SamplingParams};

/// Max |logprob - f32 reference| of transformers 5.17 in bf16 (CPU, eager) over each fixture's
/// prompt logprobs, measured 2026-11-21 with `tests/fixtures/bf16_drift.py`.
const TRANSFORMERS_BF16_DRIFT: [(&str, f32); 7] =
    [("llama3", 0.330), ("llama2", 0.522), ("mistral", 0.374), ("qwen2", 0.404), ("qwen3", 0.489), ("gemma", 0.413), ("gemma2", 0.790)];

/// A reference step whose top-2 logprobs are closer than this may flip in bf16.
const MARGIN: f32 = 0.5;

#[test]
fn bf16_on_cuda_is_within_tolerance_of_transformers() {
    if !backends().contains(&BackendKind::Cuda) {
        return;
    }
    let mut failures = Vec::new();
    for (model, drift) in TRANSFORMERS_BF16_DRIFT {
        let tolerance = 1.5 * drift;
        let reference = reference(model);
        let mut args = engine_args(model, BackendKind::Cuda);
        args.dtype = DtypeChoice::BFloat16;
        args.kv_cache_memory_bytes = Some(8 << 20);
        let mut llm = LLM::new(args).unwrap_or_else(|e| panic!("{model} in bf16: {e}"));
        let mut params = SamplingParams::greedy();
        params.max_tokens = Some(32);
        params.ignore_eos = true;
        params.logprobs = Some(1);
        params.prompt_logprobs = Some(1);
        let prompts: Vec<PromptInput> = reference.prompts.iter().map(|p| PromptInput::Tokens(p.token_ids.clone())).collect();
        let outputs = llm.generate(prompts, &params).unwrap();
        let (mut worst_prompt, mut worst_step, mut compared) = (0f32, 0f32, 0usize);
        for (i, (out, expected)) in outputs.iter().zip(&reference.prompts).enumerate() {
            let prompt_lp = out.prompt_logprobs.as_ref().expect("prompt logprobs requested");
            for theirs in &expected.prompt_logprobs {
                let ours = prompt_lp[theirs.position].as_ref().expect("prompt logprob present");
                worst_prompt = worst_prompt.max((ours.token.logprob - theirs.logprob).abs());
            }
            let completion = &out.outputs[0];
            let logprobs = completion.logprobs.as_ref().expect("logprobs requested");
            for (step, theirs) in expected.greedy.steps.iter().enumerate() {
                let margin = theirs.top5[0].1 - theirs.top5.get(1).map_or(f32::NEG_INFINITY, |t| t.1);
                if margin <= MARGIN {
                    break;
                }
                compared += 1;
                if completion.token_ids[step] != theirs.token_id {
                    failures.push(format!("{model} prompt {i} step {step}: token {} (reference {}, margin {margin:.3})", completion.token_ids[step], theirs.token_id));
                    break;
                }
                worst_step = worst_step.max((logprobs[step].token.logprob - theirs.logprob).abs());
            }
        }
        println!("{model} bf16: max |prompt logprob - ref| {worst_prompt:.3} (transformers bf16: {drift}), max |greedy logprob - ref| {worst_step:.3} over {compared} steps");
        if worst_prompt.max(worst_step) > tolerance {
            failures.push(format!("{model}: logprobs off by up to {:.3} (tolerance {tolerance:.3})", worst_prompt.max(worst_step)));
        }
    }
    assert!(failures.is_empty(), "bf16 on cuda off the reference:\n{}", failures.join("\n"));
}
