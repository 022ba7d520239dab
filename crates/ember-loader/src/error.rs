//! The crate's single error type, [`LoaderError`]. Every variant carries the
//! file, tensor or model it is about, so messages are actionable on their own.

use std::path::PathBuf;

/// Result alias used throughout ember-loader.
pub type Result<T, E = LoaderError> = std::result::Result<T, E>;

/// Everything that can go wrong while finding, reading or mapping model files.
#[derive(Debug, thiserror::Error)]
pub enum LoaderError {
    /// A file could not be opened, read or mapped.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },

    /// A JSON file is malformed or does not have the expected shape.
    /// serde's message carries the line and column.
    #[error("invalid JSON in {}: {source}", path.display())]
    Json {
        /// The file involved.
        path: PathBuf,
        /// The serde error (with line/column).
        source: serde_json::Error,
    },

    /// A model folder has no `config.json`.
    #[error("model folder {} has no config.json", dir.display())]
    MissingConfig {
        /// The folder that was searched.
        dir: PathBuf,
    },

    /// A model folder has no safetensors weights at all.
    #[error(
        "model folder {} has no safetensors weights (looked for model.safetensors, \
         model.safetensors.index.json and *.safetensors); PyTorch .bin checkpoints are not supported",
        dir.display()
    )]
    NoWeights {
        /// The folder that was searched.
        dir: PathBuf,
    },

    /// A safetensors index file is structurally wrong (empty map, odd shard names).
    #[error("invalid safetensors index {}: {reason}", index.display())]
    InvalidIndex {
        /// The index file.
        index: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A shard named in a safetensors index does not exist on disk.
    #[error("shard {} listed in {} does not exist", shard.display(), index.display())]
    MissingShard {
        /// The index file that lists the shard.
        index: PathBuf,
        /// The missing shard's path.
        shard: PathBuf,
    },

    /// The model spec is neither a directory nor a plausible hub id.
    #[error(
        "'{spec}' is neither an existing directory nor a Hugging Face model id \
         (expected 'org/name'): {reason}"
    )]
    InvalidModelSpec {
        /// The spec as given by the user.
        spec: String,
        /// Why it was rejected.
        reason: String,
    },

    /// The model is not (completely) cached and downloading is disabled.
    #[error(
        "model '{repo}' (revision '{revision}') is not available offline: {detail} \
         (looked in {}). HF_HUB_OFFLINE is set, so nothing was downloaded: unset it, \
         download the model first (e.g. `huggingface-cli download {repo}`), or pass a local directory",
        looked_in.display()
    )]
    NotCached {
        /// The hub id.
        repo: String,
        /// The requested revision.
        revision: String,
        /// The cache path that was searched.
        looked_in: PathBuf,
        /// What exactly was missing.
        detail: String,
    },

    /// Talking to the hub failed (listing the repo or downloading a file).
    #[error(transparent)]
    Download(Box<DownloadFailure>),

    /// The hub repo lacks a file ember needs.
    #[error("model '{repo}' (revision '{revision}') on the hub has no {what}")]
    MissingOnHub {
        /// The hub id.
        repo: String,
        /// The requested revision.
        revision: String,
        /// What is missing, in words.
        what: String,
    },

    /// A safetensors file is truncated or its header is malformed.
    #[error("invalid safetensors file {}: {message}", path.display())]
    Safetensors {
        /// The file involved.
        path: PathBuf,
        /// What the safetensors parser reported.
        message: String,
    },

    /// [`crate::SafetensorsWeights::open`] was given no files.
    #[error("no safetensors files were given to open")]
    NoShards,

    /// The same tensor name occurs in two shards.
    #[error("tensor '{name}' appears in both {} and {}", first.display(), second.display())]
    DuplicateTensor {
        /// The tensor name.
        name: String,
        /// The first shard that has it.
        first: PathBuf,
        /// The second shard that has it.
        second: PathBuf,
    },

    /// A tensor is stored in a dtype ember cannot use.
    #[error(
        "unsupported dtype {dtype} for tensor '{tensor}' in file {} (supported: F32, F16, BF16)",
        path.display()
    )]
    UnsupportedDtype {
        /// The tensor name.
        tensor: String,
        /// The safetensors dtype, as text.
        dtype: String,
        /// The shard holding it.
        path: PathBuf,
    },

    /// A tensor was asked for that no shard contains.
    #[error("tensor '{name}' not found in {files}")]
    TensorNotFound {
        /// The tensor name.
        name: String,
        /// The shards that were searched, comma separated.
        files: String,
    },
}

/// Details of a failed hub request (boxed inside [`LoaderError::Download`]).
#[derive(Debug, thiserror::Error)]
#[error(
    "could not fetch '{file}' of model '{repo}' (revision '{revision}') from {endpoint}: {message}. \
     Check the model id and revision; gated or private models need HF_TOKEN (or \
     `huggingface-cli login`); set HF_HUB_OFFLINE=1 to use only the cache in {}",
    cache_dir.display()
)]
pub struct DownloadFailure {
    /// The hub id.
    pub repo: String,
    /// The requested revision.
    pub revision: String,
    /// The file being fetched (or `<repo listing>`).
    pub file: String,
    /// The hub endpoint.
    pub endpoint: String,
    /// The cache directory downloads go to.
    pub cache_dir: PathBuf,
    /// The underlying error, rendered.
    pub message: String,
}

impl LoaderError {
    /// Wraps an I/O error with the path it concerns.
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
