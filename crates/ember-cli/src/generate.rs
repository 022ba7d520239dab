//! `ember generate`: run prompts through the offline API and print the completions (plain text,
//! or one JSON object per prompt with `--json`), with a throughput summary on stderr.

use std::time::Instant;

use clap::Args;
use ember_engine::{LLM, PromptInput, RequestOutput, SamplingParams, UsageContext};

use crate::EngineFlags;

/// `ember generate` flags.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    engine: EngineFlags,
    /// A prompt (repeat for several).
    #[arg(long = "prompt")]
    prompts: Vec<String>,
    /// A file with one prompt per line.
    #[arg(long)]
    prompts_file: Option<std::path::PathBuf>,
    /// Tokens to generate per prompt (default: up to the context length).
    #[arg(long, default_value_t = 16)]
    max_tokens: usize,
    /// Sampling temperature (0 = greedy). Default: the model's generation_config, else 1.0.
    #[arg(long)]
    temperature: Option<f32>,
    /// Nucleus sampling mass.
    #[arg(long)]
    top_p: Option<f32>,
    /// Keep the k most likely tokens (0 = off).
    #[arg(long)]
    top_k: Option<i32>,
    /// Drop tokens less likely than min_p × the most likely one.
    #[arg(long)]
    min_p: Option<f32>,
    /// Repetition penalty (1 = off).
    #[arg(long)]
    repetition_penalty: Option<f32>,
    /// Samples per prompt.
    #[arg(long, default_value_t = 1)]
    n: usize,
    /// Per-request seed.
    #[arg(long)]
    request_seed: Option<u64>,
    /// Stop string (repeat for several).
    #[arg(long = "stop")]
    stop: Vec<String>,
    /// Keep generating past end-of-sequence.
    #[arg(long)]
    ignore_eos: bool,
    /// Top logprobs to report per generated token.
    #[arg(long)]
    logprobs: Option<usize>,
    /// Print one JSON object per prompt instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `ember generate`.
pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let mut prompts = args.prompts.clone();
    if let Some(path) = &args.prompts_file {
        let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        prompts.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string));
    }
    if prompts.is_empty() {
        anyhow::bail!("no prompts: pass --prompt TEXT (repeatable) or --prompts-file FILE");
    }

    let load_start = Instant::now();
    let mut llm = LLM::new(args.engine.to_engine_args(UsageContext::LlmClass)?)?;
    let info = llm.engine().info().clone();
    tracing::info!(
        "ready in {:.1}s: backend {}, dtype {}, {} KV blocks of {} tokens, max_model_len {}",
        load_start.elapsed().as_secs_f64(),
        info.backend,
        info.dtype,
        info.num_blocks,
        info.block_size,
        info.max_model_len
    );

    let mut params: SamplingParams = llm.default_sampling_params();
    params.max_tokens = Some(args.max_tokens);
    if let Some(t) = args.temperature {
        params.temperature = t;
    }
    if let Some(p) = args.top_p {
        params.top_p = p;
    }
    if let Some(k) = args.top_k {
        params.top_k = k;
    }
    if let Some(m) = args.min_p {
        params.min_p = m;
    }
    if let Some(r) = args.repetition_penalty {
        params.repetition_penalty = r;
    }
    params.n = args.n;
    params.seed = args.request_seed;
    params.stop = args.stop.clone();
    params.ignore_eos = args.ignore_eos;
    params.logprobs = args.logprobs;

    let start = Instant::now();
    let inputs: Vec<PromptInput> = prompts.iter().map(|p| PromptInput::Text(p.clone())).collect();
    let outputs = llm.generate(inputs, &params)?;
    let elapsed = start.elapsed().as_secs_f64();

    for out in &outputs {
        if args.json {
            println!("{}", to_json(out));
        } else {
            println!("Prompt: {:?}", out.prompt.as_deref().unwrap_or_default());
            for c in &out.outputs {
                println!("Generated[{}] ({}): {:?}", c.index, c.finish_reason.unwrap_or("?"), c.text);
            }
        }
    }
    let prompt_tokens: usize = outputs.iter().map(|o| o.prompt_token_ids.len()).sum();
    let output_tokens: usize = outputs.iter().flat_map(|o| &o.outputs).map(|c| c.token_ids.len()).sum();
    eprintln!(
        "Throughput: {:.2} requests/s, {:.2} total tokens/s, {:.2} output tokens/s ({} prompts, {:.2}s)",
        outputs.len() as f64 / elapsed,
        (prompt_tokens + output_tokens) as f64 / elapsed,
        output_tokens as f64 / elapsed,
        outputs.len(),
        elapsed
    );
    Ok(())
}

fn to_json(out: &RequestOutput) -> serde_json::Value {
    serde_json::json!({
        "request_id": out.request_id,
        "prompt": out.prompt,
        "prompt_token_ids": out.prompt_token_ids,
        "num_cached_tokens": out.num_cached_tokens,
        "outputs": out.outputs.iter().map(|c| serde_json::json!({
            "index": c.index,
            "text": c.text,
            "token_ids": c.token_ids,
            "finish_reason": c.finish_reason,
            "cumulative_logprob": c.cumulative_logprob,
            "logprobs": c.logprobs,
        })).collect::<Vec<_>>(),
    })
}
