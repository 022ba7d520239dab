//! The same server on the wgpu backend (lavapipe in CI): greedy tokens equal transformers',
//! streaming equals non-streaming, chat works. One server start (wgpu start-up compiles
//! shaders), skipped with the reason when no Vulkan driver is present.

use serde_json::json;

use crate::common::reference;
use crate::ids_from_tokens;
use crate::server_support::{Server, chunks, post, stream, wgpu_available};

#[test]
fn wgpu_server_generates_like_transformers() {
    if let Err(reason) = wgpu_available() {
        eprintln!("skipping the wgpu server test: {reason}");
        return;
    }
    let server = Server::start("qwen3", "wgpu", &[]);
    let reference = reference("qwen3");
    let prompt = &reference.prompts[1];
    let body = json!({"prompt": prompt.token_ids, "max_tokens": 24, "temperature": 0, "ignore_eos": true,
                      "logprobs": 0, "return_tokens_as_token_ids": true});
    let (status, whole) = post(&server, "/v1/completions", &body);
    assert_eq!(status, 200, "{whole}");
    assert_eq!(ids_from_tokens(&whole["choices"][0]["logprobs"]["tokens"]), prompt.greedy.token_ids[..24]);

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let text: String = chunks(&stream(&server, "/v1/completions", &streamed))
        .iter()
        .flat_map(|c| c["choices"].as_array().unwrap().iter().map(|ch| ch["text"].as_str().unwrap().to_string()).collect::<Vec<_>>())
        .collect();
    assert_eq!(text, whole["choices"][0]["text"].as_str().unwrap());

    let (status, chat) = post(&server, "/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}));
    assert_eq!(status, 200, "{chat}");
    assert!(chat["choices"][0]["message"]["content"].is_string());
}
