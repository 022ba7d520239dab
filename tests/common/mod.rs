//! Shared helpers of the cross-backend tests: fixture paths, the transformers references
//! recorded by `tests/fixtures/make_fixtures.py`, the backends this machine can run, and
//! logprob comparisons.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ember::{BackendKind, DtypeChoice, EngineArgs, PositionLogprobs};
use serde::Deserialize;

/// Every fixture model.
pub const MODELS: [&str; 7] = ["llama3", "llama2", "mistral", "qwen2", "qwen3", "gemma", "gemma2"];

/// Tolerance on logprobs against transformers (f32 on both sides).
pub const LOGPROB_TOLERANCE: f32 = 1e-3;

#[derive(Debug, Deserialize)]
pub struct Reference {
    pub model: String,
    pub prompts: Vec<RefPrompt>,
}

#[derive(Debug, Deserialize)]
pub struct RefPrompt {
    pub kind: String,
    pub text: String,
    pub token_ids: Vec<u32>,
    pub prompt_logprobs: Vec<RefPromptLogprob>,
    pub greedy: RefGreedy,
}

#[derive(Debug, Deserialize)]
pub struct RefPromptLogprob {
    pub position: usize,
    pub token_id: u32,
    pub logprob: f32,
    pub top5: Vec<(u32, f32)>,
}

#[derive(Debug, Deserialize)]
pub struct RefGreedy {
    pub token_ids: Vec<u32>,
    pub text: String,
    pub steps: Vec<RefStep>,
}

#[derive(Debug, Deserialize)]
pub struct RefStep {
    pub token_id: u32,
    pub logprob: f32,
    pub top5: Vec<(u32, f32)>,
}

/// The fixture folder of `model`: under the source tree this was built from, or under the
/// current directory when the test binary runs elsewhere (e.g. carried to a GPU machine).
pub fn fixture_dir(model: &str) -> PathBuf {
    let built_in = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if built_in.join("tests/fixtures/models").is_dir() { built_in } else { Path::new(".") };
    root.join("tests/fixtures/models").join(model)
}

pub fn reference(model: &str) -> Reference {
    let path = fixture_dir(model).join("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The backends to test here, each with the reason when it is skipped.
pub fn backends() -> Vec<BackendKind> {
    let mut out = vec![BackendKind::Cpu];
    match wgpu_skip_reason() {
        None => out.push(BackendKind::Wgpu),
        Some(reason) => eprintln!("SKIP wgpu: {reason}"),
    }
    if std::env::var("EMBER_TEST_CUDA").is_ok_and(|v| v == "1") {
        if ember::cuda_available() {
            out.push(BackendKind::Cuda);
        } else {
            eprintln!("SKIP cuda: EMBER_TEST_CUDA=1 but no CUDA device is usable");
        }
    } else {
        eprintln!("SKIP cuda: set EMBER_TEST_CUDA=1 on a machine with an NVIDIA GPU");
    }
    out
}

fn wgpu_skip_reason() -> Option<String> {
    if !cfg!(feature = "wgpu") {
        return Some("built without the wgpu feature".into());
    }
    if std::env::var("EMBER_TEST_WGPU").is_ok_and(|v| v == "0") {
        return Some("EMBER_TEST_WGPU=0".into());
    }
    let env_icd = ["VK_ICD_FILENAMES", "VK_DRIVER_FILES"].iter().any(|v| std::env::var_os(v).is_some());
    let dirs = ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d"];
    let found = dirs.iter().any(|d| std::fs::read_dir(d).map(|mut e| e.next().is_some()).unwrap_or(false));
    if env_icd || found {
        None
    } else {
        Some("no Vulkan driver found (install mesa-vulkan-drivers for lavapipe)".into())
    }
}

/// Engine arguments for conformance runs: f32, a small KV budget, lavapipe on wgpu unless
/// `EMBER_TEST_WGPU_DEVICE` names another adapter.
pub fn engine_args(model: &str, backend: BackendKind) -> EngineArgs {
    let mut args = EngineArgs::new(fixture_dir(model).to_string_lossy().into_owned());
    args.backend = backend;
    args.dtype = DtypeChoice::Float32;
    args.kv_cache_memory_bytes = Some(16 << 20);
    args.max_model_len = Some(256);
    args.wgpu_adapter = Some(std::env::var("EMBER_TEST_WGPU_DEVICE").unwrap_or_else(|_| "cpu".into()));
    args
}

/// Checks top-k logprobs rank by rank. A swapped pair is accepted only when the two reference
/// values are within tolerance of each other (a near tie).
pub fn assert_top_close(ours: &[(u32, f32)], reference: &[(u32, f32)], context: &str) {
    assert!(ours.len() >= reference.len(), "{context}: {} alternatives, expected {}", ours.len(), reference.len());
    for (rank, ((id, lp), (ref_id, ref_lp))) in ours.iter().zip(reference).enumerate() {
        assert!(
            (lp - ref_lp).abs() <= LOGPROB_TOLERANCE,
            "{context}: rank {rank}: logprob {lp} vs transformers {ref_lp}"
        );
        if id != ref_id {
            let theirs = reference.iter().find(|(t, _)| t == id).map(|(_, l)| *l);
            assert!(
                theirs.is_some_and(|l| (l - ref_lp).abs() <= LOGPROB_TOLERANCE),
                "{context}: rank {rank}: token {id} vs transformers {ref_id} (not a near tie)"
            );
        }
    }
}

pub fn as_pairs(lp: &PositionLogprobs) -> Vec<(u32, f32)> {
    lp.top.iter().map(|l| (l.token_id, l.logprob)).collect()
}
