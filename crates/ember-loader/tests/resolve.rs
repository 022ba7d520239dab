//! resolve_model_with against a fake HF cache (explicit options, no env).

mod common;

use common::{COMMIT, fake_snapshot, offline, touch};
use ember_loader::{LoaderError, resolve_model_with};

const FULL: [&str; 4] = [
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "generation_config.json",
];

#[test]
fn local_directory_is_used_as_is() {
    let tmp = tempfile::tempdir().unwrap();
    touch(tmp.path(), "config.json", "{}");
    touch(tmp.path(), "model.safetensors", "");
    let spec = tmp.path().to_str().unwrap();
    let files = resolve_model_with(spec, None, &offline(tmp.path())).unwrap();
    assert_eq!(files.dir, tmp.path());
}

#[test]
fn hub_id_resolves_through_refs_and_commit_hashes() {
    let cache = tempfile::tempdir().unwrap();
    let snap = fake_snapshot(cache.path(), "org/model", Some("main"), &FULL);
    let opts = offline(cache.path());

    let files = resolve_model_with("org/model", None, &opts).unwrap();
    assert_eq!(files.dir, snap);
    assert_eq!(files.tokenizer, Some(snap.join("tokenizer.json")));
    assert_eq!(
        files.generation_config,
        Some(snap.join("generation_config.json"))
    );

    // A commit hash needs no ref.
    let files = resolve_model_with("org/model", Some(COMMIT), &opts).unwrap();
    assert_eq!(files.dir, snap);

    // A complete snapshot is used without network even when online.
    let online = ember_loader::HubOptions {
        offline: false,
        ..opts.clone()
    };
    assert_eq!(
        resolve_model_with("org/model", None, &online).unwrap().dir,
        snap
    );

    // Unknown branch: not cached, says where it looked and what to do.
    let err = resolve_model_with("org/model", Some("dev"), &opts).unwrap_err();
    assert!(matches!(err, LoaderError::NotCached { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("models--org--model") && msg.contains("'dev'"),
        "{msg}"
    );
    assert!(msg.contains("HF_HUB_OFFLINE"), "{msg}");
}

#[test]
fn offline_uses_partial_snapshot_with_weights_but_reports_missing_weights() {
    let cache = tempfile::tempdir().unwrap();
    let snap = fake_snapshot(
        cache.path(),
        "org/partial",
        Some("main"),
        &["config.json", "model.safetensors"],
    );
    let files = resolve_model_with("org/partial", None, &offline(cache.path())).unwrap();
    assert_eq!((files.dir, files.tokenizer), (snap, None));

    fake_snapshot(
        cache.path(),
        "org/noweights",
        Some("main"),
        &["config.json", "tokenizer.json"],
    );
    let msg = resolve_model_with("org/noweights", None, &offline(cache.path()))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("no safetensors weights") && msg.contains(COMMIT),
        "{msg}"
    );
}

#[test]
fn bad_specs_and_missing_models_are_clear_errors() {
    let cache = tempfile::tempdir().unwrap();
    let opts = offline(cache.path());

    let msg = resolve_model_with("org/absent", None, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("org/absent") && msg.contains(&cache.path().display().to_string()),
        "{msg}"
    );

    let msg = resolve_model_with("/definitely/not/here", None, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("/definitely/not/here") && msg.contains("no such directory"),
        "{msg}"
    );

    let file = touch(cache.path(), "x/config.json", "{}");
    let msg = resolve_model_with(file.to_str().unwrap(), None, &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("is a file"), "{msg}");

    let msg = resolve_model_with("org/model", Some("../../etc"), &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("invalid revision"), "{msg}");

    // A corrupt ref is reported, not followed.
    touch(
        &cache.path().join("models--org--bad/refs"),
        "main",
        "not-a-hash",
    );
    let msg = resolve_model_with("org/bad", None, &opts)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("not-a-hash") && msg.contains("refs"), "{msg}");
}

#[test]
fn online_without_network_reports_the_download_failure() {
    let cache = tempfile::tempdir().unwrap();
    let opts = ember_loader::HubOptions {
        offline: false,
        ..offline(cache.path())
    };
    // Port 9 (discard) on localhost: connection refused, fast.
    let msg = resolve_model_with("org/model", None, &opts)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("org/model") && msg.contains("HF_HUB_OFFLINE=1"),
        "{msg}"
    );
}
