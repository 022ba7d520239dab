//! `ember bench serve`: the online benchmark, an HTTP client like `vllm bench serve`, against a
//! running OpenAI-compatible server (Ember's or vLLM's).
//!
//! `--num-prompts` random-token prompts (`--dataset-name random`, `--random-input-len` tokens,
//! sent as token ids so the length is exact) are sent as streamed completions with
//! `ignore_eos` and `max_tokens = --random-output-len`. Arrivals follow a Poisson process of
//! `--request-rate` requests per second (exponential gaps, seeded by `--seed`; `inf` sends all
//! at once), at most `--max-concurrency` in flight. One untimed test request (its own prompt) checks
//! the set-up first. Prints vLLM's result table; `--output-json` writes the numbers under vLLM's keys.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use super::client::{CompletionsClient, RequestOutcome};
use super::dataset::{RandomDataset, load_tokenizer};
use super::offline::progress;
use super::serve_report::{Metric, ServeMetrics};
use super::stats::poisson_arrivals;

/// `ember bench serve` flags.
#[derive(Debug, Args)]
pub struct ServeBenchArgs {
    /// Server URL (overrides --host and --port), e.g. http://127.0.0.1:8000.
    #[arg(long)]
    base_url: Option<String>,
    /// Server host.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port.
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// Completions endpoint.
    #[arg(long, default_value = "/v1/completions")]
    endpoint: String,
    /// Model name sent in requests (default: the first model of /v1/models).
    #[arg(long)]
    model: Option<String>,
    /// Tokenizer for the random prompts: a model folder or a tokenizer.json (default: --model,
    /// when it is a local folder).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Dataset (only `random`: uniform random token ids).
    #[arg(long, default_value = "random")]
    dataset_name: String,
    /// Prompt length in tokens.
    #[arg(long, default_value_t = 1024)]
    random_input_len: usize,
    /// Tokens generated per request.
    #[arg(long, default_value_t = 128)]
    random_output_len: usize,
    /// Number of requests.
    #[arg(long, default_value_t = 1000)]
    num_prompts: usize,
    /// Requests per second, Poisson arrivals; `inf` sends everything at once.
    #[arg(long, default_value = "inf")]
    request_rate: String,
    /// Most requests in flight at once (default: no limit).
    #[arg(long)]
    max_concurrency: Option<usize>,
    /// Seed of the prompts and the arrival times.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sampling temperature (vLLM's serving benchmark is greedy unless told otherwise).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    /// Send `ignore_eos: true` (the default: every request generates exactly its output length).
    #[arg(long, overrides_with = "no_ignore_eos")]
    ignore_eos: bool,
    /// Send `ignore_eos: false`: requests may stop at the model's end-of-sequence token.
    #[arg(long)]
    no_ignore_eos: bool,
    /// Metrics to summarise: any of ttft, tpot, itl, e2el.
    #[arg(long, default_value = "ttft,tpot,itl,e2el")]
    percentile_metrics: String,
    /// Percentiles to report, comma-separated (e.g. 50,90,99).
    #[arg(long, default_value = "99")]
    metric_percentiles: String,
    /// Bearer token for the server (`--api-key` of `ember serve` / `vllm serve`).
    #[arg(long, env = "OPENAI_API_KEY")]
    api_key: Option<String>,
    /// Write the results as JSON to this file.
    #[arg(long)]
    output_json: Option<PathBuf>,
}

/// Runs `ember bench serve`.
pub fn run(args: ServeBenchArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(args))
}

fn parse_rate(rate: &str) -> anyhow::Result<f64> {
    let r: f64 = rate.parse().map_err(|_| anyhow::anyhow!("--request-rate {rate:?}: a number of requests/s or inf"))?;
    anyhow::ensure!(r > 0.0, "--request-rate must be positive (or inf)");
    Ok(r)
}

fn parse_percentiles(list: &str) -> anyhow::Result<Vec<f64>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.parse::<f64>() {
            Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
            _ => anyhow::bail!("--metric-percentiles: {s:?} is not a percentile in [0, 100]"),
        })
        .collect()
}

