//! sentence-transformers' module list → [`PoolerConfig`].
//!
//! `modules.json` lists the pipeline (`Transformer`, `Pooling`, optional `Normalize`). The
//! Pooling module's `config.json` says how tokens are pooled, in one of two forms:
//! - legacy flags (sentence-transformers ≤ 5, most hub models): `pooling_mode_cls_token`,
//!   `pooling_mode_mean_tokens`, ... (none set means mean, as sentence-transformers reads it);
//! - sentence-transformers 6: `"pooling_mode": "lasttoken"` (or a list of modes).
//!
//! Modules Ember cannot run (Dense projections, several concatenated pooling modes, max
//! pooling) are errors naming the file, never silently skipped.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{ModelError, Result};

/// How one embedding is made from a sequence's hidden states (vLLM's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolingType {
    /// The first token (`cls`).
    Cls,
    /// The average over the sequence's tokens (`mean`).
    Mean,
    /// The last token (`lasttoken`: decoder embedding models such as Qwen3-Embedding).
    Last,
    /// The sum divided by √length (`mean_sqrt_len_tokens`).
    MeanSqrtLen,
    /// Position-weighted mean, weights 1, 2, ... (`weightedmean`).
    WeightedMean,
}

impl PoolingType {
    /// Parses a sentence-transformers mode name.
    fn from_st(mode: &str, path: &Path) -> Result<Self> {
        match mode {
            "cls" => Ok(Self::Cls),
            "mean" => Ok(Self::Mean),
            "lasttoken" => Ok(Self::Last),
            "mean_sqrt_len_tokens" => Ok(Self::MeanSqrtLen),
            "weightedmean" => Ok(Self::WeightedMean),
            "max" => Err(pooling_error(path, "pooling mode \"max\" is not supported".into())),
            other => Err(pooling_error(path, format!("unknown pooling mode {other:?}"))),
        }
    }

    /// The sentence-transformers name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cls => "cls",
            Self::Mean => "mean",
            Self::Last => "lasttoken",
            Self::MeanSqrtLen => "mean_sqrt_len_tokens",
            Self::WeightedMean => "weightedmean",
        }
    }
}

/// Pooling and normalisation of an embedding model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolerConfig {
    /// How tokens are pooled.
    pub pooling_type: PoolingType,
    /// L2-normalise the pooled vector (a `Normalize` module follows the pooling).
    pub normalize: bool,
    /// The Pooling module's declared output size, when it says.
    pub embedding_dimension: Option<usize>,
}

#[derive(Deserialize)]
struct StModule {
    #[serde(default)]
    path: String,
    #[serde(rename = "type")]
    kind: String,
}

/// `pooling_mode`: one name or a list.
#[derive(Deserialize)]
#[serde(untagged)]
enum ModeField {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize, Default)]
struct RawPoolingConfig {
    pooling_mode: Option<ModeField>,
    pooling_mode_cls_token: Option<bool>,
    pooling_mode_max_tokens: Option<bool>,
    pooling_mode_mean_tokens: Option<bool>,
    pooling_mode_mean_sqrt_len_tokens: Option<bool>,
    pooling_mode_weightedmean_tokens: Option<bool>,
    pooling_mode_lasttoken: Option<bool>,
    embedding_dimension: Option<usize>,
    word_embedding_dimension: Option<usize>,
}

impl RawPoolingConfig {
    /// The active modes, in sentence-transformers' order.
    fn modes(&self) -> Vec<String> {
        match &self.pooling_mode {
            Some(ModeField::One(m)) => return vec![m.clone()],
            Some(ModeField::Many(v)) => return v.clone(),
            None => {}
        }
        let flags = [
            (self.pooling_mode_cls_token, "cls"),
            (self.pooling_mode_max_tokens, "max"),
            (self.pooling_mode_mean_tokens, "mean"),
            (self.pooling_mode_mean_sqrt_len_tokens, "mean_sqrt_len_tokens"),
            (self.pooling_mode_weightedmean_tokens, "weightedmean"),
            (self.pooling_mode_lasttoken, "lasttoken"),
        ];
        let active: Vec<String> = flags.iter().filter(|(f, _)| *f == Some(true)).map(|(_, m)| m.to_string()).collect();
        if active.is_empty() { vec!["mean".into()] } else { active }
    }
}

