//! Bad requests: each gets the right status and `{"error": {message, type, param, code}}`,
//! and the server keeps serving afterwards.

use serde_json::{Value, json};

use crate::assert_error;
use crate::server_support::{Server, client, post, post_raw};

#[test]
fn bad_requests_get_openai_errors_and_the_server_survives() {
    let mut server = Server::start("llama3", "cpu", &["--served-model-name", "tiny", "--max-logprobs", "5"]);
    let long: Vec<u32> = vec![5; 300];
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        ("/v1/completions", json!({"model": "nope", "prompt": "x"}), 404, Some("model")),
        ("/v1/completions", json!({"max_tokens": 4}), 400, Some("prompt")),
        ("/v1/completions", json!({"prompt": "x", "temperature": "hot"}), 400, Some("temperature")),
        ("/v1/completions", json!({"prompt": "x", "temperature": -0.5}), 400, Some("temperature")),
        ("/v1/completions", json!({"prompt": "x", "top_p": 0.0}), 400, Some("top_p")),
        ("/v1/completions", json!({"prompt": "x", "top_p": 1.01}), 400, Some("top_p")),
        ("/v1/completions", json!({"prompt": "x", "n": 0}), 400, Some("n")),
        ("/v1/completions", json!({"prompt": "x", "logprobs": 6}), 400, Some("logprobs")),
        ("/v1/completions", json!({"prompt": "x", "max_tokens": -1}), 400, Some("max_tokens")),
        ("/v1/completions", json!({"prompt": [1, 2, 999]}), 400, Some("prompt")),
        ("/v1/completions", json!({"prompt": []}), 400, Some("prompt")),
        ("/v1/completions", json!({"prompt": long}), 400, None),
        ("/v1/completions", json!({"prompt": "x", "max_tokens": 100000}), 400, None),
        ("/v1/completions", json!({"prompt": "x", "suffix": "y"}), 400, None),
        ("/v1/completions", json!({"prompt": "x", "logit_bias": {"999": 1}}), 400, Some("logit_bias")),
        ("/v1/chat/completions", json!({"messages": []}), 400, Some("messages")),
        ("/v1/chat/completions", json!({"model": "tiny"}), 400, Some("messages")),
        ("/v1/chat/completions", json!({"messages": [{"role": "wizard", "content": "x"}]}), 400, Some("messages")),
        ("/v1/chat/completions", json!({"messages": [{"role": "user"}]}), 400, Some("messages")),
        ("/v1/chat/completions", json!({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 3}), 400, None),
        ("/v1/chat/completions", json!({"messages": [{"role": "user", "content": "x"}], "logprobs": true, "top_logprobs": 6}), 400, Some("top_logprobs")),
        ("/detokenize", json!({"tokens": [1, -4]}), 400, Some("tokens")),
    ];
    for (path, body, status, param) in &cases {
        let (got, answer) = post(&server, path, body);
        assert_error(got, &answer, *status, *param, &format!("{path} {body}"));
    }
    let (got, answer) = post_raw(&server, "/v1/completions", "{\"prompt\": ");
    assert_error(got, &answer, 400, None, "malformed JSON");
    let (got, answer) = post_raw(&server, "/v1/completions", "[1, 2]");
    assert_error(got, &answer, 400, None, "not an object");
    let resp = client().get(server.url("/v1/completions")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    let resp = client().get(server.url("/v2/nothing")).send().unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let body: Value = resp.json().unwrap();
    assert!(body["error"]["message"].is_string());

    assert!(server.alive(), "the server died");
    let (status, ok) = post(&server, "/v1/completions", &json!({"model": "tiny", "prompt": "x", "max_tokens": 2}));
    assert_eq!(status, 200, "still serving: {ok}");
    assert_eq!(ok["model"], "tiny");
}

#[test]
fn a_template_exception_is_a_400_with_its_message() {
    // Gemma's real template raises on a system message; this one does the same.
    let template = "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}\
                    {{ raise_exception('System role not supported') }}{% endif %}\
                    {{ '<turn>' + m['role'] + '\n' + m['content'] + '<end>\n' }}{% endfor %}\
                    {% if add_generation_prompt %}{{ '<turn>model\n' }}{% endif %}";
    let server = Server::start("gemma", "cpu", &["--chat-template", template]);
    let (status, body) = post(
        &server,
        "/v1/chat/completions",
        &json!({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}], "max_tokens": 2}),
    );
    assert_error(status, &body, 400, None, "template exception");
    assert!(body["error"]["message"].as_str().unwrap().contains("System role not supported"), "{body}");
    let (status, body) = post(&server, "/v1/chat/completions", &json!({"messages": [{"role": "user", "content": "u"}], "max_tokens": 2}));
    assert_eq!(status, 200, "{body}");
}
