//! Reading JSON files (configs, indexes) with errors that name the file.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{LoaderError, Result};

/// Reads and deserializes a JSON file.
///
/// A missing or unreadable file gives [`LoaderError::Io`]; malformed JSON or a
/// shape mismatch gives [`LoaderError::Json`], whose message includes serde's
/// line and column.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| LoaderError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| LoaderError::Json {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct Cfg {
        #[allow(dead_code)]
        hidden_size: usize,
    }

    #[test]
    fn errors_name_the_file_and_position() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.json");
        let err = read_json::<Cfg>(&missing).unwrap_err().to_string();
        assert!(err.contains("nope.json"), "{err}");

        let bad = dir.path().join("config.json");
        std::fs::write(&bad, "{\n  \"hidden_size\": ,\n}").unwrap();
        let err = read_json::<Cfg>(&bad).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("line 2"),
            "{err}"
        );

        std::fs::write(&bad, "{\"hidden_size\": \"big\"}").unwrap();
        let err = read_json::<Cfg>(&bad).unwrap_err().to_string();
        assert!(
            err.contains("config.json") && err.contains("invalid type"),
            "{err}"
        );

        std::fs::write(&bad, "{\"hidden_size\": 64}").unwrap();
        assert_eq!(read_json::<Cfg>(&bad).unwrap().hidden_size, 64);
    }
}
