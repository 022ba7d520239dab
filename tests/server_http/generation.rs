//! Non-streaming generation over HTTP: greedy tokens equal transformers' (through
//! `return_tokens_as_token_ids`), every prompt form, echo, n, seeds, stop strings and stop
//! token ids with vLLM's `stop_reason`, chat, tokenize/detokenize, exact usage counts.

use serde_json::{Value, json};

use crate::common::{LOGPROB_TOLERANCE, reference};
use crate::ids_from_tokens;
use crate::server_support::{Server, get, post};

#[test]
fn greedy_completions_match_transformers_with_logprobs_and_usage() {
    let server = Server::start("llama3", "cpu", &[]);
    let reference = reference("llama3");
    for prompt in reference.prompts.iter().take(3) {
        let steps = 24;
        let (status, body) = post(
            &server,
            "/v1/completions",
            &json!({"model": server_model(&server), "prompt": prompt.token_ids, "max_tokens": steps, "temperature": 0,
                    "ignore_eos": true, "logprobs": 5, "return_tokens_as_token_ids": true}),
        );
        assert_eq!(status, 200, "{body}");
        let choice = &body["choices"][0];
        let logprobs = &choice["logprobs"];
        let ids = ids_from_tokens(&logprobs["tokens"]);
        assert_eq!(ids, prompt.greedy.token_ids[..steps], "greedy tokens for {:?}", prompt.text);
        for (i, step) in prompt.greedy.steps.iter().take(steps).enumerate() {
            let ours = logprobs["token_logprobs"][i].as_f64().unwrap() as f32;
            assert!((ours - step.logprob).abs() < LOGPROB_TOLERANCE, "step {i}: {ours} vs {}", step.logprob);
            let top = logprobs["top_logprobs"][i].as_object().unwrap();
            assert_eq!(top.len(), 5, "top_logprobs at {i}");
            let (best_id, best_lp) = step.top5[0];
            let ours = top[&format!("token_id:{best_id}")].as_f64().unwrap() as f32;
            assert!((ours - best_lp).abs() < LOGPROB_TOLERANCE);
        }
        assert_eq!(choice["finish_reason"], "length");
        assert_eq!(choice["stop_reason"], Value::Null);
        let n = prompt.token_ids.len();
        assert_eq!(body["usage"], json!({"prompt_tokens": n, "completion_tokens": steps, "total_tokens": n + steps}));
        assert_eq!(body["object"], "text_completion");
        assert!(body["id"].as_str().unwrap().starts_with("cmpl-"));
    }
}

fn server_model(server: &Server) -> String {
    let (_, models) = get(server, "/v1/models");
    let models: Value = serde_json::from_str(&models).unwrap();
    models["data"][0]["id"].as_str().unwrap().to_string()
}

#[test]
fn every_prompt_form_echo_and_n() {
    let server = Server::start("qwen2", "cpu", &[]);
    let greedy = |prompt: Value, extra: Value| {
        let mut body = json!({"prompt": prompt, "max_tokens": 8, "temperature": 0, "ignore_eos": true});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, body) = post(&server, "/v1/completions", &body);
        assert_eq!(status, 200, "{body}");
        body
    };
    let one = greedy(json!("Hello there"), json!({}));
    let text = one["choices"][0]["text"].as_str().unwrap().to_string();
    let prompt_tokens = one["usage"]["prompt_tokens"].as_u64().unwrap();

    // The same prompt as token ids (from /tokenize) gives the same text.
    let (_, tok) = post(&server, "/tokenize", &json!({"prompt": "Hello there"}));
    assert_eq!(tok["count"].as_u64(), Some(prompt_tokens));
    let ids = tok["tokens"].clone();
    assert_eq!(greedy(ids.clone(), json!({}))["choices"][0]["text"], text);

    // Lists of prompts: one choice per prompt, in order, usage summed.
    let many = greedy(json!(["Hello there", "Hello there"]), json!({}));
    let choices = many["choices"].as_array().unwrap();
    assert_eq!(choices.len(), 2);
    assert_eq!((choices[0]["index"].as_u64(), choices[1]["index"].as_u64()), (Some(0), Some(1)));
    assert!(choices.iter().all(|c| c["text"] == text));
    assert_eq!(many["usage"]["prompt_tokens"].as_u64(), Some(2 * prompt_tokens));
    assert_eq!(many["usage"]["completion_tokens"].as_u64(), Some(16));
    let lists = greedy(json!([ids.clone(), ids]), json!({}));
    assert_eq!(lists["choices"].as_array().unwrap().len(), 2);

    // echo prepends the prompt.
    let echoed = greedy(json!("Hello there"), json!({"echo": true}));
    assert_eq!(echoed["choices"][0]["text"].as_str().unwrap(), format!("Hello there{text}"));
    // With logprobs, echo lists the prompt tokens first (the first one has no logprob).
    let echoed = greedy(json!("Hello there"), json!({"echo": true, "logprobs": 1}));
    let lp = &echoed["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"].as_array().unwrap().len() as u64, prompt_tokens + 8);
    assert!(lp["token_logprobs"][0].is_null());
    assert!(lp["token_logprobs"][1].as_f64().is_some_and(|v| v <= 0.0));

    // n > 1: indices 0..n, the prompt counted once.
    let n = greedy(json!("Hello there"), json!({"n": 3, "temperature": 1.0, "seed": 5}));
    let idx: Vec<_> = n["choices"].as_array().unwrap().iter().map(|c| c["index"].as_u64().unwrap()).collect();
    assert_eq!(idx, vec![0, 1, 2]);
    assert_eq!(n["usage"]["prompt_tokens"].as_u64(), Some(prompt_tokens));
    assert_eq!(n["usage"]["completion_tokens"].as_u64(), Some(24));

    // best_of: 4 samples generated, the most likely one returned (all 4 counted, as vLLM does).
    let best = greedy(json!("Hello there"), json!({"n": 1, "best_of": 4, "temperature": 1.0, "seed": 9}));
    assert_eq!(best["choices"].as_array().unwrap().len(), 1);
    assert_eq!(best["choices"][0]["index"], 0);
}

