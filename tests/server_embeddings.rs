//! `POST /v1/embeddings` end to end: the real `ember serve` binary on the tiny `qwen3_embed`
//! fixture (a Qwen3 decoder with last-token pooling and matryoshka sizes [16, 32, 64];
//! sentence-transformers' max_seq_length 96, served here with --max-model-len 90), raw HTTP.
//! Float and base64 answers agree, text and token-id inputs agree with each other and with the
//! sentence-transformers reference, usage counts the tokens, and every bad field is a 400
//! naming it.

mod server_support;

use serde::Deserialize;
use serde_json::{Value, json};
use server_support::{Server, fixture, post};

const MAX_LEN: usize = 90;

#[derive(Deserialize)]
struct Reference {
    sentences: Vec<RefSentence>,
}

#[derive(Deserialize)]
struct RefSentence {
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn reference() -> Reference {
    let path = fixture("qwen3_embed").join("embeddings_reference.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let n = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

/// The float vectors of a response, checking the envelope on the way.
fn floats(body: &Value, count: usize) -> Vec<Vec<f32>> {
    assert_eq!(body["object"], "list", "{body}");
    let data = body["data"].as_array().unwrap_or_else(|| panic!("no data: {body}"));
    assert_eq!(data.len(), count, "{body}");
    data.iter()
        .enumerate()
        .map(|(i, d)| {
            assert_eq!((d["object"].as_str(), d["index"].as_u64()), (Some("embedding"), Some(i as u64)));
            d["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
        })
        .collect()
}

/// Standard base64 (with padding) → bytes.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).expect("base64 alphabet") as u32;
        bits = (bits << 6) | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
        }
    }
    out
}

fn embed(server: &Server, body: Value) -> (u16, Value) {
    post(server, "/v1/embeddings", &body)
}

fn assert_bad(server: &Server, body: Value, param: &str) {
    let (status, resp) = embed(server, body.clone());
    assert_eq!(status, 400, "{body} → {resp}");
    assert_eq!(resp["error"]["param"], param, "{body} → {resp}");
    assert_eq!(resp["error"]["type"], "BadRequestError", "{resp}");
}

#[test]
fn embeddings_endpoint() {
    let max_len = MAX_LEN.to_string();
    let server = Server::start("qwen3_embed", "cpu", &["--max-model-len", &max_len, "--task", "embed"]);
    let reference = reference();
    let texts: Vec<&str> = reference.sentences.iter().map(|s| s.text.as_str()).collect();
    let ids: Vec<&Vec<u32>> = reference.sentences.iter().map(|s| &s.token_ids).collect();
    let total_tokens: usize = ids.iter().map(|t| t.len()).sum();

    // Text list, floats: matches sentence-transformers; usage counts every token.
    let (status, body) = embed(&server, json!({"model": fixture("qwen3_embed"), "input": texts, "user": "u-1"}));
    assert_eq!(status, 200, "{body}");
    let from_text = floats(&body, texts.len());
    for (v, r) in from_text.iter().zip(&reference.sentences) {
        assert_eq!(v.len(), 64);
        let c = cosine(v, &r.embedding);
        assert!(c >= 0.999, "{:?}: cosine {c}", r.text);
    }
    assert_eq!(body["usage"], json!({"prompt_tokens": total_tokens, "total_tokens": total_tokens}), "{body}");
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("embd-")), "{body}");

    // base64: the same vectors, as little-endian f32.
    let (status, b64) = embed(&server, json!({"input": texts, "encoding_format": "base64"}));
    assert_eq!(status, 200, "{b64}");
    for (i, d) in b64["data"].as_array().unwrap().iter().enumerate() {
        let bytes = base64_decode(d["embedding"].as_str().expect("base64 string"));
        let decoded: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(decoded.len(), 64);
        for (x, y) in decoded.iter().zip(&from_text[i]) {
            assert!((x - y).abs() <= 1e-6, "base64 vs float, input {i}: {x} vs {y}");
        }
    }

    // Token ids: one list, then a list of lists; same vectors as the texts.
    let (status, one) = embed(&server, json!({"input": ids[1]}));
    assert_eq!(status, 200, "{one}");
    assert!(cosine(&floats(&one, 1)[0], &from_text[1]) > 0.99999);
    assert_eq!(one["usage"]["prompt_tokens"], ids[1].len());
    let (status, many) = embed(&server, json!({"input": [ids[0], ids[2]]}));
    assert_eq!(status, 200, "{many}");
    let many = floats(&many, 2);
    assert!(cosine(&many[0], &from_text[0]) > 0.99999 && cosine(&many[1], &from_text[2]) > 0.99999);
    // A single string.
    let (status, single) = embed(&server, json!({"input": texts[3]}));
    assert_eq!(status, 200, "{single}");
    assert!(cosine(&floats(&single, 1)[0], &from_text[3]) > 0.99999);

    // Matryoshka: 32 of the declared [16, 32, 64] sizes, re-normalised.
    let (status, short) = embed(&server, json!({"input": &texts[..2], "dimensions": 32}));
    assert_eq!(status, 200, "{short}");
    for v in floats(&short, 2) {
        assert_eq!(v.len(), 32);
        let norm: f64 = v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
    for bad in [json!(20), json!(0), json!(-3), json!(65)] {
        assert_bad(&server, json!({"input": "Hello", "dimensions": bad}), "dimensions");
    }
    let (_, resp) = embed(&server, json!({"input": "Hello", "dimensions": 20}));
    assert!(resp["error"]["message"].as_str().unwrap().contains("[16, 32, 64]"), "{resp}");

    // Bad inputs and formats.
    for bad in [json!(""), json!([]), json!(["a", ""]), json!([[]]), json!(["a", 1]), json!([1, -1]), json!({"a": 1}), json!(null)] {
        assert_bad(&server, json!({"input": bad}), "input");
    }
    assert_bad(&server, json!({}), "input");
    assert_bad(&server, json!({"input": [[3, 500]]}), "input"); // vocabulary is 500
    let too_long = vec![3u32; MAX_LEN + 1];
    assert_bad(&server, json!({"input": [too_long]}), "input");
    let (_, resp) = embed(&server, json!({"input": [vec![3u32; MAX_LEN + 1]]}));
    assert!(resp["error"]["message"].as_str().unwrap().contains(&format!("maximum context length is {MAX_LEN}")), "{resp}");
    let (status, _) = embed(&server, json!({"input": [vec![3u32; MAX_LEN]]}));
    assert_eq!(status, 200, "exactly max-model-len tokens is fine");
    assert_bad(&server, json!({"input": "Hello", "encoding_format": "binary"}), "encoding_format");
    let (status, resp) = embed(&server, json!({"input": "Hello", "model": "not-served"}));
    assert_eq!((status, resp["error"]["param"].as_str()), (404, Some("model")), "{resp}");

    // The generation endpoints refuse an embedding model.
    let (status, resp) = post(&server, "/v1/completions", &json!({"prompt": "Hello", "max_tokens": 4}));
    assert_eq!(status, 400, "{resp}");
    assert!(resp["error"]["message"].as_str().unwrap().contains("does not support the Completions API"), "{resp}");
}
