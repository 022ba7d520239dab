//! Matryoshka embeddings and the `dimensions` request parameter (vLLM's rules).
//!
//! A model declares matryoshka training in `config.json`: `matryoshka_dimensions: [..]` (only
//! those sizes) or `is_matryoshka: true` (any size up to the native one). For such a model a
//! request's `dimensions` keeps the first `dimensions` values and re-normalises them (when the
//! model normalises). For any other model, a `dimensions` other than the native size is an
//! error: truncating a vector that was not trained for it gives poor embeddings.

use std::path::Path;

use serde::Deserialize;

use crate::error::Result;

/// The output sizes a matryoshka model supports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Matryoshka {
    /// `matryoshka_dimensions`; `None` means any size up to the native one.
    pub dimensions: Option<Vec<usize>>,
}

#[derive(Deserialize)]
struct RawMatryoshka {
    matryoshka_dimensions: Option<Vec<usize>>,
    is_matryoshka: Option<bool>,
}

impl Matryoshka {
    /// Reads `config.json`; `None` when the model declares no matryoshka training.
    pub fn from_config(path: &Path) -> Result<Option<Self>> {
        let raw: RawMatryoshka = ember_loader::read_json(path)?;
        Ok(match (raw.matryoshka_dimensions, raw.is_matryoshka) {
            (Some(dims), _) if !dims.is_empty() => Some(Self { dimensions: Some(dims) }),
            (_, Some(true)) => Some(Self { dimensions: None }),
            _ => None,
        })
    }
}

/// Checks a request's `dimensions` against a model of native size `native`; the error says
/// what the model accepts.
pub fn check_dimensions(requested: usize, native: usize, matryoshka: Option<&Matryoshka>) -> std::result::Result<(), String> {
    if requested == native {
        return Ok(());
    }
    if requested == 0 {
        return Err("dimensions must be a positive integer".into());
    }
    match matryoshka {
        None => Err(format!(
            "the model does not support matryoshka representation: dimensions must be omitted or equal to its \
             embedding size {native} (got {requested})"
        )),
        Some(Matryoshka { dimensions: Some(allowed) }) if !allowed.contains(&requested) => {
            Err(format!("the model only supports dimensions {allowed:?} (matryoshka_dimensions), got {requested}"))
        }
        Some(_) if requested > native => {
            Err(format!("dimensions {requested} is larger than the model's embedding size {native}"))
        }
        Some(_) => Ok(()),
    }
}

/// Keeps the first `dimensions` values; re-normalises them when `normalize`.
pub fn truncate(embedding: &mut Vec<f32>, dimensions: usize, normalize: bool) {
    if dimensions >= embedding.len() {
        return;
    }
    embedding.truncate(dimensions);
    if normalize {
        l2_normalize(embedding);
    }
}

/// `v / max(‖v‖, 1e-12)`, torch's `F.normalize`.
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| (*x as f64) * (*x as f64)).sum::<f64>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x = (*x as f64 / norm) as f32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_rules() {
        let listed = Matryoshka { dimensions: Some(vec![16, 32, 64]) };
        let any = Matryoshka { dimensions: None };
        assert!(check_dimensions(64, 64, None).is_ok());
        assert!(check_dimensions(32, 64, None).unwrap_err().contains("matryoshka"));
        assert!(check_dimensions(16, 64, Some(&listed)).is_ok());
        assert!(check_dimensions(20, 64, Some(&listed)).unwrap_err().contains("[16, 32, 64]"));
        assert!(check_dimensions(20, 64, Some(&any)).is_ok());
        assert!(check_dimensions(65, 64, Some(&any)).unwrap_err().contains("larger"));
        assert!(check_dimensions(0, 64, Some(&any)).unwrap_err().contains("positive"));
    }

    #[test]
    fn truncation_renormalises() {
        let mut v = vec![3.0, 4.0, 12.0];
        truncate(&mut v, 2, true);
        assert_eq!(v, vec![0.6, 0.8]);
        let mut w = vec![3.0, 4.0, 12.0];
        truncate(&mut w, 2, false);
        assert_eq!(w, vec![3.0, 4.0]);
    }

    #[test]
    fn reads_config_json() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        let read = |json: &str| {
            std::fs::write(&path, json).unwrap();
            Matryoshka::from_config(&path).unwrap()
        };
        assert_eq!(read(r#"{"matryoshka_dimensions": [16, 32]}"#), Some(Matryoshka { dimensions: Some(vec![16, 32]) }));
        assert_eq!(read(r#"{"is_matryoshka": true}"#), Some(Matryoshka { dimensions: None }));
        assert_eq!(read(r#"{"hidden_size": 8}"#), None);
    }
}
