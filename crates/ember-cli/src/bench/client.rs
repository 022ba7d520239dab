//! One streamed request of `bench serve`: POST an OpenAI completions body (prompt as token ids,
//! `stream: true` with `stream_options.include_usage`, `ignore_eos`, `max_tokens`), read the
//! server-sent events as they arrive and time them.
//!
//! Timing follows vLLM's benchmark client: the clock starts just before the request is sent;
//! the first chunk carrying `choices` gives the TTFT, each later one adds an inter-token latency
//! (the gap since the previous one), and the latency ends at the last such chunk. The generated
//! token count is the final usage chunk's `completion_tokens` (the number of content chunks when
//! the server sends no usage).

use std::time::Instant;

use ember_engine::TokenId;
use serde_json::{Value, json};

/// What one request measured.
#[derive(Debug, Clone, Default)]
pub struct RequestOutcome {
    /// The stream completed without an error.
    pub success: bool,
    /// Why it failed (HTTP status and body, transport error, or an error event).
    pub error: String,
    /// Prompt tokens sent.
    pub prompt_len: usize,
    /// Tokens generated.
    pub output_tokens: usize,
    /// Time to first token, seconds.
    pub ttft: f64,
    /// Gaps between consecutive content chunks, seconds.
    pub itl: Vec<f64>,
    /// Request start to the last content chunk, seconds.
    pub latency: f64,
}

/// Sends benchmark requests to one completions endpoint.
#[derive(Clone)]
pub struct CompletionsClient {
    /// The HTTP client (one connection pool for all requests).
    pub http: reqwest::Client,
    /// Full URL of the endpoint, e.g. `http://127.0.0.1:8000/v1/completions`.
    pub url: String,
    /// The `model` field of every request.
    pub model: String,
    /// Sampling temperature (0 = greedy).
    pub temperature: f32,
    /// Sent as `ignore_eos` (vLLM's extension: generate exactly `max_tokens`).
    pub ignore_eos: bool,
    /// Bearer token, when the server wants one.
    pub api_key: Option<String>,
}

impl CompletionsClient {
    /// The JSON body of one request.
    pub fn body(&self, prompt: &[TokenId], max_tokens: usize) -> Value {
        json!({
            "model": self.model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": self.temperature,
            "ignore_eos": self.ignore_eos,
            "stream": true,
            "stream_options": { "include_usage": true },
        })
    }

    /// Sends one request and measures it; failures are reported in the outcome, not as errors.
    pub async fn send(&self, prompt: &[TokenId], max_tokens: usize) -> RequestOutcome {
        let mut outcome = RequestOutcome { prompt_len: prompt.len(), ..Default::default() };
        let started = Instant::now();
        if let Err(e) = self.stream(prompt, max_tokens, started, &mut outcome).await {
            outcome.success = false;
            outcome.error = e;
        }
        outcome
    }

    async fn stream(&self, prompt: &[TokenId], max_tokens: usize, started: Instant, out: &mut RequestOutcome) -> Result<(), String> {
        let mut request = self.http.post(&self.url).json(&self.body(prompt, max_tokens));
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.map_err(|e| format!("request failed: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            return Err(format!("HTTP {status}: {text}"));
        }
        let mut parser = SseParser::default();
        let mut last: Option<f64> = None;
        let mut chunks = 0usize;
        let mut usage_tokens: Option<usize> = None;
        let mut done = false;
        while let Some(bytes) = response.chunk().await.map_err(|e| format!("stream broken: {e}"))? {
            let now = started.elapsed().as_secs_f64();
            for payload in parser.push(&bytes) {
                if payload == "[DONE]" {
                    done = true;
                    continue;
                }
                let event: Value = serde_json::from_str(&payload).map_err(|e| format!("bad event {payload:?}: {e}"))?;
                if let Some(error) = event.get("error") {
                    return Err(format!("error event: {error}"));
                }
                if event.get("choices").and_then(Value::as_array).is_some_and(|c| !c.is_empty()) {
                    match last {
                        None => out.ttft = now,
                        Some(previous) => out.itl.push(now - previous),
                    }
                    last = Some(now);
                    chunks += 1;
                } else if let Some(n) = event.pointer("/usage/completion_tokens").and_then(Value::as_u64) {
                    usage_tokens = Some(n as usize);
                }
            }
        }
        if !done {
            return Err("the stream ended without [DONE]".into());
        }
        let Some(last) = last else { return Err("the stream carried no completion chunk".into()) };
        out.latency = last;
        out.output_tokens = usage_tokens.unwrap_or(chunks);
        out.success = true;
        Ok(())
    }
}

/// Splits a server-sent-events byte stream into `data:` payloads, whatever the chunking.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
}

impl SseParser {
    /// Feeds bytes; returns the payloads of the `data:` lines completed by them.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut payloads = Vec::new();
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if let Some(data) = line.strip_prefix("data:") {
                payloads.push(data.strip_prefix(' ').unwrap_or(data).to_string());
            }
        }
        payloads
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_payloads_survive_any_chunking() {
        let stream = b"data: {\"a\":1}\n\ndata: {\"b\":\"\xc3\xa9\"}\r\n\r\n: keep-alive\n\nevent: x\ndata:[DONE]\n\n";
        let whole = SseParser::default().push(stream);
        assert_eq!(whole, vec!["{\"a\":1}".to_string(), "{\"b\":\"é\"}".to_string(), "[DONE]".to_string()]);
        for split in 1..stream.len() {
            let mut parser = SseParser::default();
            let mut got = parser.push(&stream[..split]);
            got.extend(parser.push(&stream[split..]));
            assert_eq!(got, whole, "split at {split}");
        }
        let mut bytewise = SseParser::default();
        let got: Vec<String> = stream.iter().flat_map(|b| bytewise.push(&[*b])).collect();
        assert_eq!(got, whole);
    }

    #[test]
    fn request_body_is_vllms_benchmark_request() {
        let client = CompletionsClient {
            http: reqwest::Client::new(),
            url: "http://127.0.0.1:1/v1/completions".into(),
            model: "m".into(),
            temperature: 0.0,
            ignore_eos: true,
            api_key: None,
        };
        let body = client.body(&[5, 6, 7], 4);
        assert_eq!(body["prompt"], json!([5, 6, 7]));
        assert_eq!(body["max_tokens"], 4);
        assert_eq!(body["ignore_eos"], true);
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(body["model"], "m");
    }
}
