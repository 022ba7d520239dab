//! `ember bench latency`: end-to-end latency of one batch, like `vllm bench latency`. Each
//! iteration submits `--batch-size` prompts of `--input-len` random tokens, each generating
//! exactly `--output-len` tokens (EOS ignored), and times until the whole batch has finished.
//! `--num-iters-warmup` untimed iterations run first, then `--num-iters` timed ones; prints
//! the average and the 10/25/50/75/90/99th percentiles in seconds.
//!
//! Every iteration draws fresh prompts, so the prefix cache never serves a repeated prompt.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use super::offline::{OfflineBench, progress, sampling_params};
use super::stats::{mean, percentile};
use crate::EngineFlags;

/// The percentiles printed and written, as vLLM's latency benchmark reports them.
const PERCENTILES: [f64; 6] = [10.0, 25.0, 50.0, 75.0, 90.0, 99.0];

/// `ember bench latency` flags.
#[derive(Debug, Args)]
pub struct LatencyArgs {
    #[command(flatten)]
    engine: EngineFlags,
    /// Prompt length in tokens (random token ids).
    #[arg(long, default_value_t = 32)]
    input_len: usize,
    /// Generated tokens per prompt (EOS ignored).
    #[arg(long, default_value_t = 128)]
    output_len: usize,
    /// Prompts per batch.
    #[arg(long, default_value_t = 8)]
    batch_size: usize,
    /// Untimed iterations first.
    #[arg(long, default_value_t = 10)]
    num_iters_warmup: usize,
    /// Timed iterations.
    #[arg(long, default_value_t = 30)]
    num_iters: usize,
    /// Sampling temperature (vLLM's benchmark samples at 1.0; 0 = greedy).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Write the results as JSON to this file.
    #[arg(long)]
    output_json: Option<PathBuf>,
}

/// Runs `ember bench latency`.
pub fn run(args: LatencyArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.batch_size >= 1 && args.num_iters >= 1, "--batch-size and --num-iters must be at least 1");
    let mut bench = OfflineBench::load(&args.engine)?;
    bench.check_lengths(args.input_len, args.output_len)?;
    let params = sampling_params(args.output_len, args.temperature);
    let hidden = indicatif::ProgressBar::hidden();

    let warmup = progress(args.num_iters_warmup as u64, "warm-up iterations");
    for _ in 0..args.num_iters_warmup {
        let prompts = bench.dataset.prompts(args.batch_size, args.input_len);
        bench.run(prompts, &params, &hidden)?;
        warmup.inc(1);
    }
    warmup.finish_and_clear();

    let bar = progress(args.num_iters as u64, "iterations");
    let mut latencies = Vec::with_capacity(args.num_iters);
    let mut output_tokens = 0;
    for _ in 0..args.num_iters {
        let prompts = bench.dataset.prompts(args.batch_size, args.input_len);
        let started = Instant::now();
        let outputs = bench.run(prompts, &params, &hidden)?;
        latencies.push(started.elapsed().as_secs_f64());
        output_tokens += super::offline::output_tokens(&outputs);
        bar.inc(1);
    }
    bar.finish_and_clear();

    let avg = mean(&latencies);
    let percentiles: Vec<(f64, f64)> = PERCENTILES.iter().map(|&p| (p, percentile(&latencies, p))).collect();
    println!("Avg latency: {avg:.4} seconds");
    for (p, value) in &percentiles {
        println!("{p:.0}% percentile latency: {value:.4} seconds");
    }

    if let Some(path) = &args.output_json {
        let info = bench.info();
        let value = serde_json::json!({
            "model": args.engine.model()?,
            "backend": info.backend,
            "dtype": info.dtype,
            "input_len": args.input_len,
            "output_len": args.output_len,
            "batch_size": args.batch_size,
            "num_iters": args.num_iters,
            "num_iters_warmup": args.num_iters_warmup,
            "total_output_tokens": output_tokens,
            "avg_latency": avg,
            "latencies": latencies,
            "percentiles": percentiles.iter().map(|(p, v)| (format!("{p:.0}"), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        });
        super::write_json(path, &value)?;
    }
    Ok(())
}