async fn run_async(args: ServeBenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.dataset_name == "random", "--dataset-name {:?}: only `random` is supported", args.dataset_name);
    anyhow::ensure!(
        args.endpoint.ends_with("/completions") && !args.endpoint.contains("chat"),
        "--endpoint {}: only the completions API is supported (prompts are token ids)",
        args.endpoint
    );
    anyhow::ensure!(args.num_prompts >= 1 && args.random_input_len >= 1 && args.random_output_len >= 1, "--num-prompts, --random-input-len and --random-output-len must be at least 1");
    anyhow::ensure!(args.max_concurrency != Some(0), "--max-concurrency must be at least 1");
    let rate = parse_rate(&args.request_rate)?;
    let metrics = Metric::parse_list(&args.percentile_metrics)?;
    let percentiles = parse_percentiles(&args.metric_percentiles)?;
    let base = args.base_url.clone().unwrap_or_else(|| format!("http://{}:{}", args.host, args.port));
    let base = base.trim_end_matches('/').to_string();
    anyhow::ensure!(base.starts_with("http://"), "{base}: only plain http:// servers are supported (no TLS in this client)");

    let http = reqwest::Client::builder().tcp_nodelay(true).pool_max_idle_per_host(usize::MAX).build()?;
    let model = match &args.model {
        Some(m) => m.clone(),
        None => first_model(&http, &base, args.api_key.as_deref()).await?,
    };
    let tokenizer_path = args.tokenizer.clone().unwrap_or_else(|| PathBuf::from(&model));
    let tokenizer = load_tokenizer(&tokenizer_path)
        .map_err(|e| anyhow::anyhow!("{e}; the random prompts need the model's tokenizer: pass --tokenizer DIR_OR_FILE"))?;
    let mut dataset = RandomDataset::new(&tokenizer, None, args.seed)?;
    tracing::info!("model {model}; random prompts over {} token ids of {}", dataset.allowed().len(), tokenizer_path.display());
    let prompts = Arc::new(dataset.prompts(args.num_prompts, args.random_input_len));
    // Its own prompt, so that the test request does not leave a prefix-cache hit behind.
    let test_prompt = dataset.prompt(args.random_input_len);
    let client = CompletionsClient {
        http,
        url: format!("{base}{}", args.endpoint),
        model: model.clone(),
        temperature: args.temperature,
        ignore_eos: !args.no_ignore_eos,
        api_key: args.api_key.clone(),
    };

    eprintln!("Starting initial single prompt test run...");
    let test = client.send(&test_prompt, args.random_output_len).await;
    anyhow::ensure!(test.success, "the initial test request failed ({}): check the server and the flags", test.error);
    eprintln!("Initial test run completed. Starting main benchmark run...");
    println!("Traffic request rate: {}", if rate.is_finite() { format!("{rate}") } else { "inf".into() });
    println!("Maximum request concurrency: {}", args.max_concurrency.map_or("None".into(), |c| c.to_string()));

    let arrivals = poisson_arrivals(args.num_prompts, rate, args.seed);
    let limit = Arc::new(tokio::sync::Semaphore::new(args.max_concurrency.unwrap_or(tokio::sync::Semaphore::MAX_PERMITS)));
    let bar = progress(args.num_prompts as u64, "requests");
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(args.num_prompts);
    for (i, offset) in arrivals.into_iter().enumerate() {
        let (client, prompts, limit, bar) = (client.clone(), Arc::clone(&prompts), Arc::clone(&limit), bar.clone());
        let output_len = args.random_output_len;
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(started + Duration::from_secs_f64(offset)).await;
            let _permit = limit.acquire().await.expect("the semaphore is never closed");
            let outcome = client.send(&prompts[i], output_len).await;
            bar.inc(1);
            outcome
        }));
    }
    let mut outcomes: Vec<RequestOutcome> = Vec::with_capacity(tasks.len());
    for task in tasks {
        outcomes.push(task.await?);
    }
    let duration = started.elapsed().as_secs_f64();
    bar.finish_and_clear();

    let result = ServeMetrics::compute(&outcomes, duration, &metrics, &percentiles);
    println!("{}", result.table());
    if let Some(first) = outcomes.iter().find(|o| !o.success) {
        eprintln!("{} request(s) failed; the first: {}", result.failed, first.error);
    }

    if let Some(path) = &args.output_json {
        let mut value = result.to_json();
        value.insert("model_id".into(), json!(model));
        value.insert("base_url".into(), json!(base));
        value.insert("num_prompts".into(), json!(args.num_prompts));
        value.insert("request_rate".into(), if rate.is_finite() { json!(rate) } else { json!("inf") });
        value.insert("max_concurrency".into(), json!(args.max_concurrency));
        value.insert("random_input_len".into(), json!(args.random_input_len));
        value.insert("random_output_len".into(), json!(args.random_output_len));
        value.insert("input_lens".into(), json!(outcomes.iter().map(|o| o.prompt_len).collect::<Vec<_>>()));
        value.insert("output_lens".into(), json!(outcomes.iter().map(|o| o.output_tokens).collect::<Vec<_>>()));
        value.insert("ttfts".into(), json!(outcomes.iter().map(|o| o.ttft).collect::<Vec<_>>()));
        value.insert("itls".into(), json!(outcomes.iter().map(|o| &o.itl).collect::<Vec<_>>()));
        value.insert("errors".into(), json!(outcomes.iter().map(|o| &o.error).collect::<Vec<_>>()));
        super::write_json(path, &Value::Object(value))?;
    }
    anyhow::ensure!(result.completed > 0, "every request failed");
    Ok(())
}

/// The first model id of `GET /v1/models`.
async fn first_model(http: &reqwest::Client, base: &str, api_key: Option<&str>) -> anyhow::Result<String> {
    let mut request = http.get(format!("{base}/v1/models"));
    if let Some(key) = api_key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.map_err(|e| anyhow::anyhow!("{base}/v1/models: {e} (is the server running?)"))?;
    anyhow::ensure!(response.status().is_success(), "{base}/v1/models answered {}", response.status());
    let body: Value = response.json().await?;
    body.pointer("/data/0/id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| anyhow::anyhow!("{base}/v1/models lists no model; pass --model"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_percentile_lists() {
        assert_eq!(parse_rate("inf").unwrap(), f64::INFINITY);
        assert_eq!(parse_rate("2.5").unwrap(), 2.5);
        assert!(parse_rate("0").is_err() && parse_rate("fast").is_err());
        assert_eq!(parse_percentiles("50, 90,99.9").unwrap(), vec![50.0, 90.0, 99.9]);
        assert!(parse_percentiles("101").is_err());
    }
}
