//! The repo's tiny model fixtures (`tests/fixtures/models/*`) load end to end:
//! discovery (single file and sharded index), every tensor readable as f32.

use std::path::PathBuf;

use ember_loader::{HubOptions, ModelFiles, read_json, resolve_model_with};

fn fixtures() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("fixtures missing at {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("config.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_fixture_discovers_and_reads_all_tensors() {
    let dirs = fixtures();
    assert!(!dirs.is_empty());
    for dir in dirs {
        let files = ModelFiles::discover(&dir).unwrap();
        assert!(files.tokenizer.is_some(), "{}", dir.display());
        let config: serde_json::Value = read_json(&files.config).unwrap();
        assert!(config.is_object());
        let weights = files.open_weights().unwrap();
        assert!(!weights.is_empty());
        let mut total = 0u64;
        for name in weights.names() {
            let (values, shape) = weights.to_f32(name).unwrap();
            assert_eq!(values.len(), shape.iter().product::<usize>(), "{name}");
            total += weights.raw(name).unwrap().bytes.len() as u64;
        }
        assert_eq!(total, weights.total_bytes());

        if let Some(index) = &files.safetensors_index {
            #[derive(serde::Deserialize)]
            struct Index {
                weight_map: std::collections::HashMap<String, String>,
            }
            let index: Index = read_json(index).unwrap();
            assert!(files.safetensors.len() > 1);
            for (tensor, shard) in index.weight_map {
                assert_eq!(weights.file_of(&tensor).unwrap(), dir.join(shard));
            }
        }
    }
}

#[test]
fn local_fixture_resolves_without_the_hub() {
    let dir = fixtures().into_iter().next().unwrap();
    let options = HubOptions {
        cache_dir: std::env::temp_dir().join("ember-no-such-cache"),
        offline: true,
        token: None,
        endpoint: "http://127.0.0.1:9".into(),
        progress: false,
    };
    let files = resolve_model_with(dir.to_str().unwrap(), None, &options).unwrap();
    assert_eq!(files.dir, dir);
}
