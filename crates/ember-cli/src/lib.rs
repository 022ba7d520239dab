//! The `ember` command line.
//!
//! - `ember serve MODEL`: the OpenAI-compatible server (vLLM's `vllm serve`).
//! - `ember generate`: offline batch generation over prompts (vLLM's `LLM.generate`).
//! - `ember bench throughput|latency|serve`: vLLM's benchmarks (`vllm bench ...`).

mod bench;
mod engine_flags;
mod generate;
mod serve;

use clap::{Parser, Subcommand};

pub use engine_flags::EngineFlags;

/// Ember: LLM inference on cpu, wgpu (Vulkan/Metal) and cuda.
#[derive(Debug, Parser)]
#[command(name = "ember", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the model over an OpenAI-compatible HTTP API (like `vllm serve`).
    Serve(serve::ServeArgs),
    /// Generate completions for prompts, offline (continuous batching underneath).
    Generate(generate::GenerateArgs),
    /// Benchmark throughput, latency or a running server (like `vllm bench`).
    Bench(bench::BenchArgs),
}

/// Entry point of the `ember` binary.
pub fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_tracing();
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Bench(args) => bench::run(args),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("EMBER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
