//! The download path end to end against a tiny in-process fake of the hub's
//! HTTP API (repo listing + ranged `resolve/<commit>/<file>` downloads).

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use common::{COMMIT, offline};
use ember_loader::{HubOptions, resolve_model_with};

type Log = Arc<Mutex<Vec<String>>>;

/// Serves `files` of repo `org/model` at COMMIT; returns the endpoint and a request log.
fn fake_hub(files: HashMap<String, Vec<u8>>) -> (String, Log) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let log: Log = Arc::default();
    let served = log.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            serve(stream, &files, &served);
        }
    });
    (endpoint, log)
}

fn serve(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>, log: &Log) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("range: bytes=") {
            let (a, b) = v.trim().split_once('-').unwrap();
            range = Some((a.parse::<usize>().unwrap(), b.parse::<usize>().ok()));
        }
    }
    log.lock().unwrap().push(path.clone());

    let file_prefix = format!("/org/model/resolve/{COMMIT}/");
    let (status, headers, body) = if path == "/api/models/org/model/revision/main" {
        let siblings: Vec<_> = files
            .keys()
            .map(|f| serde_json::json!({ "rfilename": f }))
            .collect();
        let body = serde_json::json!({ "sha": COMMIT, "siblings": siblings }).to_string();
        ("200 OK", String::new(), body.into_bytes())
    } else if let Some(data) = path.strip_prefix(&file_prefix).and_then(|f| files.get(f)) {
        let (start, end) = range.unwrap_or((0, None));
        let end = end.unwrap_or(data.len() - 1).min(data.len() - 1);
        let etag = format!("etag-{}", path.replace('/', "_"));
        let headers = format!(
            "Content-Range: bytes {start}-{end}/{}\r\nX-Repo-Commit: {COMMIT}\r\nETag: \"{etag}\"\r\n",
            data.len()
        );
        ("206 Partial Content", headers, data[start..=end].to_vec())
    } else {
        ("404 Not Found", String::new(), b"not found".to_vec())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

fn shard(name: &str, value: f32) -> Vec<u8> {
    let bytes = value.to_le_bytes();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![1], &bytes).unwrap();
    safetensors::serialize([(name, view)], None).unwrap()
}

#[test]
fn downloads_missing_files_into_the_cache_then_works_offline() {
    let index = r#"{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
    let files: HashMap<String, Vec<u8>> = [
        ("config.json", b"{\"hidden_size\": 8}".to_vec()),
        ("model.safetensors.index.json", index.as_bytes().to_vec()),
        ("model-00001-of-00002.safetensors", shard("a", 1.5)),
        ("model-00002-of-00002.safetensors", shard("b", -2.0)),
        ("tokenizer.json", b"{}".to_vec()),
        ("1_Pooling/config.json", b"{}".to_vec()),
        ("pytorch_model.bin", b"never fetched".to_vec()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let (endpoint, log) = fake_hub(files);
    let cache = tempfile::tempdir().unwrap();
    let opts = HubOptions {
        offline: false,
        endpoint,
        ..offline(cache.path())
    };

    let resolved = resolve_model_with("org/model", None, &opts).unwrap();
    let snapshot = cache
        .path()
        .join("models--org--model/snapshots")
        .join(COMMIT);
    assert_eq!(resolved.dir, snapshot);
    assert_eq!(resolved.safetensors.len(), 2);
    assert_eq!(
        resolved.pooling_config,
        Some(snapshot.join("1_Pooling/config.json"))
    );
    assert_eq!(resolved.generation_config, None);
    let weights = resolved.open_weights().unwrap();
    assert_eq!(weights.to_f32("b").unwrap().0, vec![-2.0]);
    let requests = log.lock().unwrap().clone();
    assert!(
        !requests.iter().any(|r| r.contains("pytorch_model.bin")),
        "{requests:?}"
    );

    // refs/main was recorded: the model now resolves offline, with no requests.
    let before = log.lock().unwrap().len();
    let again = resolve_model_with("org/model", None, &offline(cache.path())).unwrap();
    assert_eq!(again, resolved);
    // Online with a complete snapshot: no network either.
    assert_eq!(
        resolve_model_with("org/model", None, &opts).unwrap(),
        resolved
    );
    assert_eq!(log.lock().unwrap().len(), before);

    // Unknown repo: the hub's 404 surfaces with the repo named.
    let msg = resolve_model_with("org/other", None, &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("org/other") && msg.contains("404"), "{msg}");
}
