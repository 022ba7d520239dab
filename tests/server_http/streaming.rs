//! Server-sent events: the chunk shapes of OpenAI's streams, `include_usage`, `[DONE]`,
//! `n > 1` per-choice indices, and streamed text equal to non-streamed text for one seed.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::server_support::{Server, chunks, post, stream};

#[test]
fn completion_stream_equals_the_response() {
    let server = Server::start("mistral", "cpu", &[]);
    let body = json!({"prompt": ["Tell me", "A story"], "max_tokens": 20, "temperature": 0.9, "seed": 42, "n": 2,
                      "ignore_eos": true, "logprobs": 1});
    let (status, whole) = post(&server, "/v1/completions", &body);
    assert_eq!(status, 200, "{whole}");

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let events = chunks(&stream(&server, "/v1/completions", &streamed));
    let (usage_chunk, choice_chunks) = events.split_last().expect("chunks");
    let mut texts: BTreeMap<u64, String> = BTreeMap::new();
    let mut finished: BTreeMap<u64, Value> = BTreeMap::new();
    let mut logprob_tokens: BTreeMap<u64, usize> = BTreeMap::new();
    let id = choice_chunks[0]["id"].clone();
    for chunk in choice_chunks {
        assert_eq!(chunk["object"], "text_completion");
        assert_eq!(chunk["id"], id, "one id per stream");
        assert_eq!(chunk["usage"], Value::Null, "usage only in the last chunk");
        for choice in chunk["choices"].as_array().unwrap() {
            let index = choice["index"].as_u64().unwrap();
            assert!(!finished.contains_key(&index), "choice {index} continued after finishing");
            texts.entry(index).or_default().push_str(choice["text"].as_str().unwrap());
            *logprob_tokens.entry(index).or_default() += choice["logprobs"]["tokens"].as_array().map_or(0, Vec::len);
            if !choice["finish_reason"].is_null() {
                finished.insert(index, choice["finish_reason"].clone());
            }
        }
    }
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], whole["usage"]);
    for choice in whole["choices"].as_array().unwrap() {
        let index = choice["index"].as_u64().unwrap();
        assert_eq!(texts[&index], choice["text"].as_str().unwrap(), "choice {index}: streamed text differs");
        assert_eq!(finished[&index], choice["finish_reason"]);
        assert_eq!(logprob_tokens[&index], 20);
    }
    assert_eq!(texts.len(), 4);
}

#[test]
fn chat_stream_sends_the_role_first_then_content() {
    let server = Server::start("llama2", "cpu", &[]);
    let body = json!({"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 12, "temperature": 0, "ignore_eos": true});
    let (status, whole) = post(&server, "/v1/chat/completions", &body);
    assert_eq!(status, 200, "{whole}");
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let events = chunks(&stream(&server, "/v1/chat/completions", &streamed));
    assert!(events.iter().all(|c| c["object"] == "chat.completion.chunk"));
    let first = &events[0]["choices"][0];
    assert_eq!(first["delta"]["role"], "assistant", "first delta carries the role: {}", events[0]);
    let mut content = String::new();
    for chunk in &events[1..] {
        let delta = &chunk["choices"][0]["delta"];
        assert!(delta.get("role").is_none() || delta["role"].is_null(), "role repeated: {chunk}");
        content.push_str(delta["content"].as_str().unwrap_or(""));
    }
    assert_eq!(content, whole["choices"][0]["message"]["content"].as_str().unwrap());
    let last = &events.last().unwrap()["choices"][0];
    assert_eq!(last["finish_reason"], "length");
    assert!(events.iter().all(|c| c.get("usage").is_none_or(Value::is_null)), "no usage unless asked");
}
