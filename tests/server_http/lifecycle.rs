//! The server as a process: the informational endpoints, the API key, a client that
//! disconnects mid-stream (its request is aborted and its KV blocks freed), and many
//! concurrent clients batched together, as `/metrics` shows.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::assert_error;
use crate::server_support::{Server, client, get, metric, post};

const VLLM_METRICS: [&str; 12] = [
    "vllm:num_requests_running",
    "vllm:num_requests_waiting",
    "vllm:kv_cache_usage_perc",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
    "vllm:request_success_total",
    "vllm:num_preemptions_total",
    "vllm:prefix_cache_queries_total",
    "vllm:prefix_cache_hits_total",
    "vllm:time_to_first_token_seconds",
    "vllm:inter_token_latency_seconds",
    "vllm:e2e_request_latency_seconds",
];

#[test]
fn health_version_models_and_metrics() {
    let server = Server::start("gemma2", "cpu", &["--served-model-name", "g2", "gemma-two"]);
    assert!(server.health_while_loading.iter().all(|&s| s == 503 || s == 200));
    assert_eq!(get(&server, "/health").0, 200);
    let (status, version) = get(&server, "/version");
    assert_eq!(status, 200);
    assert!(serde_json::from_str::<Value>(&version).unwrap()["version"].is_string());
    let (status, models) = get(&server, "/v1/models");
    assert_eq!(status, 200);
    let models: Value = serde_json::from_str(&models).unwrap();
    assert_eq!(models["object"], "list");
    let ids: Vec<_> = models["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(ids, ["g2", "gemma-two"]);
    assert_eq!(models["data"][0]["max_model_len"], 256);
    let (status, _) = post(&server, "/v1/completions", &json!({"model": "gemma-two", "prompt": "hi", "max_tokens": 3}));
    assert_eq!(status, 200);
    let (_, text) = get(&server, "/metrics");
    for name in VLLM_METRICS {
        assert!(text.contains(name), "/metrics lacks {name}");
    }
    assert_eq!(metric(&text, "vllm:generation_tokens_total"), Some(3.0), "warm-up excluded, 3 tokens counted");
    assert!(text.contains("vllm:request_success_total{finished_reason=\"length\"") || text.contains("finished_reason=\"length\""));
}

#[test]
fn api_key_guards_v1_only() {
    let server = Server::start("llama3", "cpu", &["--api-key", "s3cret"]);
    let http = client();
    let models = server.url("/v1/models");
    let resp = http.get(&models).send().unwrap();
    let status = resp.status().as_u16();
    assert_error(status, &resp.json().unwrap(), 401, None, "no key");
    let resp = http.get(&models).bearer_auth("wrong").send().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = http.get(&models).bearer_auth("s3cret").send().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let resp = http.post(server.url("/v1/completions")).json(&json!({"prompt": "x", "max_tokens": 1})).send().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = http
        .post(server.url("/v1/completions"))
        .bearer_auth("s3cret")
        .json(&json!({"prompt": "x", "max_tokens": 1}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(get(&server, "/health").0, 200, "/health is not guarded");

    // The key may come from the environment instead (vLLM's VLLM_API_KEY).
    let server = Server::start_with_env("llama3", "cpu", &[], &[("EMBER_API_KEY", "from-env")]);
    assert_eq!(http.get(server.url("/v1/models")).send().unwrap().status().as_u16(), 401);
    assert_eq!(http.get(server.url("/v1/models")).bearer_auth("from-env").send().unwrap().status().as_u16(), 200);
}

/// Polls /metrics until `pred` holds (or panics after 30 s).
fn wait_metrics(server: &Server, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (_, text) = get(server, "/metrics");
        if pred(&text) {
            return text;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{what} never happened:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_disconnected_stream_aborts_its_request_and_frees_its_blocks() {
    let server = Server::start("llama3", "cpu", &["--no-enable-prefix-caching"]);
    let resp = client()
        .post(server.url("/v1/completions"))
        .json(&json!({"prompt": "Tell me everything", "max_tokens": 200, "ignore_eos": true, "stream": true}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut reader = BufReader::new(resp);
    let mut line = String::new();
    let mut data_lines = 0;
    while data_lines < 3 {
        line.clear();
        assert!(reader.read_line(&mut line).unwrap() > 0, "stream ended early");
        data_lines += line.starts_with("data: ") as usize;
    }
    let busy = wait_metrics(&server, "the request running", |t| metric(t, "vllm:num_requests_running") == Some(1.0));
    assert!(metric(&busy, "vllm:kv_cache_usage_perc").unwrap() > 0.0);
    drop(reader); // the client goes away mid-stream
    let idle = wait_metrics(&server, "the abort", |t| {
        metric(t, "vllm:num_requests_running") == Some(0.0) && metric(t, "vllm:kv_cache_usage_perc") == Some(0.0)
    });
    let generated = metric(&idle, "vllm:generation_tokens_total").unwrap();
    assert!(generated < 200.0, "the request ran to its end ({generated} tokens) instead of being aborted");
    let (status, _) = post(&server, "/v1/completions", &json!({"prompt": "x", "max_tokens": 2}));
    assert_eq!(status, 200);
}

#[test]
fn concurrent_clients_are_batched() {
    let server = Server::start("qwen2", "cpu", &[]);
    let clients = 8;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    let (status, body) = post(
                        server,
                        "/v1/completions",
                        &json!({"prompt": format!("Client {i} says"), "max_tokens": 48, "ignore_eos": true, "seed": i}),
                    );
                    assert_eq!(status, 200, "{body}");
                    body["usage"]["completion_tokens"].as_u64().unwrap()
                })
            })
            .collect();
        let total: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 48 * clients);
    });
    let text = wait_metrics(&server, "all successes counted", |t| {
        metric(t, "vllm:request_success_total").unwrap_or(0.0) >= clients as f64
    });
    let batch = metric(&text, "ember:max_num_running_requests").unwrap();
    assert!(batch >= 2.0, "requests were never run together (max batch {batch})");
    assert_eq!(metric(&text, "vllm:generation_tokens_total"), Some(48.0 * clients as f64));
    assert_eq!(metric(&text, "vllm:num_requests_running"), Some(0.0));
}
