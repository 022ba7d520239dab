//! [`ModelFiles`]: the files of one model folder (configs, tokenizer, weight
//! shards) and how they are discovered on disk.

use std::collections::{BTreeSet, HashMap};
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::error::{LoaderError, Result};
use crate::json::read_json;
use crate::weights::SafetensorsWeights;

/// Name of a single-file checkpoint.
pub(crate) const SINGLE_WEIGHTS: &str = "model.safetensors";
/// Name of the index of a sharded checkpoint.
pub(crate) const WEIGHTS_INDEX: &str = "model.safetensors.index.json";
/// Optional files, as paths relative to the model folder.
pub(crate) const OPTIONAL_FILES: [&str; 7] = [
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "modules.json",
    "1_Pooling/config.json",
    "sentence_bert_config.json",
    "chat_template.jinja",
];

/// Paths of everything ember reads from a model folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFiles {
    /// The model folder (a local directory or an HF cache snapshot).
    pub dir: PathBuf,
    /// `config.json` (always present).
    pub config: PathBuf,
    /// `generation_config.json`, if present.
    pub generation_config: Option<PathBuf>,
    /// `tokenizer.json`, if present.
    pub tokenizer: Option<PathBuf>,
    /// `tokenizer_config.json`, if present.
    pub tokenizer_config: Option<PathBuf>,
    /// `chat_template.jinja`, if present (newer checkpoints keep the chat
    /// template there instead of in `tokenizer_config.json`).
    pub chat_template: Option<PathBuf>,
    /// Safetensors shards: the single `model.safetensors`, the shards of the
    /// index (sorted by file name, i.e. `model-00001-of-0000N` first), or every
    /// `*.safetensors` in the folder sorted by name. Never empty.
    pub safetensors: Vec<PathBuf>,
    /// `model.safetensors.index.json`, when the checkpoint is sharded through it.
    pub safetensors_index: Option<PathBuf>,
    /// Sentence-transformers `modules.json`, if present.
    pub modules: Option<PathBuf>,
    /// Sentence-transformers `1_Pooling/config.json`, if present.
    pub pooling_config: Option<PathBuf>,
    /// Sentence-transformers `sentence_bert_config.json`, if present.
    pub sentence_bert_config: Option<PathBuf>,
}

/// The part of `model.safetensors.index.json` ember uses.
#[derive(Deserialize)]
struct SafetensorsIndex {
    weight_map: HashMap<String, String>,
}

impl ModelFiles {
    /// Lists the files of the model folder `dir`.
    ///
    /// Weights are `model.safetensors` if present, else the shards of
    /// `model.safetensors.index.json` (each must exist), else all
    /// `*.safetensors` files. A missing `config.json` or no weights at all is an
    /// error naming the folder.
    pub fn discover(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(LoaderError::io(
                dir,
                std::io::Error::new(std::io::ErrorKind::NotFound, "not a directory"),
            ));
        }
        let config = dir.join("config.json");
        if !config.is_file() {
            return Err(LoaderError::MissingConfig {
                dir: dir.to_path_buf(),
            });
        }
        let optional = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        let (safetensors, safetensors_index) = discover_weights(dir)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            generation_config: optional(OPTIONAL_FILES[0]),
            tokenizer: optional(OPTIONAL_FILES[1]),
            tokenizer_config: optional(OPTIONAL_FILES[2]),
            chat_template: optional(OPTIONAL_FILES[6]),
            safetensors,
            safetensors_index,
            modules: optional(OPTIONAL_FILES[3]),
            pooling_config: optional(OPTIONAL_FILES[4]),
            sentence_bert_config: optional(OPTIONAL_FILES[5]),
        })
    }

    /// Memory-maps all weight shards (see [`SafetensorsWeights::open`]).
    pub fn open_weights(&self) -> Result<SafetensorsWeights> {
        SafetensorsWeights::open(&self.safetensors)
    }
}

/// Finds the weight shards of `dir`; returns them with the index path if one was used.
fn discover_weights(dir: &Path) -> Result<(Vec<PathBuf>, Option<PathBuf>)> {
    let single = dir.join(SINGLE_WEIGHTS);
    if single.is_file() {
        return Ok((vec![single], None));
    }
    let index = dir.join(WEIGHTS_INDEX);
    if index.is_file() {
        let shards = index_shards(&index)?
            .into_iter()
            .map(|name| dir.join(name))
            .collect::<Vec<_>>();
        if let Some(missing) = shards.iter().find(|p| !p.is_file()) {
            return Err(LoaderError::MissingShard {
                index,
                shard: missing.clone(),
            });
        }
        return Ok((shards, Some(index)));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| LoaderError::io(dir, e))?;
    let mut all = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| LoaderError::io(dir, e))?.path();
        if path.is_file() && path.extension().is_some_and(|ext| ext == "safetensors") {
            all.push(path);
        }
    }
    if all.is_empty() {
        return Err(LoaderError::NoWeights {
            dir: dir.to_path_buf(),
        });
    }
    all.sort();
    Ok((all, None))
}

