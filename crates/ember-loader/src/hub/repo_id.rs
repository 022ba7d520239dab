//! Validation of hub ids (`org/name`) and revisions before they are used as
//! cache folder names or URL parts.

use std::path::Path;

use crate::error::{LoaderError, Result};

/// Checks that `spec` looks like a hub id (`name` or `org/name`) and returns it.
pub(super) fn parse(spec: &str) -> Result<&str> {
    let invalid = |reason: &str| LoaderError::InvalidModelSpec {
        spec: spec.to_string(),
        reason: reason.to_string(),
    };
    let path = Path::new(spec);
    if path.is_file() {
        return Err(invalid(
            "it is a file; pass the folder that contains config.json",
        ));
    }
    let path_like =
        spec.starts_with(['/', '.', '~']) || spec.contains('\\') || spec.matches('/').count() > 1;
    if path_like {
        return Err(invalid("no such directory"));
    }
    if spec.is_empty() || spec.len() > 96 {
        return Err(invalid("hub ids are 1 to 96 characters long"));
    }
    for part in spec.split('/') {
        let ok_chars = part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        let ok_shape = !part.is_empty()
            && !part.starts_with(['-', '.'])
            && !part.ends_with(['-', '.'])
            && !part.contains("--")
            && !part.contains("..");
        if !ok_chars || !ok_shape {
            return Err(invalid(
                "hub ids use letters, digits, '-', '_' and '.', as 'org/name' \
                 (and there is no such local directory)",
            ));
        }
    }
    Ok(spec)
}

/// Checks that a revision is safe to use as a path below `refs/` and in URLs.
pub(super) fn check_revision(spec: &str, revision: &str) -> Result<()> {
    let ok = !revision.is_empty()
        && !revision.starts_with('/')
        && !revision.contains('\\')
        && revision
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if ok {
        Ok(())
    } else {
        Err(LoaderError::InvalidModelSpec {
            spec: spec.to_string(),
            reason: format!("invalid revision '{revision}'"),
        })
    }
}

/// Whether `revision` is a full commit hash (40 lowercase hex digits).
pub(super) fn is_commit_hash(revision: &str) -> bool {
    revision.len() == 40
        && revision
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_hub_ids_and_rejects_paths_and_junk() {
        for ok in [
            "gpt2",
            "meta-llama/Llama-3.2-1B",
            "Qwen/Qwen2.5-0.5B-Instruct",
            "a_b/c.d",
        ] {
            assert_eq!(parse(ok).unwrap(), ok);
        }
        for bad in [
            "",
            "/no/such/dir",
            "./model",
            "a/b/c",
            "org/",
            "/name",
            "a--b/c",
            "a/b..",
            "org/na me",
            "~/m",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("'{bad}'")), "{err}");
        }
        assert!(check_revision("a/b", "refs/pr/1").is_ok());
        assert!(check_revision("a/b", "../x").is_err());
        assert!(check_revision("a/b", "").is_err());
        assert!(is_commit_hash(&"ab12".repeat(10)));
        assert!(!is_commit_hash("main"));
    }
}
