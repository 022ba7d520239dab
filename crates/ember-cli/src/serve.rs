//! `ember serve MODEL`: the OpenAI-compatible server with vLLM's flags and defaults. A spinner
//! runs while the weights load and the kernels warm up; then the KV capacity and
//! "ready on http://HOST:PORT" are logged. Ctrl-C stops it gracefully.

use std::path::Path;
use std::time::{Duration, Instant};

use clap::Args;
use ember_engine::{Task, UsageContext};
use ember_server::{ServeHooks, ServerConfig};
use indicatif::{ProgressBar, ProgressStyle};

use crate::EngineFlags;

/// `ember serve` flags (engine flags shared with `ember generate`). A flag given twice takes
/// its last value, as with vLLM's argparse.
#[derive(Debug, Args)]
#[command(args_override_self = true)]
pub struct ServeArgs {
    /// Model: a local Hugging Face folder or a hub id (`--model` works too).
    #[arg(value_name = "MODEL")]
    model_tag: Option<String>,
    #[command(flatten)]
    engine: EngineFlags,
    /// Host to listen on (default: all interfaces).
    #[arg(long, default_value = "0.0.0.0")]
    host: String,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Require `Authorization: Bearer KEY` on /v1/* (also the EMBER_API_KEY environment variable).
    #[arg(long, env = "EMBER_API_KEY", hide_env_values = true)]
    api_key: Option<String>,
    /// Name(s) the model answers to in the `model` field (default: MODEL as given); the first is
    /// reported in responses.
    #[arg(long, num_args = 1..)]
    served_model_name: Vec<String>,
    /// Chat template: a Jinja file, or the template itself (default: the tokenizer's).
    #[arg(long)]
    chat_template: Option<String>,
    /// What the model is served for: generate (completions, chat) or embed (/v1/embeddings);
    /// auto picks embed for sentence-transformers folders (modules.json) and encoders (BERT,
    /// XLM-RoBERTa), else generate.
    #[arg(long, default_value = "auto")]
    task: String,
    /// GPUs to split the model over (only 1 is supported yet).
    #[arg(long, default_value_t = 1)]
    tensor_parallel_size: usize,
    /// Render logprob tokens as `token_id:N` in every response.
    #[arg(long)]
    return_tokens_as_token_ids: bool,
}

/// Runs `ember serve`.
pub fn run(mut args: ServeArgs) -> anyhow::Result<()> {
    match (&args.model_tag, &args.engine.model) {
        (Some(tag), Some(flag)) if tag != flag => {
            anyhow::bail!("two different models given: {tag:?} (positional) and --model {flag:?}")
        }
        (Some(tag), _) => args.engine.model = Some(tag.clone()),
        (None, None) => anyhow::bail!("no model given: ember serve MODEL (a folder or a hub id)"),
        (None, Some(_)) => {}
    }
    if args.tensor_parallel_size > 1 {
        anyhow::bail!(
            "--tensor-parallel-size {}: tensor parallelism is not supported yet; Ember runs a model on one device",
            args.tensor_parallel_size
        );
    }
    let mut engine_args = args.engine.to_engine_args(UsageContext::OpenAiApiServer)?;
    engine_args.task = args.task.parse::<Task>()?;
    let model = args.engine.model()?.to_string();
    let mut config = ServerConfig::new(model.clone());
    config.host = args.host.clone();
    config.port = args.port;
    config.api_key = args.api_key.clone().filter(|k| !k.is_empty());
    if !args.served_model_name.is_empty() {
        config.served_model_names = args.served_model_name.clone();
    }
    config.chat_template = args.chat_template.as_deref().map(read_chat_template).transpose()?;
    config.max_logprobs = args.engine.max_logprobs;
    config.return_tokens_as_token_ids = args.return_tokens_as_token_ids;

    let spinner = ProgressBar::new_spinner();
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}]").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    spinner.set_message(format!("loading {model} on {} (weights, KV cache, kernel warm-up)", engine_args.backend));
    let started = Instant::now();
    let host = config.host.clone();
    let listening_spinner = spinner.clone();
    let ready_spinner = spinner.clone();
    let hooks = ServeHooks {
        on_listening: Some(Box::new(move |addr| {
            tracing::info!("listening on http://{host}:{} (loading the model; /health answers 503 until ready)", addr.port());
            listening_spinner.enable_steady_tick(Duration::from_millis(120));
        })),
        on_ready: Some(Box::new({
            let host = config.host.clone();
            move |info, addr| {
                ready_spinner.finish_and_clear();
                if let Some(e) = &info.embedding {
                    tracing::info!(
                        "loaded in {:.1}s: embedding model on backend {}, dtype {}, dimension {}, pooling {}{}, max input {} tokens",
                        started.elapsed().as_secs_f64(),
                        info.backend,
                        info.dtype,
                        e.dimension,
                        e.pooling,
                        if e.normalize { " + normalize" } else { "" },
                        info.max_model_len,
                    );
                    tracing::info!("ready on http://{host}:{} (POST /v1/embeddings)", addr.port());
                    return;
                }
                let per_request = info.max_model_len.div_ceil(info.block_size.max(1)).max(1);
                tracing::info!(
                    "loaded in {:.1}s: backend {}, dtype {}, KV cache {} blocks of {} tokens ({:.1} MiB), maximum concurrency for {} tokens per request: {:.2}x",
                    started.elapsed().as_secs_f64(),
                    info.backend,
                    info.dtype,
                    info.num_blocks,
                    info.block_size,
                    info.kv_cache_bytes as f64 / (1 << 20) as f64,
                    info.max_model_len,
                    info.num_blocks as f64 / per_request as f64,
                );
                tracing::info!("ready on http://{host}:{}", addr.port());
            }
        })),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(ember_server::run(config, engine_args, hooks));
    spinner.finish_and_clear();
    // Do not wait for a model still loading on a blocking thread.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result.map_err(Into::into)
}

/// `--chat-template`: a file's contents, or the argument itself when it looks like a template.
fn read_chat_template(arg: &str) -> anyhow::Result<String> {
    let path = Path::new(arg);
    if path.is_file() {
        return std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("--chat-template {}: {e}", path.display()));
    }
    if arg.contains("{{") || arg.contains("{%") {
        return Ok(arg.to_string());
    }
    anyhow::bail!("--chat-template {arg:?}: no such file (and not a Jinja template)")
}
