//! `ember bench throughput`: offline throughput, like `vllm bench throughput` with the random
//! dataset. `--num-prompts` prompts of `--input-len` random tokens are submitted at once and
//! each generates exactly `--output-len` tokens (EOS ignored); the engine's continuous batching
//! decides how many run together. One untimed warm-up batch runs first (on wgpu/cuda it also
//! compiles the kernels). Prints vLLM's line:
//! `Throughput: X requests/s, Y total tokens/s, Z output tokens/s`.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::offline::{OfflineBench, output_tokens, progress, sampling_params};
use crate::EngineFlags;

/// `ember bench throughput` flags.
#[derive(Debug, Args)]
pub struct ThroughputArgs {
    #[command(flatten)]
    engine: EngineFlags,
    /// Prompt length in tokens (random token ids).
    #[arg(long, default_value_t = 1024)]
    input_len: usize,
    /// Generated tokens per prompt (EOS ignored).
    #[arg(long, default_value_t = 128)]
    output_len: usize,
    /// Number of prompts.
    #[arg(long, default_value_t = 1000)]
    num_prompts: usize,
    /// Sampling temperature (vLLM's benchmark samples at 1.0; 0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Prompts in the untimed warm-up batch (0 = none).
    #[arg(long, default_value_t = 8)]
    num_warmup_prompts: usize,
    /// Write the results as JSON to this file.
    #[arg(long)]
    output_json: Option<PathBuf>,
}

/// Runs `ember bench throughput`.
pub fn run(args: ThroughputArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.num_prompts >= 1, "--num-prompts must be at least 1");
    let mut bench = OfflineBench::load(&args.engine)?;
    bench.check_lengths(args.input_len, args.output_len)?;
    let params = sampling_params(args.output_len, args.temperature);

    if args.num_warmup_prompts > 0 {
        let warmup = bench.dataset.prompts(args.num_warmup_prompts, args.input_len);
        let started = Instant::now();
        bench.run(warmup, &params, &indicatif::ProgressBar::hidden())?;
        tracing::info!("warm-up: {} prompts in {:.2}s", args.num_warmup_prompts, started.elapsed().as_secs_f64());
    }

    let prompts = bench.dataset.prompts(args.num_prompts, args.input_len);
    let bar = progress(args.num_prompts as u64, "requests");
    let started = Instant::now();
    let outputs = bench.run(prompts, &params, &bar)?;
    let elapsed = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let num_requests = outputs.len();
    let total_input_tokens: usize = outputs.iter().map(|o| o.prompt_token_ids.len()).sum();
    let total_output_tokens = output_tokens(&outputs);
    let total_num_tokens = total_input_tokens + total_output_tokens;
    if total_output_tokens != num_requests * args.output_len {
        tracing::warn!("generated {total_output_tokens} tokens, expected {} x {}", num_requests, args.output_len);
    }
    println!(
        "Throughput: {:.2} requests/s, {:.2} total tokens/s, {:.2} output tokens/s",
        num_requests as f64 / elapsed,
        total_num_tokens as f64 / elapsed,
        total_output_tokens as f64 / elapsed
    );
    println!("Total num prompt tokens:  {total_input_tokens}");
    println!("Total num output tokens:  {total_output_tokens}");

    if let Some(path) = &args.output_json {
        let info = bench.info();
        let value = serde_json::json!({
            "model": args.engine.model()?,
            "backend": info.backend,
            "dtype": info.dtype,
            "input_len": args.input_len,
            "output_len": args.output_len,
            "elapsed_time": elapsed,
            "num_requests": num_requests,
            "total_num_tokens": total_num_tokens,
            "total_input_tokens": total_input_tokens,
            "total_output_tokens": total_output_tokens,
            "requests_per_second": num_requests as f64 / elapsed,
            "tokens_per_second": total_num_tokens as f64 / elapsed,
            "output_tokens_per_second": total_output_tokens as f64 / elapsed,
        });
        super::write_json(path, &value)?;
    }
    Ok(())
}
