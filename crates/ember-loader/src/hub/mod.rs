//! Model resolution: a local directory, or a Hugging Face hub id looked up in
//! the HF cache and downloaded into it when missing (unless offline).
//!
//! [`resolve_model`] reads the environment into [`HubOptions`];
//! [`resolve_model_with`] takes them explicitly (tests, CLI overrides).

mod cache;
mod download;
mod repo_id;

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::error::{LoaderError, Result};
use crate::model_files::ModelFiles;

/// Default hub endpoint.
pub(crate) const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// Where and how hub models are looked up and downloaded.
#[derive(Clone)]
pub struct HubOptions {
    /// The hub cache root (the folder holding `models--org--name`).
    pub cache_dir: PathBuf,
    /// Never touch the network; use only what is cached.
    pub offline: bool,
    /// Access token for gated/private repos.
    pub token: Option<String>,
    /// Hub endpoint (default `https://huggingface.co`).
    pub endpoint: String,
    /// Show download progress bars on stderr.
    pub progress: bool,
}

impl std::fmt::Debug for HubOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubOptions")
            .field("cache_dir", &self.cache_dir)
            .field("offline", &self.offline)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("endpoint", &self.endpoint)
            .field("progress", &self.progress)
            .finish()
    }
}

impl HubOptions {
    /// Options from the standard Hugging Face environment variables:
    /// cache in `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
    /// `$XDG_CACHE_HOME/huggingface/hub`, else `~/.cache/huggingface/hub`;
    /// `HF_HUB_OFFLINE` (1/true/yes/on); token from `HF_TOKEN` (or the legacy
    /// `HUGGING_FACE_HUB_TOKEN`), else the file `$HF_TOKEN_PATH` or
    /// `$HF_HOME/token`; endpoint from `HF_ENDPOINT`. Progress bars are shown
    /// when stderr is a terminal.
    pub fn from_env() -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::home_dir().map(|h| h.join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"));
            cache.join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let offline = var("HF_HUB_OFFLINE").is_some_and(|v| is_truthy(&v));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                let path = var("HF_TOKEN_PATH")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| hf_home.join("token"));
                read_token_file(&path)
            });
        Self {
            cache_dir,
            offline,
            token,
            endpoint: var("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()),
            progress: std::io::stderr().is_terminal(),
        }
    }
}

fn is_truthy(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

fn read_token_file(path: &Path) -> Option<String> {
    let token = std::fs::read_to_string(path).ok()?;
    Some(token.trim().to_string()).filter(|t| !t.is_empty())
}

/// Resolves `spec` to the files of a model, with [`HubOptions::from_env`].
///
/// `spec` is an existing directory, or a hub id (`org/name`) at `revision`
/// (a branch, tag or commit hash; default `main`). See [`resolve_model_with`].
pub fn resolve_model(spec: &str, revision: Option<&str>) -> Result<ModelFiles> {
    resolve_model_with(spec, revision, &HubOptions::from_env())
}

/// Resolves `spec` to the files of a model using explicit hub options.
///
/// A hub model whose cached snapshot already has `config.json`, complete
/// weights and `tokenizer.json` is used without any network access. Otherwise,
/// unless `options.offline`, the repo listing is fetched and the missing files
/// (config, weights, tokenizer and the optional configs that exist in the repo)
/// are downloaded into the cache. Offline, a partial snapshot is used if it
/// has at least `config.json` and weights.
pub fn resolve_model_with(
    spec: &str,
    revision: Option<&str>,
    options: &HubOptions,
) -> Result<ModelFiles> {
    let path = Path::new(spec);
    if path.is_dir() {
        return ModelFiles::discover(path);
    }
    let repo = repo_id::parse(spec)?;
    let revision = revision.unwrap_or("main");
    repo_id::check_revision(spec, revision)?;
    let repo_dir = cache::repo_dir(&options.cache_dir, repo);

    let snapshot = cache::snapshot_dir(&repo_dir, revision)?;
    if let Some(snapshot) = &snapshot
        && let Ok(files) = ModelFiles::discover(snapshot)
        && (files.tokenizer.is_some() || options.offline)
    {
        tracing::debug!(repo, revision, dir = %snapshot.display(), "using cached model");
        return Ok(files);
    }
    if options.offline {
        let (looked_in, detail) = match snapshot {
            Some(snapshot) => {
                // Only reached when discovery failed; report why.
                let why = ModelFiles::discover(&snapshot)
                    .err()
                    .map_or_else(|| "incomplete snapshot".to_string(), |e| e.to_string());
                (
                    snapshot,
                    format!("the cached snapshot is incomplete: {why}"),
                )
            }
            None => (
                repo_dir.clone(),
                format!("no cached snapshot for revision '{revision}'"),
            ),
        };
        return Err(LoaderError::NotCached {
            repo: repo.to_string(),
            revision: revision.to_string(),
            looked_in,
            detail,
        });
    }
    let snapshot = download::download_model(options, repo, revision, &repo_dir)?;
    ModelFiles::discover(&snapshot)
}
