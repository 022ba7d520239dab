//! [`Tokenizer`]: a Hugging Face `tokenizer.json` plus the special tokens,
//! chat template and generation defaults that come with it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::TokenId;
use crate::config::{GenerationConfig, TokenizerConfig};
use crate::error::{Result, TokenizerError};

/// A loaded tokenizer with its model-side configuration.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
    config: TokenizerConfig,
    generation_config: GenerationConfig,
    special_ids: HashSet<TokenId>,
    vocab_size: usize,
    eos_ids: Vec<TokenId>,
    bos_id: Option<TokenId>,
}

impl Tokenizer {
    /// Loads `tokenizer.json` and, when given, `tokenizer_config.json` and
    /// `generation_config.json`. Errors name the file (and field) at fault.
    pub fn from_files(
        tokenizer_json: &Path,
        tokenizer_config: Option<&Path>,
        generation_config: Option<&Path>,
    ) -> Result<Self> {
        if !tokenizer_json.is_file() {
            return Err(TokenizerError::Io {
                path: tokenizer_json.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        let inner =
            tokenizers::Tokenizer::from_file(tokenizer_json).map_err(|e| TokenizerError::Load {
                path: tokenizer_json.to_path_buf(),
                message: e.to_string(),
            })?;
        let config = tokenizer_config
            .map(TokenizerConfig::from_file)
            .transpose()?
            .unwrap_or_default();
        let generation_config = generation_config
            .map(GenerationConfig::from_file)
            .transpose()?
            .unwrap_or_default();
        Ok(Self::new(
            inner,
            tokenizer_json.to_path_buf(),
            config,
            generation_config,
        ))
    }

    /// Wraps an already-built tokenizer; `path` is only used in messages.
    ///
    /// Padding and truncation saved in `tokenizer.json` are switched off (transformers and
    /// vLLM ignore them too): all-MiniLM-L6-v2's file pads every text to 128 tokens and cuts
    /// at 128, which would change what gets embedded or generated.
    pub fn new(
        mut inner: tokenizers::Tokenizer,
        path: PathBuf,
        config: TokenizerConfig,
        generation_config: GenerationConfig,
    ) -> Self {
        inner.with_padding(None);
        let _ = inner.with_truncation(None);
        let added = inner.get_added_tokens_decoder();
        let special_ids = added
            .iter()
            .filter(|(_, tok)| tok.special)
            .map(|(id, _)| *id)
            .collect();
        let max_id = inner.get_vocab(true).into_values().max();
        let vocab_size = max_id.map_or(0, |id| id as usize + 1);

        let mut eos_ids = generation_config.eos_token_id.clone();
        if let Some(id) = config
            .eos_token
            .as_deref()
            .and_then(|t| inner.token_to_id(t))
            && !eos_ids.contains(&id)
        {
            eos_ids.push(id);
        }
        let bos_id = generation_config.bos_token_id.or_else(|| {
            config
                .bos_token
                .as_deref()
                .and_then(|t| inner.token_to_id(t))
        });
        Self {
            inner,
            path,
            config,
            generation_config,
            special_ids,
            vocab_size,
            eos_ids,
            bos_id,
        }
    }

    /// Encodes `text`. With `add_special_tokens` the post-processor's template
    /// applies (e.g. a BOS token); if `tokenizer_config.json` says
    /// `add_bos_token: true` and the result does not start with BOS, it is
    /// prepended (what transformers' Llama/Gemma tokenizers do).
    pub fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<TokenId>> {
        let encoding =
            self.inner
                .encode(text, add_special_tokens)
                .map_err(|e| TokenizerError::Encode {
                    path: self.path.clone(),
                    len: text.len(),
                    message: e.to_string(),
                })?;
        let mut ids = encoding.get_ids().to_vec();
        if add_special_tokens
            && self.config.add_bos_token == Some(true)
            && let Some(bos) = self.bos_id
            && ids.first() != Some(&bos)
        {
            ids.insert(0, bos);
        }
        Ok(ids)
    }

    /// Decodes `ids` to text; ids without a token are ignored (as in
    /// `tokenizers`). Invalid UTF-8 byte sequences come out as U+FFFD.
    pub fn decode(&self, ids: &[TokenId], skip_special_tokens: bool) -> Result<String> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| TokenizerError::Decode {
                path: self.path.clone(),
                count: ids.len(),
                message: e.to_string(),
            })
    }

    /// One past the largest token id, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The id of a token (vocabulary or added), by its exact text.
    pub fn token_to_id(&self, token: &str) -> Option<TokenId> {
        self.inner.token_to_id(token)
    }

    /// The text of a token (in the tokenizer's internal form, e.g. `Ġthe`).
    pub fn id_to_token(&self, id: TokenId) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// End-of-sequence ids: `generation_config.json`'s first, then
    /// `tokenizer_config.json`'s `eos_token` if different.
    pub fn eos_token_ids(&self) -> Vec<TokenId> {
        self.eos_ids.clone()
    }

    /// The BOS id: `generation_config.json`'s, else `tokenizer_config.json`'s token.
    pub fn bos_token_id(&self) -> Option<TokenId> {
        self.bos_id
    }

    /// The padding id: `generation_config.json`'s, else `tokenizer_config.json`'s token.
    pub fn pad_token_id(&self) -> Option<TokenId> {
        self.generation_config.pad_token_id.or_else(|| {
            self.config
                .pad_token
                .as_deref()
                .and_then(|t| self.token_to_id(t))
        })
    }

    /// The raw Jinja chat template, if the model has one.
    pub fn chat_template(&self) -> Option<&str> {
        self.config.chat_template.as_deref()
    }

    /// Replaces the chat template (e.g. with a `chat_template.jinja` file's
    /// contents, which newer checkpoints ship instead of the config field).
    pub fn set_chat_template(&mut self, template: Option<String>) {
        self.config.chat_template = template;
    }

    /// The parsed `tokenizer_config.json` (defaults if there was none).
    pub fn config(&self) -> &TokenizerConfig {
        &self.config
    }

    /// The parsed `generation_config.json` (defaults if there was none).
    pub fn generation_config(&self) -> &GenerationConfig {
        &self.generation_config
    }

    /// Whether `id` is a special added token (skipped by `skip_special_tokens`).
    pub fn is_special(&self, id: TokenId) -> bool {
        self.special_ids.contains(&id)
    }

    /// Path of the `tokenizer.json` this was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }
}
