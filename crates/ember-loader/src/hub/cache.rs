//! The Hugging Face cache layout: `models--org--name/refs/<revision>` holds a
//! commit hash whose files live under `snapshots/<hash>/`.

use std::path::{Path, PathBuf};

use super::repo_id::is_commit_hash;
use crate::error::{LoaderError, Result};

/// `<cache>/models--org--name`.
pub(super) fn repo_dir(cache_dir: &Path, repo: &str) -> PathBuf {
    cache_dir.join(format!("models--{}", repo.replace('/', "--")))
}

/// The snapshot folder for `revision`, if the cache has one.
///
/// `refs/<revision>` is followed when present; a revision that is itself a
/// commit hash maps to `snapshots/<hash>` directly.
pub(super) fn snapshot_dir(repo_dir: &Path, revision: &str) -> Result<Option<PathBuf>> {
    let ref_file = repo_dir.join("refs").join(revision);
    let commit = if ref_file.is_file() {
        let text = std::fs::read_to_string(&ref_file).map_err(|e| LoaderError::io(&ref_file, e))?;
        let commit = text.trim().to_string();
        if !is_commit_hash(&commit) {
            return Err(LoaderError::InvalidModelSpec {
                spec: repo_dir.display().to_string(),
                reason: format!(
                    "cache ref {} does not hold a commit hash (found '{commit}')",
                    ref_file.display()
                ),
            });
        }
        commit
    } else if is_commit_hash(revision) {
        revision.to_string()
    } else {
        return Ok(None);
    };
    let snapshot = repo_dir.join("snapshots").join(commit);
    Ok(snapshot.is_dir().then_some(snapshot))
}

/// Records `refs/<revision> = commit` so later offline runs find the snapshot.
pub(super) fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> Result<()> {
    if revision == commit {
        return Ok(());
    }
    let ref_file = repo_dir.join("refs").join(revision);
    if let Some(parent) = ref_file.parent() {
        std::fs::create_dir_all(parent).map_err(|e| LoaderError::io(parent, e))?;
    }
    std::fs::write(&ref_file, commit).map_err(|e| LoaderError::io(&ref_file, e))
}
