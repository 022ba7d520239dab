//! The result of `bench serve`: vLLM's serving metrics computed from the per-request outcomes
//! (successful requests only), printed as vLLM's result table and written as vLLM-named JSON.
//!
//! TTFT, TPOT = (latency − TTFT) / (output tokens − 1) for requests with more than one output
//! token, ITL (every gap, all requests pooled) and E2EL, in milliseconds.

use serde_json::{Map, Value, json};

use super::client::RequestOutcome;
use super::stats::{Summary, percentile_label};

/// A metric of the table: its key, abbreviation and section title.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Metric {
    /// Time to first token.
    Ttft,
    /// Time per output token, first excluded.
    Tpot,
    /// Inter-token latency.
    Itl,
    /// End-to-end latency.
    E2el,
}

impl Metric {
    /// Parses vLLM's `--percentile-metrics` list (`ttft,tpot,itl,e2el`).
    pub fn parse_list(list: &str) -> anyhow::Result<Vec<Metric>> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| match s {
                "ttft" => Ok(Metric::Ttft),
                "tpot" => Ok(Metric::Tpot),
                "itl" => Ok(Metric::Itl),
                "e2el" => Ok(Metric::E2el),
                other => anyhow::bail!("unknown metric {other:?} in --percentile-metrics (ttft, tpot, itl, e2el)"),
            })
            .collect()
    }

    fn key(self) -> &'static str {
        match self {
            Metric::Ttft => "ttft",
            Metric::Tpot => "tpot",
            Metric::Itl => "itl",
            Metric::E2el => "e2el",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Metric::Ttft => "Time to First Token",
            Metric::Tpot => "Time per Output Token (excl. 1st token)",
            Metric::Itl => "Inter-token Latency",
            Metric::E2el => "End-to-end Latency",
        }
    }
}

/// Everything `bench serve` reports.
#[derive(Debug, Clone)]
pub struct ServeMetrics {
    /// Successful requests.
    pub completed: usize,
    /// Failed requests.
    pub failed: usize,
    /// Wall time of the whole run, seconds.
    pub duration: f64,
    /// Prompt tokens of the successful requests.
    pub total_input_tokens: usize,
    /// Generated tokens of the successful requests.
    pub total_output_tokens: usize,
    /// Per metric: its summary in milliseconds.
    pub summaries: Vec<(Metric, Summary)>,
}

impl ServeMetrics {
    /// Computes the metrics of `outcomes` over a run of `duration` seconds.
    pub fn compute(outcomes: &[RequestOutcome], duration: f64, metrics: &[Metric], percentiles: &[f64]) -> Self {
        let ok: Vec<&RequestOutcome> = outcomes.iter().filter(|o| o.success).collect();
        let ms = |v: f64| v * 1000.0;
        let ttfts: Vec<f64> = ok.iter().map(|o| ms(o.ttft)).collect();
        let tpots: Vec<f64> = ok
            .iter()
            .filter(|o| o.output_tokens > 1)
            .map(|o| ms((o.latency - o.ttft) / (o.output_tokens - 1) as f64))
            .collect();
        let itls: Vec<f64> = ok.iter().flat_map(|o| o.itl.iter().map(|&g| ms(g))).collect();
        let e2els: Vec<f64> = ok.iter().map(|o| ms(o.latency)).collect();
        let summaries = metrics
            .iter()
            .map(|&m| {
                let values = match m {
                    Metric::Ttft => &ttfts,
                    Metric::Tpot => &tpots,
                    Metric::Itl => &itls,
                    Metric::E2el => &e2els,
                };
                (m, Summary::of(values, percentiles))
            })
            .collect();
        Self {
            completed: ok.len(),
            failed: outcomes.len() - ok.len(),
            duration,
            total_input_tokens: ok.iter().map(|o| o.prompt_len).sum(),
            total_output_tokens: ok.iter().map(|o| o.output_tokens).sum(),
            summaries,
        }
    }

    /// Successful requests per second.
    pub fn request_throughput(&self) -> f64 {
        self.completed as f64 / self.duration
    }

    /// Generated tokens per second.
    pub fn output_throughput(&self) -> f64 {
        self.total_output_tokens as f64 / self.duration
    }

    /// Prompt plus generated tokens per second.
    pub fn total_token_throughput(&self) -> f64 {
        (self.total_input_tokens + self.total_output_tokens) as f64 / self.duration
    }

