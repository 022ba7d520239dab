//! Downloading a model's files from the hub into the HF cache with `hf-hub`'s
//! blocking (ureq) client. Only files missing from the snapshot are fetched.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hf_hub::api::sync::{Api, ApiBuilder, ApiRepo};
use hf_hub::{Repo, RepoType};

use super::{HubOptions, cache};
use crate::error::{DownloadFailure, LoaderError, Result};
use crate::model_files::{OPTIONAL_FILES, SINGLE_WEIGHTS, WEIGHTS_INDEX, index_shards};

/// Context shared by every request of one resolution, for error messages.
struct Ctx<'a> {
    options: &'a HubOptions,
    repo: &'a str,
    revision: &'a str,
}

impl Ctx<'_> {
    fn error(&self, file: &str, message: impl ToString) -> LoaderError {
        LoaderError::Download(Box::new(DownloadFailure {
            repo: self.repo.to_string(),
            revision: self.revision.to_string(),
            file: file.to_string(),
            endpoint: self.options.endpoint.clone(),
            cache_dir: self.options.cache_dir.clone(),
            message: message.to_string(),
        }))
    }

    fn missing(&self, what: &str) -> LoaderError {
        LoaderError::MissingOnHub {
            repo: self.repo.to_string(),
            revision: self.revision.to_string(),
            what: what.to_string(),
        }
    }
}

/// Downloads what ember needs of `repo` at `revision` into the cache and
/// returns the snapshot folder (`snapshots/<commit>`).
pub(super) fn download_model(
    options: &HubOptions,
    repo: &str,
    revision: &str,
    repo_dir: &Path,
) -> Result<PathBuf> {
    let ctx = Ctx {
        options,
        repo,
        revision,
    };
    let api = build_api(options).map_err(|e| ctx.error("<http client>", e))?;
    let info = api
        .repo(Repo::with_revision(
            repo.to_string(),
            RepoType::Model,
            revision.to_string(),
        ))
        .info()
        .map_err(|e| ctx.error("<repo listing>", e))?;
    let commit = info.sha;
    if commit.is_empty() || !commit.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ctx.error("<repo listing>", format!("unexpected commit id '{commit}'")));
    }
    let available: BTreeSet<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    tracing::info!(
        repo,
        revision,
        commit,
        "downloading model files from the hub"
    );

    let snapshot = repo_dir.join("snapshots").join(&commit);
    // Pin every download to the listed commit so all files land in one snapshot.
    let pinned = api.repo(Repo::with_revision(
        repo.to_string(),
        RepoType::Model,
        commit.clone(),
    ));
    let fetch = |file: &str| fetch_file(&ctx, &pinned, &snapshot, file);

    if !available.contains("config.json") {
        return Err(ctx.missing("config.json"));
    }
    fetch("config.json")?;
    for file in weight_files(&ctx, &available, &fetch)? {
        fetch(&file)?;
    }
    for file in OPTIONAL_FILES {
        if available.contains(file) {
            fetch(file)?;
        }
    }
    cache::write_ref(repo_dir, revision, &commit)?;
    Ok(snapshot)
}

fn build_api(options: &HubOptions) -> std::result::Result<Api, hf_hub::api::sync::ApiError> {
    ApiBuilder::new()
        .with_cache_dir(options.cache_dir.clone())
        .with_endpoint(options.endpoint.clone())
        .with_token(options.token.clone())
        .with_progress(options.progress)
        .with_retries(2)
        .with_user_agent("ember", env!("CARGO_PKG_VERSION"))
        .build()
}

/// The weight files to fetch: `model.safetensors`, else the index and its
/// shards (the index itself is fetched here to read them), else every
/// top-level `*.safetensors`.
fn weight_files(
    ctx: &Ctx<'_>,
    available: &BTreeSet<String>,
    fetch: &dyn Fn(&str) -> Result<PathBuf>,
) -> Result<Vec<String>> {
    if available.contains(SINGLE_WEIGHTS) {
        return Ok(vec![SINGLE_WEIGHTS.to_string()]);
    }
    if available.contains(WEIGHTS_INDEX) {
        let index = fetch(WEIGHTS_INDEX)?;
        let shards = index_shards(&index)?;
        if let Some(absent) = shards.iter().find(|s| !available.contains(*s)) {
            return Err(ctx.missing(&format!("shard '{absent}' listed in {WEIGHTS_INDEX}")));
        }
        return Ok(shards);
    }
    let all: Vec<String> = available
        .iter()
        .filter(|f| f.ends_with(".safetensors") && !f.contains('/'))
        .cloned()
        .collect();
    if all.is_empty() {
        return Err(ctx.missing(
            "safetensors weights (model.safetensors, model.safetensors.index.json or *.safetensors); \
             PyTorch .bin checkpoints are not supported",
        ));
    }
    Ok(all)
}

/// Returns the snapshot path of `file`, downloading it when it is not there yet.
fn fetch_file(ctx: &Ctx<'_>, pinned: &ApiRepo, snapshot: &Path, file: &str) -> Result<PathBuf> {
    let local = snapshot.join(file);
    if local.is_file() {
        return Ok(local);
    }
    tracing::info!(repo = ctx.repo, file, "downloading");
    let downloaded = pinned.download(file).map_err(|e| ctx.error(file, e))?;
    if local.is_file() {
        Ok(local)
    } else {
        Err(ctx.error(
            file,
            format!(
                "downloaded to {} but expected it at {}",
                downloaded.display(),
                local.display()
            ),
        ))
    }
}
