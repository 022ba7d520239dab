//! The `random` dataset of the benchmarks: prompts of exactly the requested number of token
//! ids, drawn uniformly (seeded) from the tokenizer's vocabulary without its special tokens.
//!
//! Prompts are handed to the engine (or the server) as token ids, never as text, so the input
//! length is exact: decoding random ids and encoding the text again would not give the same
//! count back.

use std::path::Path;

use ember_engine::{TokenId, Tokenizer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Seeded generator of random-token prompts.
pub struct RandomDataset {
    allowed: Vec<TokenId>,
    rng: ChaCha8Rng,
}

impl RandomDataset {
    /// Prompts over the ids below `vocab_limit` (the model's vocabulary size, when it is smaller
    /// than the tokenizer's) that the tokenizer knows and that are not special tokens.
    pub fn new(tokenizer: &Tokenizer, vocab_limit: Option<usize>, seed: u64) -> anyhow::Result<Self> {
        let limit = vocab_limit.map_or(tokenizer.vocab_size(), |v| v.min(tokenizer.vocab_size()));
        let allowed: Vec<TokenId> = (0..limit as TokenId)
            .filter(|&id| !tokenizer.is_special(id) && tokenizer.id_to_token(id).is_some())
            .collect();
        Self::from_ids(allowed, seed)
    }

    /// Prompts over exactly `allowed`.
    pub fn from_ids(allowed: Vec<TokenId>, seed: u64) -> anyhow::Result<Self> {
        anyhow::ensure!(!allowed.is_empty(), "the tokenizer has no non-special token to build random prompts from");
        Ok(Self { allowed, rng: ChaCha8Rng::seed_from_u64(seed) })
    }

    /// The ids prompts are drawn from.
    pub fn allowed(&self) -> &[TokenId] {
        &self.allowed
    }

    /// One prompt of `len` token ids.
    pub fn prompt(&mut self, len: usize) -> Vec<TokenId> {
        let n = self.allowed.len() as u64;
        // Multiply-shift maps 32 uniform bits onto [0, n) (bias below n / 2^32, negligible).
        (0..len).map(|_| self.allowed[((u64::from(self.rng.next_u32()) * n) >> 32) as usize]).collect()
    }

    /// `count` prompts of `len` token ids.
    pub fn prompts(&mut self, count: usize, len: usize) -> Vec<Vec<TokenId>> {
        (0..count).map(|_| self.prompt(len)).collect()
    }
}

/// Loads a tokenizer from a model folder (its `tokenizer.json`, plus `tokenizer_config.json`
/// when present) or from a `tokenizer.json` file.
pub fn load_tokenizer(path: &Path) -> anyhow::Result<Tokenizer> {
    let (json, dir) = if path.is_dir() {
        (path.join("tokenizer.json"), path.to_path_buf())
    } else {
        (path.to_path_buf(), path.parent().map(Path::to_path_buf).unwrap_or_default())
    };
    anyhow::ensure!(json.is_file(), "{}: no tokenizer.json there (pass --tokenizer DIR_OR_FILE)", path.display());
    let config = dir.join("tokenizer_config.json");
    Ok(Tokenizer::from_files(&json, config.is_file().then_some(config.as_path()), None)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_tokenizer() -> Tokenizer {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/llama3");
        load_tokenizer(&dir).expect("fixture tokenizer")
    }

    #[test]
    fn prompts_have_exact_length_and_no_special_token() {
        let tok = fixture_tokenizer();
        let special: Vec<TokenId> = (0..tok.vocab_size() as TokenId).filter(|&id| tok.is_special(id)).collect();
        assert!(!special.is_empty(), "the fixture has special tokens (BOS/EOS)");
        let mut ds = RandomDataset::new(&tok, None, 0).unwrap();
        assert_eq!(ds.allowed().len(), tok.vocab_size() - special.len());
        let prompts = ds.prompts(50, 37);
        assert!(prompts.iter().all(|p| p.len() == 37));
        assert!(prompts.iter().flatten().all(|id| !special.contains(id) && (*id as usize) < tok.vocab_size()));
        // Uniform over ~500 ids: 1850 draws hit well over half of them.
        let distinct: std::collections::HashSet<_> = prompts.iter().flatten().collect();
        assert!(distinct.len() > tok.vocab_size() / 2, "{} distinct ids", distinct.len());
    }

    #[test]
    fn vocab_limit_and_seed() {
        let tok = fixture_tokenizer();
        let mut limited = RandomDataset::new(&tok, Some(100), 3).unwrap();
        assert!(limited.prompts(20, 20).iter().flatten().all(|&id| id < 100));
        let a = RandomDataset::new(&tok, None, 5).unwrap().prompts(3, 8);
        let b = RandomDataset::new(&tok, None, 5).unwrap().prompts(3, 8);
        let c = RandomDataset::new(&tok, None, 6).unwrap().prompts(3, 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(RandomDataset::from_ids(Vec::new(), 0).is_err());
        assert_eq!(RandomDataset::from_ids(vec![42], 0).unwrap().prompt(3), vec![42, 42, 42]);
    }

    #[test]
    fn tokenizer_from_file_or_folder() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/llama3");
        assert_eq!(load_tokenizer(&dir.join("tokenizer.json")).unwrap().vocab_size(), fixture_tokenizer().vocab_size());
        let err = load_tokenizer(&dir.join("nope")).unwrap_err().to_string();
        assert!(err.contains("--tokenizer"), "{err}");
    }
}