    /// vLLM's result table.
    pub fn table(&self) -> String {
        let mut lines = vec![format!("{:=^50}", " Serving Benchmark Result ")];
        let int = |label: &str, v: usize| format!("{label:<40} {v:<10}");
        let float = |label: &str, v: f64| format!("{label:<40} {v:<10.2}");
        lines.push(int("Successful requests:", self.completed));
        if self.failed > 0 {
            lines.push(int("Failed requests:", self.failed));
        }
        lines.push(float("Benchmark duration (s):", self.duration));
        lines.push(int("Total input tokens:", self.total_input_tokens));
        lines.push(int("Total generated tokens:", self.total_output_tokens));
        lines.push(float("Request throughput (req/s):", self.request_throughput()));
        lines.push(float("Output token throughput (tok/s):", self.output_throughput()));
        lines.push(float("Total Token throughput (tok/s):", self.total_token_throughput()));
        for (metric, summary) in &self.summaries {
            let name = metric.key().to_uppercase();
            lines.push(format!("{:-^50}", metric.title()));
            lines.push(float(&format!("Mean {name} (ms):"), summary.mean));
            lines.push(float(&format!("Median {name} (ms):"), summary.median));
            for (p, v) in &summary.percentiles {
                lines.push(float(&format!("P{} {name} (ms):", percentile_label(*p)), *v));
            }
        }
        lines.push("=".repeat(50));
        lines.join("\n")
    }

    /// The numbers under vLLM's JSON keys (`completed`, `mean_ttft_ms`, `p99_itl_ms`, …).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        map.insert("duration".into(), json!(self.duration));
        map.insert("completed".into(), json!(self.completed));
        map.insert("failed".into(), json!(self.failed));
        map.insert("total_input_tokens".into(), json!(self.total_input_tokens));
        map.insert("total_output_tokens".into(), json!(self.total_output_tokens));
        map.insert("request_throughput".into(), json!(self.request_throughput()));
        map.insert("output_throughput".into(), json!(self.output_throughput()));
        map.insert("total_token_throughput".into(), json!(self.total_token_throughput()));
        for (metric, s) in &self.summaries {
            let key = metric.key();
            map.insert(format!("mean_{key}_ms"), json!(s.mean));
            map.insert(format!("median_{key}_ms"), json!(s.median));
            map.insert(format!("std_{key}_ms"), json!(s.std));
            for (p, v) in &s.percentiles {
                map.insert(format!("p{}_{key}_ms", percentile_label(*p)), json!(v));
            }
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(prompt_len: usize, output_tokens: usize, ttft: f64, itl: Vec<f64>) -> RequestOutcome {
        let latency = ttft + itl.iter().sum::<f64>();
        RequestOutcome { success: true, error: String::new(), prompt_len, output_tokens, ttft, itl, latency }
    }

    #[test]
    fn metrics_follow_vllms_definitions() {
        let failed = RequestOutcome { success: false, error: "HTTP 500".into(), prompt_len: 9, ..Default::default() };
        let outcomes = vec![
            outcome(10, 3, 0.100, vec![0.010, 0.030]), // TPOT (0.14 - 0.1) / 2 = 20 ms
            outcome(10, 1, 0.300, vec![]),             // a single token: no TPOT, no ITL
            failed,
        ];
        let all = Metric::parse_list("ttft,tpot,itl,e2el").unwrap();
        let m = ServeMetrics::compute(&outcomes, 2.0, &all, &[50.0, 99.0]);
        assert_eq!((m.completed, m.failed, m.total_input_tokens, m.total_output_tokens), (2, 1, 20, 4));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert!(close(m.request_throughput(), 1.0) && close(m.output_throughput(), 2.0) && close(m.total_token_throughput(), 12.0));
        let get = |metric: Metric| m.summaries.iter().find(|(k, _)| *k == metric).unwrap().1.clone();
        assert!(close(get(Metric::Ttft).mean, 200.0) && close(get(Metric::Ttft).percentiles[1].1, 298.0));
        assert!(close(get(Metric::Tpot).mean, 20.0) && close(get(Metric::Tpot).median, 20.0));
        assert!(close(get(Metric::Itl).mean, 20.0) && close(get(Metric::Itl).percentiles[1].1, 29.8));
        assert!(close(get(Metric::E2el).median, 220.0));

        let json = m.to_json();
        assert_eq!(json["completed"], 2);
        assert!(close(json["p99_ttft_ms"].as_f64().unwrap(), 298.0));
        assert!(json.contains_key("std_e2el_ms") && json.contains_key("median_itl_ms"));
    }

    #[test]
    fn table_has_vllms_layout() {
        let m = ServeMetrics::compute(&[outcome(4, 2, 0.05, vec![0.01])], 1.0, &[Metric::Ttft, Metric::Tpot], &[99.0, 99.9]);
        let table = m.table();
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], "============ Serving Benchmark Result ============");
        assert_eq!(lines[1].trim_end(), format!("{:<40} 1", "Successful requests:"));
        // (4 input + 2 output tokens) / 1 s, left-aligned in a 10-wide column as vLLM prints it.
        assert!(lines.contains(&format!("{:<40} {:<10}", "Total Token throughput (tok/s):", "6.00").as_str()));
        assert!(lines.contains(&"---------------Time to First Token----------------"));
        assert!(lines.iter().any(|l| l.starts_with("P99.9 TPOT (ms):") && l.contains("10.00")));
        assert!(!table.contains("Failed requests"));
        assert_eq!(*lines.last().unwrap(), "=".repeat(50));
        assert!(Metric::parse_list("ttft,bogus").is_err());
    }
}
