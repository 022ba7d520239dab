//! Helpers shared by the resolution tests: a fake Hugging Face cache.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use ember_loader::HubOptions;

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Writes `contents` at `dir/name`, creating parent folders.
pub fn touch(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, contents).unwrap();
    path
}

/// Creates `models--org--name/snapshots/<COMMIT>/` with `files` and, if
/// `ref_name` is given, `refs/<ref_name>` pointing at it. Returns the snapshot.
pub fn fake_snapshot(cache: &Path, repo: &str, ref_name: Option<&str>, files: &[&str]) -> PathBuf {
    let repo_dir = cache.join(format!("models--{}", repo.replace('/', "--")));
    let snapshot = repo_dir.join("snapshots").join(COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    for file in files {
        touch(&snapshot, file, "{}");
    }
    if let Some(r) = ref_name {
        touch(&repo_dir.join("refs"), r, &format!("{COMMIT}\n"));
    }
    snapshot
}

/// Options for a cache at `cache`, never downloading.
pub fn offline(cache: &Path) -> HubOptions {
    HubOptions {
        cache_dir: cache.to_path_buf(),
        offline: true,
        token: None,
        endpoint: "http://127.0.0.1:9".to_string(),
        progress: false,
    }
}
