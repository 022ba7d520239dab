//! Prometheus metrics under vLLM's names (label `model_name`), so existing dashboards work:
//! gauges and counters mirrored from the engine's [`EngineSnapshot`] at scrape time, and
//! per-request histograms (TTFT, inter-token latency, end-to-end latency, prompt and
//! generation lengths) plus `vllm:request_success_total{finished_reason}` observed by
//! [`RequestTimer`]s as outputs stream through the server.
//!
//! Counters end in `_total` on the wire, as `prometheus_client` writes vLLM's. Two Ember
//! extras make continuous batching visible: `ember:max_num_running_requests` (largest batch
//! run in one step since start) and `ember:engine_steps_total`.

use std::sync::Mutex;
use std::time::Instant;

use ember_engine::{EngineSnapshot, RequestOutput};
use prometheus::{Encoder, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry, TextEncoder};

const TTFT_BUCKETS: [f64; 22] =
    [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
const ITL_BUCKETS: [f64; 19] =
    [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
const E2E_BUCKETS: [f64; 21] = [
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
];
const TOKEN_BUCKETS: [f64; 16] =
    [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0, 20000.0, 50000.0, 100000.0];

/// The per-request instruments, cheap to clone (prometheus metrics are shared handles).
#[derive(Clone)]
struct Instruments {
    ttft: Histogram,
    itl: Histogram,
    e2e: Histogram,
    prompt_tokens: Histogram,
    generation_tokens: Histogram,
    success: IntCounterVec,
}

/// Mirrors of the engine's counters.
struct EngineMirrors {
    running: Gauge,
    waiting: Gauge,
    kv_usage: Gauge,
    prompt_tokens: IntCounter,
    generation_tokens: IntCounter,
    preemptions: IntCounter,
    prefix_queries: IntCounter,
    prefix_hits: IntCounter,
    steps: IntCounter,
    max_batch: IntGauge,
}

/// The registry and everything in it.
pub struct Metrics {
    registry: Registry,
    instruments: Instruments,
    mirrors: EngineMirrors,
    /// Engine counters at the end of warm-up, subtracted so that warm-up does not count.
    baseline: Mutex<EngineSnapshot>,
}

impl Metrics {
    /// Registers every metric with the constant label `model_name`.
    pub fn new(model_name: &str) -> Self {
        let registry = Registry::new();
        let opts = |name: &str, help: &str| Opts::new(name, help).const_label("model_name", model_name);
        let hist = |name: &str, help: &str, buckets: &[f64]| {
            let h = Histogram::with_opts(
                HistogramOpts::new(name, help).const_label("model_name", model_name).buckets(buckets.to_vec()),
            )
            .expect("valid histogram");
            registry.register(Box::new(h.clone())).expect("unique metric");
            h
        };
        let gauge = |name: &str, help: &str| {
            let g = Gauge::with_opts(opts(name, help)).expect("valid gauge");
            registry.register(Box::new(g.clone())).expect("unique metric");
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::with_opts(opts(name, help)).expect("valid counter");
            registry.register(Box::new(c.clone())).expect("unique metric");
            c
        };
        let success = IntCounterVec::new(opts("vllm:request_success_total", "Count of finished requests."), &["finished_reason"])
            .expect("valid counter");
        registry.register(Box::new(success.clone())).expect("unique metric");
        let max_batch = IntGauge::with_opts(opts(
            "ember:max_num_running_requests",
            "Largest number of requests run together in one engine step since start.",
        ))
        .expect("valid gauge");
        registry.register(Box::new(max_batch.clone())).expect("unique metric");
        let instruments = Instruments {
            ttft: hist("vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", &TTFT_BUCKETS),
            itl: hist("vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", &ITL_BUCKETS),
            e2e: hist("vllm:e2e_request_latency_seconds", "Histogram of end to end request latency in seconds.", &E2E_BUCKETS),
            prompt_tokens: hist("vllm:request_prompt_tokens", "Number of prefill tokens processed.", &TOKEN_BUCKETS),
            generation_tokens: hist("vllm:request_generation_tokens", "Number of generation tokens processed.", &TOKEN_BUCKETS),
            success,
        };
        let mirrors = EngineMirrors {
            running: gauge("vllm:num_requests_running", "Number of requests in model execution batches."),
            waiting: gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed."),
            kv_usage: gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage."),
            prompt_tokens: counter("vllm:prompt_tokens_total", "Number of prefill tokens processed."),
            generation_tokens: counter("vllm:generation_tokens_total", "Number of generation tokens processed."),
            preemptions: counter("vllm:num_preemptions_total", "Cumulative number of preemption from the engine."),
            prefix_queries: counter("vllm:prefix_cache_queries_total", "Prefix cache queries, in terms of number of queried tokens."),
            prefix_hits: counter("vllm:prefix_cache_hits_total", "Prefix cache hits, in terms of number of cached tokens."),
            steps: counter("ember:engine_steps_total", "Engine steps since start."),
            max_batch,
        };
        Self { registry, instruments, mirrors, baseline: Mutex::new(EngineSnapshot::default()) }
    }

    /// Remembers the engine counters after warm-up; they are subtracted from what is reported.
    pub fn set_baseline(&self, snapshot: EngineSnapshot) {
        if let Ok(mut b) = self.baseline.lock() {
            *b = snapshot;
        }
    }

    /// A timer for one engine request (one prompt, all its `n` choices).
    pub fn start_request(&self) -> RequestTimer {
        RequestTimer {
            instruments: self.instruments.clone(),
            arrival: Instant::now(),
            last_token: None,
            finished: false,
            prompt_tokens: 0,
            generated: Vec::new(),
        }
    }

    /// The exposition text, with the engine mirrors refreshed from `snapshot` (`None` while
    /// the model loads).
    pub fn render(&self, snapshot: Option<&EngineSnapshot>) -> String {
        if let Some(s) = snapshot {
            let base = self.baseline.lock().map(|b| b.clone()).unwrap_or_default();
            let m = &self.mirrors;
            m.running.set(s.num_requests_running as f64);
            m.waiting.set(s.num_requests_waiting as f64);
            m.kv_usage.set(s.kv_cache_usage);
            m.max_batch.set(s.max_batch_size as i64);
            let sync = |c: &IntCounter, now: u64, base: u64| {
                let target = now.saturating_sub(base);
                if target > c.get() {
                    c.inc_by(target - c.get());
                }
            };
            sync(&m.prompt_tokens, s.prompt_tokens_total, base.prompt_tokens_total);
            sync(&m.generation_tokens, s.generation_tokens_total, base.generation_tokens_total);
            sync(&m.preemptions, s.num_preemptions_total, base.num_preemptions_total);
            sync(&m.prefix_queries, s.prefix_cache_queries, base.prefix_cache_queries);
            sync(&m.prefix_hits, s.prefix_cache_hits, base.prefix_cache_hits);
            sync(&m.steps, s.steps_total, base.steps_total);
        }
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!("cannot encode metrics: {e}");
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// Observes one request's latencies as its outputs arrive; a request dropped before it
/// finished (client gone) counts as `finished_reason="abort"`.
pub struct RequestTimer {
    instruments: Instruments,
    arrival: Instant,
    last_token: Option<Instant>,
    finished: bool,
    prompt_tokens: usize,
    generated: Vec<usize>,
}

impl RequestTimer {
    /// Records an output of the request.
    pub fn observe(&mut self, out: &RequestOutput) {
        let now = Instant::now();
        let new_tokens = out.outputs.iter().any(|c| !c.delta_token_ids.is_empty());
        if new_tokens {
            match self.last_token {
                None => self.instruments.ttft.observe(now.duration_since(self.arrival).as_secs_f64()),
                Some(last) => self.instruments.itl.observe(now.duration_since(last).as_secs_f64()),
            }
            self.last_token = Some(now);
        }
        self.prompt_tokens = out.prompt_token_ids.len();
        self.generated = out.outputs.iter().map(|c| c.token_ids.len()).collect();
        if out.finished && !self.finished {
            self.finished = true;
            let i = &self.instruments;
            i.e2e.observe(now.duration_since(self.arrival).as_secs_f64());
            i.prompt_tokens.observe(self.prompt_tokens as f64);
            for c in &out.outputs {
                i.generation_tokens.observe(c.token_ids.len() as f64);
                i.success.with_label_values(&[c.finish_reason.unwrap_or("abort")]).inc();
            }
        }
    }

    /// Marks the request as failed (validation error): nothing more is recorded.
    pub fn discard(&mut self) {
        self.finished = true;
    }
}

impl Drop for RequestTimer {
    fn drop(&mut self) {
        if !self.finished {
            let choices = self.generated.len().max(1) as u64;
            self.instruments.success.with_label_values(&["abort"]).inc_by(choices);
        }
    }
}
