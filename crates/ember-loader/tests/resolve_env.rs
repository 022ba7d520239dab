//! resolve_model / HubOptions::from_env reading the real environment. This is
//! the only test in its binary, so changing process-global env vars is safe.

mod common;

use common::{fake_snapshot, touch};
use ember_loader::{HubOptions, resolve_model};

fn set(key: &str, value: Option<&str>) {
    // SAFETY: this test binary runs a single test, on one thread.
    unsafe {
        match value {
            Some(v) => std::env::set_var(key, v),
            None => std::env::remove_var(key),
        }
    }
}

#[test]
fn environment_selects_cache_offline_mode_and_token() {
    let home = tempfile::tempdir().unwrap();
    for key in [
        "HF_HUB_CACHE",
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_TOKEN_PATH",
        "HF_ENDPOINT",
    ] {
        set(key, None);
    }
    set("HF_HOME", Some(home.path().to_str().unwrap()));
    set("HF_HUB_OFFLINE", Some("1"));
    touch(home.path(), "token", "  hf_secret\n");

    let opts = HubOptions::from_env();
    assert_eq!(opts.cache_dir, home.path().join("hub"));
    assert!(opts.offline);
    assert_eq!(opts.token.as_deref(), Some("hf_secret"));
    assert_eq!(opts.endpoint, "https://huggingface.co");
    assert!(!format!("{opts:?}").contains("hf_secret"));

    let snap = fake_snapshot(
        &home.path().join("hub"),
        "org/m",
        Some("main"),
        &["config.json", "model.safetensors", "tokenizer.json"],
    );
    assert_eq!(resolve_model("org/m", None).unwrap().dir, snap);

    // HF_HUB_CACHE wins over HF_HOME; HF_TOKEN wins over the token file.
    let other = tempfile::tempdir().unwrap();
    set("HF_HUB_CACHE", Some(other.path().to_str().unwrap()));
    set("HF_TOKEN", Some("from_env"));
    set("HF_HUB_OFFLINE", Some("TRUE"));
    let opts = HubOptions::from_env();
    assert_eq!(opts.cache_dir, other.path());
    assert_eq!(opts.token.as_deref(), Some("from_env"));
    let msg = resolve_model("org/m", None).unwrap_err().to_string();
    assert!(msg.contains(&other.path().display().to_string()), "{msg}");

    set("HF_HUB_OFFLINE", Some("0"));
    assert!(!HubOptions::from_env().offline);
}
