//! How far one backend is from transformers on one fixture: per prompt, whether the greedy
//! tokens match, the largest prompt-logprob deviation and the deviation at each step. A tool
//! for kernel and model work, not a test.
//!
//! ```sh
//! cargo run --example conformance_report -- llama3
//! BACKEND=wgpu BLOCK=4 BUDGET=16 NOLP=1 cargo run --example conformance_report -- gemma2
//! ```
//! Environment: BACKEND (cpu|wgpu|cuda), BLOCK (block size), BUDGET (max_num_batched_tokens),
//! KVBYTES (KV budget; also caps max_model_len at 96), ONLY (prompt indices, comma separated),
//! NOLP (skip logprobs: report the first diverging step), FUSION (run through burn-fusion),
//! DTYPE (float32 by default; bfloat16 / float16 on GPUs).
#[path = "../tests/common/mod.rs"]
mod common;
use common::*;
use ember::{BackendKind, LLM, PromptInput, SamplingParams};

fn main() {
    let model = std::env::args().nth(1).unwrap_or("llama3".into());
    let reference = reference(&model);
    let backend: BackendKind = std::env::var("BACKEND").unwrap_or("cpu".into()).parse().unwrap();
    let mut args = engine_args(&model, backend);
    if let Ok(b) = std::env::var("BLOCK") { args.block_size = b.parse().unwrap(); }
    if let Ok(b) = std::env::var("KVBYTES") { args.kv_cache_memory_bytes = Some(b.parse().unwrap()); args.max_model_len = Some(96); }
    if std::env::var("FUSION").is_ok() { args.enable_fusion = true; }
    if let Ok(d) = std::env::var("DTYPE") { args.dtype = d.parse().unwrap(); }
    if let Ok(b) = std::env::var("BUDGET") { args.max_num_batched_tokens = Some(b.parse().unwrap()); }
    let only: Option<Vec<usize>> = std::env::var("ONLY").ok().map(|v| v.split(',').map(|x| x.parse().unwrap()).collect());
    let mut llm = LLM::new(args).unwrap();
    let mut p = SamplingParams::greedy();
    p.max_tokens = Some(32);
    p.ignore_eos = true;
    if std::env::var("NOLP").is_err() { p.logprobs = Some(5); p.prompt_logprobs = Some(5); }
    let mut reference = reference;
    if let Some(list) = only {
        let all = std::mem::take(&mut reference.prompts);
        reference.prompts = all.into_iter().enumerate().filter(|(i, _)| list.contains(i)).map(|(_, p)| p).collect();
    }
    let prompts: Vec<PromptInput> = reference.prompts.iter().map(|p| PromptInput::Tokens(p.token_ids.clone())).collect();
    let outs = llm.generate(prompts, &p).unwrap();
    println!("preemptions {}", llm.engine().stats().num_preemptions_total);
    for (i, (o, r)) in outs.iter().zip(&reference.prompts).enumerate() {
        let Some(lps) = o.outputs[0].logprobs.as_ref() else {
            let first_diff = o.outputs[0].token_ids.iter().zip(&r.greedy.token_ids).position(|(a, b)| a != b);
            println!("prompt {i} len {} first_diff {:?}", r.token_ids.len(), first_diff);
            continue;
        };
        let steps: Vec<String> = lps.iter().zip(&r.greedy.steps).map(|(a, b)| format!("{:.0e}", (a.token.logprob - b.logprob).abs())).collect();
        let first_diff = o.outputs[0].token_ids.iter().zip(&r.greedy.token_ids).position(|(a, b)| a != b);
        let plp = o.prompt_logprobs.as_ref().unwrap();
        let pmax = r.prompt_logprobs.iter().map(|t| (plp[t.position].as_ref().unwrap().token.logprob - t.logprob).abs()).fold(0f32, f32::max);
        println!("prompt {i} len {} tokens_match {} first_diff {first_diff:?} prompt_lp_max {:.1e} steps {}", r.token_ids.len(), o.outputs[0].token_ids == r.greedy.token_ids, pmax, steps.join(" "));
    }
}
