//! Server-sent events: a [`ChunkBuilder`] turns engine outputs into `data:` payloads, and
//! [`sse_response`] drives it: optional opening events, one batch of events per output, the
//! builder's closing events (the usage chunk), then `data: [DONE]`. An engine error after the
//! stream started is sent as an `{"error": …}` event before `[DONE]`, as vLLM does. Comment
//! lines keep idle connections alive.
//!
//! The SSE body owns the engine streams: when the client disconnects, hyper drops the body,
//! which drops the streams, which aborts the requests and frees their KV blocks.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use ember_engine::RequestOutput;
use futures_util::stream::{self, StreamExt};

use crate::error::ApiError;
use crate::generation::{Generation, MergedStream, merge};

/// Seconds between keep-alive comments on an idle stream.
const KEEP_ALIVE_SECS: u64 = 10;

/// Builds the `data:` payloads of one streaming response.
pub trait ChunkBuilder: Send + 'static {
    /// Events before any output (e.g. the chat role delta).
    fn start(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// Events for one output of prompt `prompt_index`.
    fn on_output(&mut self, prompt_index: usize, out: &RequestOutput) -> Vec<String>;
    /// Events after the last output (e.g. the usage chunk).
    fn finish(&mut self) -> Vec<String>;
}

enum Phase {
    Start,
    Running,
    Done,
}

/// The SSE response for `generations`, shaped by `builder`.
pub fn sse_response<B: ChunkBuilder>(generations: Vec<Generation>, builder: B) -> Response {
    let merged: MergedStream = merge(generations);
    let events = stream::unfold((merged, builder, Phase::Start), |(mut merged, mut builder, phase)| async move {
        match phase {
            Phase::Start => Some((builder.start(), (merged, builder, Phase::Running))),
            Phase::Running => match merged.next().await {
                Some((i, Ok(out))) => Some((builder.on_output(i, &out), (merged, builder, Phase::Running))),
                Some((_, Err(e))) => {
                    let body = serde_json::to_string(&ApiError::from(e).body()).unwrap_or_default();
                    Some((vec![body, "[DONE]".to_string()], (merged, builder, Phase::Done)))
                }
                None => {
                    let mut tail = builder.finish();
                    tail.push("[DONE]".to_string());
                    Some((tail, (merged, builder, Phase::Done)))
                }
            },
            Phase::Done => None,
        }
    })
    .flat_map(|payloads| stream::iter(payloads.into_iter().map(|p| Ok::<_, Infallible>(Event::default().data(p)))));
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(KEEP_ALIVE_SECS)))
        .into_response()
}

/// A stream holding one complete response as a single event, then `[DONE]` (for requests
/// that asked to stream but cannot be streamed, such as `best_of > n`).
pub fn single_event_stream(json: String) -> Response {
    let events = stream::iter([json, "[DONE]".to_string()].map(|p| Ok::<_, Infallible>(Event::default().data(p))));
    Sse::new(events).into_response()
}