/// Reads a safetensors index and returns its distinct shard file names, sorted.
/// Shard names must be plain relative paths inside the model folder.
pub(crate) fn index_shards(index: &Path) -> Result<Vec<String>> {
    let parsed: SafetensorsIndex = read_json(index)?;
    let invalid = |reason: String| LoaderError::InvalidIndex {
        index: index.to_path_buf(),
        reason,
    };
    if parsed.weight_map.is_empty() {
        return Err(invalid("weight_map is empty".into()));
    }
    let shards: BTreeSet<String> = parsed.weight_map.into_values().collect();
    for shard in &shards {
        let inside = !shard.is_empty()
            && Path::new(shard)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !inside {
            return Err(invalid(format!(
                "shard name '{shard}' is not a file inside the model folder"
            )));
        }
    }
    Ok(shards.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str, contents: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn single_file_checkpoint_with_optional_files() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        touch(d, "config.json", "{}");
        touch(d, "model.safetensors", "");
        touch(d, "other.safetensors", "");
        touch(d, "tokenizer.json", "{}");
        touch(d, "1_Pooling/config.json", "{}");
        let files = ModelFiles::discover(d).unwrap();
        assert_eq!(files.safetensors, vec![d.join("model.safetensors")]);
        assert_eq!(files.tokenizer, Some(d.join("tokenizer.json")));
        assert_eq!(files.pooling_config, Some(d.join("1_Pooling/config.json")));
        assert_eq!(files.tokenizer_config, None);
        assert_eq!(files.generation_config, None);
        assert_eq!(files.safetensors_index, None);
    }

    #[test]
    fn index_gives_sorted_distinct_shards_and_checks_they_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        touch(d, "config.json", "{}");
        let index = r#"{"metadata": {}, "weight_map": {
            "b": "model-00002-of-00002.safetensors",
            "a": "model-00001-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors"}}"#;
        touch(d, WEIGHTS_INDEX, index);
        touch(d, "model-00001-of-00002.safetensors", "");
        let err = ModelFiles::discover(d).unwrap_err().to_string();
        assert!(err.contains("model-00002-of-00002.safetensors"), "{err}");
        assert!(err.contains(WEIGHTS_INDEX), "{err}");

        touch(d, "model-00002-of-00002.safetensors", "");
        let files = ModelFiles::discover(d).unwrap();
        assert_eq!(
            files.safetensors,
            vec![
                d.join("model-00001-of-00002.safetensors"),
                d.join("model-00002-of-00002.safetensors")
            ]
        );
        assert_eq!(files.safetensors_index, Some(d.join(WEIGHTS_INDEX)));
    }

    #[test]
    fn bad_indexes_are_rejected_with_the_file_named() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        touch(d, "config.json", "{}");
        for bad in [
            r#"{"weight_map": {}}"#,
            r#"{"weight_map": {"a": "../evil.safetensors"}}"#,
            r#"{"metadata": {}}"#,
            "not json",
        ] {
            touch(d, WEIGHTS_INDEX, bad);
            let err = ModelFiles::discover(d).unwrap_err().to_string();
            assert!(err.contains(WEIGHTS_INDEX), "{bad}: {err}");
        }
    }

    #[test]
    fn falls_back_to_all_safetensors_then_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let err = ModelFiles::discover(d).unwrap_err();
        assert!(matches!(err, LoaderError::MissingConfig { .. }), "{err}");
        assert!(err.to_string().contains(&d.display().to_string()));

        touch(d, "config.json", "{}");
        touch(d, "pytorch_model.bin", "");
        let err = ModelFiles::discover(d).unwrap_err();
        assert!(matches!(err, LoaderError::NoWeights { .. }), "{err}");

        touch(d, "b.safetensors", "");
        touch(d, "a.safetensors", "");
        let files = ModelFiles::discover(d).unwrap();
        assert_eq!(
            files.safetensors,
            vec![d.join("a.safetensors"), d.join("b.safetensors")]
        );

        let err = ModelFiles::discover(&d.join("absent"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("absent"), "{err}");
    }
}
