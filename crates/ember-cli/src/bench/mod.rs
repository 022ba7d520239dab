//! `ember bench`: vLLM's three benchmarks with vLLM's flag names and output formats.
//!
//! - `throughput` (`throughput.rs`): offline, all prompts at once through the engine;
//!   prints `Throughput: X requests/s, Y total tokens/s, Z output tokens/s`.
//! - `latency` (`latency.rs`): offline, the time one batch takes, average and percentiles.
//! - `serve` (`serve.rs`, `client.rs`, `serve_report.rs`): an HTTP client against a running
//!   OpenAI-compatible server, Poisson arrivals, TTFT/TPOT/ITL/E2EL.
//!
//! Shared: random-token prompts (`dataset.rs`), the offline engine driver (`offline.rs`) and the
//! statistics (`stats.rs`). Every mode can write its numbers as JSON (`--output-json FILE`).

mod client;
mod dataset;
mod latency;
mod offline;
mod serve;
mod serve_report;
mod stats;
mod throughput;

use clap::{Args, Subcommand};

/// `ember bench` and its mode.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    mode: BenchMode,
}

#[derive(Debug, Subcommand)]
enum BenchMode {
    /// Offline throughput: random-token prompts all submitted at once (like `vllm bench throughput`).
    Throughput(throughput::ThroughputArgs),
    /// Latency of one batch, average and percentiles (like `vllm bench latency`).
    Latency(latency::LatencyArgs),
    /// Benchmark a running OpenAI-compatible server over HTTP (like `vllm bench serve`).
    Serve(serve::ServeBenchArgs),
}

/// Runs `ember bench MODE`.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.mode {
        BenchMode::Throughput(a) => throughput::run(a),
        BenchMode::Latency(a) => latency::run(a),
        BenchMode::Serve(a) => serve::run(a),
    }
}

/// Writes `value` as pretty JSON to `path`.
fn write_json(path: &std::path::Path, value: &serde_json::Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    std::fs::write(path, text + "\n").map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}
