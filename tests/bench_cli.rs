//! `ember bench` end to end, through the real binary on the tiny llama3 fixture (cpu):
//! throughput and latency offline, and serve against a real `ember serve`. Checks the exact
//! token counts in the JSON files and the printed lines vLLM users parse.

use std::process::{Command, Output};

use serde_json::Value;

#[path = "server_support/mod.rs"]
mod server_support;

use server_support::{Server, fixture};

/// Engine flags that keep the offline runs small.
const SMALL_ENGINE: [&str; 8] = ["--backend", "cpu", "--dtype", "float32", "--max-model-len", "64", "--kv-cache-memory-bytes", "8388608"];

fn ember(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ember")).args(args).env("EMBER_LOG", "warn").output().expect("run ember");
    eprintln!("--- ember {}\n{}{}", args.join(" "), String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn stdout_ok(out: &Output) -> String {
    assert!(out.status.success(), "ember failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).expect("utf-8 stdout")
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("JSON written")).expect("valid JSON")
}

/// The number after `label` on the line that starts with it (vLLM's `{:<40} {:<10}` rows).
fn row(stdout: &str, label: &str) -> f64 {
    let line = stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} line in\n{stdout}"));
    line[label.len()..].trim().parse().unwrap_or_else(|_| panic!("no number in {line:?}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

#[test]
fn throughput_counts_and_vllm_line() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("throughput.json");
    let model = fixture("llama3");
    let mut args = vec!["bench", "throughput", "--model", model.to_str().unwrap()];
    args.extend(SMALL_ENGINE);
    args.extend(["--input-len", "16", "--output-len", "8", "--num-prompts", "8", "--num-warmup-prompts", "2"]);
    args.extend(["--output-json", json.to_str().unwrap()]);
    let stdout = stdout_ok(&ember(&args));

    let v = read_json(&json);
    assert_eq!(v["num_requests"], 8);
    assert_eq!(v["total_output_tokens"], 8 * 8);
    assert_eq!(v["total_input_tokens"], 8 * 16);
    assert_eq!(v["total_num_tokens"], 8 * (16 + 8));
    let elapsed = f(&v, "elapsed_time");
    assert!(elapsed > 0.0);
    assert!((f(&v, "requests_per_second") * elapsed - 8.0).abs() < 1e-6);
    assert!((f(&v, "output_tokens_per_second") * elapsed - 64.0).abs() < 1e-6);

    // "Throughput: X requests/s, Y total tokens/s, Z output tokens/s", X/Y/Z with two decimals
    // and equal to the JSON's numbers.
    let line = stdout.lines().find(|l| l.starts_with("Throughput: ")).expect("Throughput line");
    let parts: Vec<&str> = line.trim_start_matches("Throughput: ").split(", ").collect();
    let units = ["requests/s", "total tokens/s", "output tokens/s"];
    let keys = ["requests_per_second", "tokens_per_second", "output_tokens_per_second"];
    assert_eq!(parts.len(), 3, "{line}");
    for ((part, unit), key) in parts.iter().zip(units).zip(keys) {
        let number = part.strip_suffix(unit).unwrap_or_else(|| panic!("{part:?} should end with {unit}")).trim();
        assert_eq!(number.split('.').nth(1).map(str::len), Some(2), "two decimals: {number}");
        assert_eq!(number, format!("{:.2}", f(&v, key)));
    }
    assert_eq!(row(&stdout, "Total num output tokens:"), 64.0);
}

#[test]
fn latency_iterations_and_percentiles() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("latency.json");
    let model = fixture("llama3");
    let mut args = vec!["bench", "latency", "--model", model.to_str().unwrap()];
    args.extend(SMALL_ENGINE);
    args.extend(["--input-len", "8", "--output-len", "4", "--batch-size", "2", "--num-iters-warmup", "1", "--num-iters", "3"]);
    args.extend(["--output-json", json.to_str().unwrap()]);
    let stdout = stdout_ok(&ember(&args));

    let v = read_json(&json);
    let latencies: Vec<f64> = v["latencies"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
    assert_eq!(latencies.len(), 3);
    assert!(latencies.iter().all(|&l| l > 0.0));
    assert_eq!(v["total_output_tokens"], 3 * 2 * 4);
    let avg = f(&v, "avg_latency");
    assert!((avg - latencies.iter().sum::<f64>() / 3.0).abs() < 1e-12);
    let ps = &v["percentiles"];
    let values: Vec<f64> = ["10", "25", "50", "75", "90", "99"].iter().map(|k| f(ps, k)).collect();
    assert!(values.windows(2).all(|w| w[0] <= w[1]), "percentiles increase: {values:?}");
    let mut sorted = latencies.clone();
    sorted.sort_by(f64::total_cmp);
    assert!((values[2] - sorted[1]).abs() < 1e-12, "median of 3 is the middle one");

    let avg_line = stdout.lines().find(|l| l.starts_with("Avg latency: ")).expect("Avg latency line");
    assert_eq!(avg_line, format!("Avg latency: {avg:.4} seconds"));
    for p in ["10", "25", "50", "75", "90", "99"] {
        let prefix = format!("{p}% percentile latency: ");
        assert!(stdout.lines().any(|l| l.starts_with(&prefix) && l.ends_with(" seconds")), "{prefix} line");
    }
}

#[test]
fn serve_against_ember_serve() {
    let server = Server::start("llama3", "cpu", &[]);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("serve.json");
    let args = [
        "bench", "serve", "--base-url", &server.base, "--num-prompts", "6", "--request-rate", "inf",
        "--random-input-len", "16", "--random-output-len", "8", "--output-json", json.to_str().unwrap(),
    ];
    let stdout = stdout_ok(&ember(&args));
    assert!(stdout.contains("============ Serving Benchmark Result ============"), "{stdout}");
    assert_eq!(row(&stdout, "Successful requests:"), 6.0);
    assert_eq!(row(&stdout, "Total input tokens:"), 96.0);
    assert_eq!(row(&stdout, "Total generated tokens:"), 48.0);
    for label in ["Mean TTFT (ms):", "Median TPOT (ms):", "P99 ITL (ms):", "P99 E2EL (ms):", "Request throughput (req/s):"] {
        assert!(row(&stdout, label) > 0.0, "{label}");
    }

    let v = read_json(&json);
    assert_eq!((v["completed"].as_u64(), v["failed"].as_u64()), (Some(6), Some(0)));
    assert_eq!(v["total_output_tokens"], 48);
    assert_eq!(v["output_lens"], serde_json::json!([8, 8, 8, 8, 8, 8]));
    assert_eq!(v["input_lens"], serde_json::json!([16, 16, 16, 16, 16, 16]));
    // Every request streamed more than one chunk, and its first token came before its end.
    for (i, itl) in v["itls"].as_array().unwrap().iter().enumerate() {
        let gaps = itl.as_array().unwrap();
        assert!(!gaps.is_empty() && gaps.len() <= 7, "request {i}: {} gaps", gaps.len());
    }
    assert!(f(&v, "mean_ttft_ms") <= f(&v, "mean_e2el_ms"));
    assert!((f(&v, "request_throughput") * f(&v, "duration") - 6.0).abs() < 1e-6);
    // The server saw exactly the benchmark's requests plus the initial test request.
    let (_, metrics) = server_support::get(&server, "/metrics");
    assert_eq!(server_support::metric(&metrics, "vllm:generation_tokens_total"), Some(7.0 * 8.0));

    // Poisson arrivals with a concurrency cap, other percentiles, model named explicitly.
    let model = fixture("llama3");
    let args = [
        "bench", "serve", "--base-url", &server.base, "--model", model.to_str().unwrap(), "--num-prompts", "4",
        "--request-rate", "40", "--max-concurrency", "2", "--random-input-len", "8", "--random-output-len", "3",
        "--metric-percentiles", "50,90", "--percentile-metrics", "ttft,e2el", "--output-json", json.to_str().unwrap(),
    ];
    let stdout = stdout_ok(&ember(&args));
    assert!(stdout.contains("Maximum request concurrency: 2") && stdout.contains("Traffic request rate: 40"));
    assert!(row(&stdout, "P90 E2EL (ms):") >= row(&stdout, "P50 E2EL (ms):"));
    assert!(!stdout.contains("TPOT"));
    let v = read_json(&json);
    assert_eq!((v["completed"].as_u64(), v["total_output_tokens"].as_u64()), (Some(4), Some(12)));
    assert!(v.get("p50_ttft_ms").is_some() && v.get("p99_ttft_ms").is_none());

    // One request at a time over a reused connection: the tiny model's first token takes about
    // a millisecond. Without TCP_NODELAY on the server, the client's delayed ACK held every
    // streamed chunk for >= 40 ms (Linux's minimum), so a median above 35 ms means it is back.
    let args = [
        "bench", "serve", "--base-url", &server.base, "--num-prompts", "5", "--max-concurrency", "1",
        "--random-input-len", "8", "--random-output-len", "4", "--percentile-metrics", "ttft", "--metric-percentiles", "50",
    ];
    let stdout = stdout_ok(&ember(&args));
    let ttft = row(&stdout, "Median TTFT (ms):");
    assert!(ttft < 35.0, "median TTFT {ttft} ms: are streamed chunks delayed by Nagle's algorithm?");
}

#[test]
fn serve_without_a_server_says_so() {
    let out = ember(&["bench", "serve", "--base-url", "http://127.0.0.1:9", "--num-prompts", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/v1/models") && stderr.contains("is the server running?"), "{stderr}");
}