impl PoolerConfig {
    /// Reads `dir/modules.json` and the files it points to; `Ok(None)` when the folder has no
    /// `modules.json` (not a sentence-transformers folder).
    pub fn from_sentence_transformers(dir: &Path) -> Result<Option<Self>> {
        let modules_path = dir.join("modules.json");
        if !modules_path.is_file() {
            return Ok(None);
        }
        let modules: Vec<StModule> = ember_loader::read_json(&modules_path)?;
        let mut pooling = None;
        let mut normalize = false;
        for module in &modules {
            match module.kind.rsplit('.').next().unwrap_or_default() {
                "Transformer" => {}
                "Pooling" => {
                    let path = dir.join(&module.path).join("config.json");
                    let raw: RawPoolingConfig =
                        if path.is_file() { ember_loader::read_json(&path)? } else { RawPoolingConfig::default() };
                    pooling = Some((path, raw));
                }
                "Normalize" => normalize = true,
                other => {
                    return Err(pooling_error(
                        &modules_path,
                        format!("the sentence-transformers module {other} ({}) is not supported", module.kind),
                    ));
                }
            }
        }
        let (path, raw) = pooling.ok_or_else(|| pooling_error(&modules_path, "no Pooling module".into()))?;
        let modes = raw.modes();
        if modes.len() != 1 {
            return Err(pooling_error(&path, format!("several pooling modes {modes:?} (concatenated) are not supported")));
        }
        Ok(Some(Self {
            pooling_type: PoolingType::from_st(&modes[0], &path)?,
            normalize,
            embedding_dimension: raw.embedding_dimension.or(raw.word_embedding_dimension),
        }))
    }

    /// vLLM's defaults for a folder without sentence-transformers files: CLS for encoders,
    /// the last token for decoders, normalised.
    pub fn default_for(is_encoder: bool) -> Self {
        let pooling_type = if is_encoder { PoolingType::Cls } else { PoolingType::Last };
        Self { pooling_type, normalize: true, embedding_dimension: None }
    }

    /// Whether the folder at `dir` is a sentence-transformers model with a Pooling module.
    pub fn has_pooling_module(dir: &Path) -> bool {
        let Ok(modules) = ember_loader::read_json::<Vec<StModule>>(&dir.join("modules.json")) else { return false };
        modules.iter().any(|m| m.kind.rsplit('.').next() == Some("Pooling"))
    }
}

fn pooling_error(path: &Path, reason: String) -> ModelError {
    ModelError::Pooling { path: PathBuf::from(path), reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(modules: &str, pooling: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("modules.json"), modules).unwrap();
        if let Some(p) = pooling {
            std::fs::create_dir(dir.path().join("1_Pooling")).unwrap();
            std::fs::write(dir.path().join("1_Pooling/config.json"), p).unwrap();
        }
        dir
    }

    const MODULES: &str = r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
        {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
        {"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]"#;

    #[test]
    fn legacy_flags_and_sentence_transformers_6_form() {
        let legacy = r#"{"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
            "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false}"#;
        let c = PoolerConfig::from_sentence_transformers(folder(MODULES, Some(legacy)).path()).unwrap().unwrap();
        assert_eq!((c.pooling_type, c.normalize, c.embedding_dimension), (PoolingType::Mean, true, Some(384)));

        let st6 = r#"{"embedding_dimension": 64, "pooling_mode": "lasttoken", "include_prompt": true}"#;
        let c = PoolerConfig::from_sentence_transformers(folder(MODULES, Some(st6)).path()).unwrap().unwrap();
        assert_eq!((c.pooling_type, c.embedding_dimension), (PoolingType::Last, Some(64)));
        let list = r#"{"pooling_mode": ["cls"]}"#;
        let c = PoolerConfig::from_sentence_transformers(folder(MODULES, Some(list)).path()).unwrap().unwrap();
        assert_eq!(c.pooling_type, PoolingType::Cls);
        // No flag set: sentence-transformers falls back to mean.
        let none = r#"{"pooling_mode_cls_token": false}"#;
        let c = PoolerConfig::from_sentence_transformers(folder(MODULES, Some(none)).path()).unwrap().unwrap();
        assert_eq!(c.pooling_type, PoolingType::Mean);
    }

    #[test]
    fn normalize_only_when_the_module_is_listed() {
        let two: String = MODULES.rsplit_once(",\n").unwrap().0.to_string() + "]";
        let c = PoolerConfig::from_sentence_transformers(folder(&two, Some(r#"{"pooling_mode": "cls"}"#)).path())
            .unwrap()
            .unwrap();
        assert!(!c.normalize);
        assert!(PoolerConfig::from_sentence_transformers(tempfile::tempdir().unwrap().path()).unwrap().is_none());
    }

    #[test]
    fn rejects_what_it_cannot_run() {
        let cases = [
            (r#"{"pooling_mode": "max"}"#, "max"),
            (r#"{"pooling_mode": ["cls", "mean"]}"#, "several pooling modes"),
            (r#"{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}"#, "several pooling modes"),
            (r#"{"pooling_mode": "median"}"#, "unknown pooling mode"),
        ];
        for (pooling, needle) in cases {
            let err = PoolerConfig::from_sentence_transformers(folder(MODULES, Some(pooling)).path()).unwrap_err();
            assert!(err.to_string().contains(needle), "{pooling}: {err}");
            assert!(err.to_string().contains("1_Pooling"), "{err}");
        }
        let dense = MODULES.replace("models.Normalize", "models.Dense");
        let err = PoolerConfig::from_sentence_transformers(folder(&dense, Some("{}")).path()).unwrap_err();
        assert!(err.to_string().contains("Dense"), "{err}");
    }
}
