//! Starting the real `ember` binary as a server for end-to-end tests: spawn `ember serve` on a
//! free port (`--port 0`, the port read back from its log), wait for `/health`, kill it on drop.
//! Plus tiny raw-HTTP helpers (blocking reqwest) and SSE parsing.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Path of a fixture model folder.
pub fn fixture(model: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models").join(model)
}

/// A running `ember serve`.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// `/health` statuses seen while waiting for readiness (503 while loading).
    pub health_while_loading: Vec<u16>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `ember serve MODEL --backend BACKEND` with small test limits plus `extra` flags,
    /// and waits until `/health` is 200.
    pub fn start(model: &str, backend: &str, extra: &[&str]) -> Server {
        Self::start_with_env(model, backend, extra, &[])
    }

    /// [`Server::start`] with extra environment variables for the server process.
    pub fn start_with_env(model: &str, backend: &str, extra: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ember"));
        cmd.arg("serve")
            .arg(fixture(model))
            .args(["--backend", backend, "--host", "127.0.0.1", "--port", "0", "--dtype", "float32"])
            .args(["--max-model-len", "256", "--kv-cache-memory-bytes", "8388608", "--max-num-seqs", "16"])
            .args(extra)
            .env("EMBER_WGPU_DEVICE", std::env::var("EMBER_TEST_WGPU_DEVICE").unwrap_or_else(|_| "cpu".into()))
            .env_remove("EMBER_API_KEY")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ember serve");
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = mpsc::channel::<u16>();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let Ok(port) = port.parse() {
                        let _ = port_tx.send(port);
                    }
                }
                eprintln!("[ember serve] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let port = port_rx.recv_timeout(Duration::from_secs(120)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("ember serve did not start listening:\n{}", log.lock().unwrap().join("\n"))
        });
        let mut server = Server { child, base: format!("http://127.0.0.1:{port}"), health_while_loading: Vec::new(), log };
        server.wait_ready(Duration::from_secs(300));
        server
    }

    fn wait_ready(&mut self, timeout: Duration) {
        let client = reqwest::blocking::Client::new();
        let start = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ember serve exited with {status}:\n{}", self.log.lock().unwrap().join("\n"));
            }
            if let Ok(resp) = client.get(format!("{}/health", self.base)).send() {
                let status = resp.status().as_u16();
                self.health_while_loading.push(status);
                if status == 200 {
                    return;
                }
                assert_eq!(status, 503, "/health while loading");
            }
            assert!(start.elapsed() < timeout, "ember serve not ready after {timeout:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// `base + path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client with a generous timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder().timeout(Duration::from_secs(300)).build().expect("client")
}

/// POSTs JSON; returns (status, body as JSON or `{"raw": text}`).
pub fn post(server: &Server, path: &str, body: &Value) -> (u16, Value) {
    let resp = client().post(server.url(path)).json(body).send().expect("request");
    read(resp)
}

/// POSTs a raw body.
pub fn post_raw(server: &Server, path: &str, body: &str) -> (u16, Value) {
    let resp = client()
        .post(server.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .expect("request");
    read(resp)
}

/// GETs a path.
pub fn get(server: &Server, path: &str) -> (u16, String) {
    let resp = client().get(server.url(path)).send().expect("request");
    let status = resp.status().as_u16();
    (status, resp.text().unwrap_or_default())
}

fn read(resp: reqwest::blocking::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let text = resp.text().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| serde_json::json!({ "raw": text }));
    (status, json)
}

/// Posts a streaming request and returns every `data:` payload (the last is `[DONE]`).
pub fn stream(server: &Server, path: &str, body: &Value) -> Vec<String> {
    let resp = client().post(server.url(path)).json(body).send().expect("request");
    assert_eq!(resp.status().as_u16(), 200, "stream status");
    let content_type = resp.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    assert!(content_type.starts_with("text/event-stream"), "content-type {content_type}");
    BufReader::new(resp)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| l.strip_prefix("data: ").map(str::to_string))
        .collect()
}

/// Parses every payload but the final `[DONE]` (asserted present).
pub fn chunks(payloads: &[String]) -> Vec<Value> {
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"), "stream must end with [DONE]: {payloads:?}");
    payloads[..payloads.len() - 1].iter().map(|p| serde_json::from_str(p).expect("chunk JSON")).collect()
}

/// Reads one metric's value from the Prometheus text (first sample whose name matches).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The wgpu backend when this machine can run it (a Vulkan driver), with the reason otherwise.
pub fn wgpu_available() -> Result<(), String> {
    if !cfg!(feature = "wgpu") {
        return Err("built without the wgpu feature".into());
    }
    if std::env::var("EMBER_TEST_WGPU").is_ok_and(|v| v == "0") {
        return Err("EMBER_TEST_WGPU=0".into());
    }
    let env_icd = ["VK_ICD_FILENAMES", "VK_DRIVER_FILES"].iter().any(|v| std::env::var_os(v).is_some());
    let dirs = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];
    let found = dirs.iter().any(|d| std::fs::read_dir(d).map(|mut e| e.next().is_some()).unwrap_or(false));
    if env_icd || found { Ok(()) } else { Err("no Vulkan driver found (install mesa-vulkan-drivers for lavapipe)".into()) }
}
