//! Model loading failures are clear errors naming the file, field or backend, never panics:
//! a missing folder/hub id offline, malformed or unsupported config.json, a missing shard, a
//! missing tokenizer, and a dtype the backend cannot run. Also: the scheduler limits a loaded
//! engine runs with (defaults by backend, explicit values winning).

mod common;

use std::path::Path;

use common::fixture_dir;
use ember::{BackendKind, DtypeChoice, EngineArgs, LLM, UsageContext};

/// Copies a fixture into a temporary folder so a test can break it.
fn broken_copy(model: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir(model)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

fn load_error(path: &Path) -> String {
    let mut args = EngineArgs::new(path.to_string_lossy().into_owned());
    args.kv_cache_memory_bytes = Some(16 << 20);
    match LLM::new(args) {
        Ok(_) => panic!("{} loaded although it is broken", path.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_config_names_the_file() {
    let dir = broken_copy("qwen2");
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("config.json"), "{err}");
}

#[test]
fn unsupported_architecture_lists_the_supported_ones() {
    let dir = broken_copy("qwen2");
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(dir.path().join("config.json"), config.replace("Qwen2ForCausalLM", "FalconForCausalLM")).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("FalconForCausalLM") && err.contains("LlamaForCausalLM") && err.contains("Gemma2ForCausalLM"), "{err}");
}

#[test]
fn missing_shard_and_missing_tokenizer_are_named() {
    let dir = broken_copy("llama3");
    std::fs::remove_file(dir.path().join("model-00002-of-00003.safetensors")).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model-00002-of-00003.safetensors"), "{err}");

    let dir = broken_copy("qwen3");
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("tokenizer.json"), "{err}");
}

#[test]
fn truncated_weights_are_an_error() {
    let dir = broken_copy("qwen3");
    let weights = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");
}

#[test]
fn unknown_hub_id_offline_says_where_it_looked() {
    let cache = tempfile::tempdir().unwrap();
    let mut args = EngineArgs::new("no-such-org/no-such-model");
    args.revision = None;
    let err = with_offline_cache(cache.path(), || LLM::new(args).err().map(|e| e.to_string()).unwrap_or_default());
    assert!(err.contains("no-such-org/no-such-model") || err.contains("models--no-such-org--no-such-model"), "{err}");
}

fn with_offline_cache<T>(cache: &Path, f: impl FnOnce() -> T) -> T {
    // SAFETY: environment changes are process-wide; no other test in this binary reads these
    // variables (the fixture tests load local folders, which never consult the hub cache).
    unsafe {
        std::env::set_var("HF_HUB_CACHE", cache);
        std::env::set_var("HF_HUB_OFFLINE", "1");
    }
    f()
}

#[test]
fn dtype_the_backend_cannot_run_is_refused() {
    let mut args = EngineArgs::new(fixture_dir("qwen3").to_string_lossy().into_owned());
    args.backend = BackendKind::Cpu;
    args.dtype = DtypeChoice::BFloat16;
    let err = LLM::new(args).err().expect("bf16 on cpu is refused").to_string();
    assert!(err.contains("bfloat16") && err.contains("cpu"), "{err}");
}

#[test]
fn scheduler_limits_default_on_cpu_and_explicit_values_win() {
    let args = |seqs: Option<usize>, tokens: Option<usize>, context: UsageContext| {
        let mut args = EngineArgs::new(fixture_dir("qwen3").to_string_lossy().into_owned());
        args.kv_cache_memory_bytes = Some(16 << 20);
        args.max_model_len = Some(256);
        (args.max_num_seqs, args.max_num_batched_tokens, args.usage_context) = (seqs, tokens, context);
        args
    };
    let limits = |args: EngineArgs| {
        let llm = LLM::new(args).unwrap();
        let info = llm.engine().info();
        (info.max_num_seqs, info.max_num_batched_tokens)
    };
    for context in [UsageContext::LlmClass, UsageContext::OpenAiApiServer] {
        assert_eq!(limits(args(None, None, context)), (256, 2048), "{context}");
    }
    assert_eq!(limits(args(Some(8), Some(64), UsageContext::LlmClass)), (8, 64));
    // A budget alone also caps the defaulted max_num_seqs (vLLM).
    assert_eq!(limits(args(None, Some(16), UsageContext::LlmClass)), (16, 16));
}