#[test]
fn seeds_reproduce_and_stops_report_their_reason() {
    let server = Server::start("llama3", "cpu", &[]);
    let sample = |seed: u64| {
        let (status, body) = post(
            &server,
            "/v1/completions",
            &json!({"prompt": "Once upon", "max_tokens": 24, "temperature": 1.5, "top_p": 0.95, "seed": seed, "ignore_eos": true}),
        );
        assert_eq!(status, 200, "{body}");
        body["choices"][0]["text"].as_str().unwrap().to_string()
    };
    let a = sample(1234);
    assert_eq!(a, sample(1234), "same seed, same text");
    assert!((1..6).map(|s| sample(s)).any(|t| t != a), "other seeds never differ: the seed is ignored");

    // Greedy text, then stop at a token id and at a string taken from it.
    let greedy = |extra: Value| {
        let mut body = json!({"prompt": "Once upon", "max_tokens": 24, "temperature": 0, "ignore_eos": true,
                              "logprobs": 0, "return_tokens_as_token_ids": true});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let (status, body) = post(&server, "/v1/completions", &body);
        assert_eq!(status, 200, "{body}");
        body["choices"][0].clone()
    };
    let full = greedy(json!({}));
    let ids = ids_from_tokens(&full["logprobs"]["tokens"]);
    let stop_id = ids[4];
    let first = ids.iter().position(|&t| t == stop_id).unwrap();
    let stopped = greedy(json!({"stop_token_ids": [stop_id]}));
    assert_eq!(stopped["finish_reason"], "stop");
    assert_eq!(stopped["stop_reason"], json!(stop_id));
    assert_eq!(ids_from_tokens(&stopped["logprobs"]["tokens"]), ids[..=first]);

    let text = full["text"].as_str().unwrap();
    let chars: Vec<char> = text.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 2].iter().collect();
    let cut = text.find(&stop).unwrap();
    let stopped = greedy(json!({"stop": [stop.clone()]}));
    assert_eq!(stopped["finish_reason"], "stop");
    assert_eq!(stopped["stop_reason"], json!(stop));
    assert_eq!(stopped["text"].as_str().unwrap(), &text[..cut]);
    let kept = greedy(json!({"stop": stop.clone(), "include_stop_str_in_output": true}));
    assert_eq!(kept["text"].as_str().unwrap(), &text[..cut + stop.len()]);
}

#[test]
fn chat_completions_render_the_template() {
    let server = Server::start("qwen3", "cpu", &[]);
    let messages = json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi!"}]);
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        &json!({"messages": messages, "max_completion_tokens": 10, "temperature": 0, "ignore_eos": true, "logprobs": true, "top_logprobs": 2}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["object"], "chat.completion");
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    let choice = &body["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    let content = choice["message"]["content"].as_str().unwrap();
    assert_eq!(choice["finish_reason"], "length");
    let lps = choice["logprobs"]["content"].as_array().unwrap();
    assert_eq!(lps.len(), 10);
    assert!(lps.iter().all(|e| e["top_logprobs"].as_array().unwrap().len() == 2 && e["bytes"].is_array()));

    // The prompt is exactly the rendered template: /tokenize with the same messages agrees.
    let (_, tok) = post(&server, "/tokenize", &json!({"messages": messages}));
    assert_eq!(body["usage"]["prompt_tokens"], tok["count"]);
    assert_eq!(body["usage"]["completion_tokens"], 10);

    // The same conversation as a completion of the rendered prompt gives the same text.
    let (_, ids) = post(&server, "/tokenize", &json!({"messages": messages}));
    let (_, completion) = post(
        &server,
        "/v1/completions",
        &json!({"prompt": ids["tokens"], "max_tokens": 10, "temperature": 0, "ignore_eos": true}),
    );
    assert_eq!(completion["choices"][0]["text"], content);

    // continue_final_message leaves the assistant's message open.
    let (status, cont) = post(
        &server,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Well"}],
                "add_generation_prompt": false, "continue_final_message": true, "max_tokens": 4}),
    );
    assert_eq!(status, 200, "{cont}");
    let (_, detok) = post(&server, "/detokenize", &json!({"tokens": ids["tokens"]}));
    assert!(detok["prompt"].as_str().unwrap().contains("Be brief."), "{detok}");
}
