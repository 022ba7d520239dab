//! Which task a model folder serves, and for embeddings what to load: the backbone (an encoder
//! config or a decoder config), the pooler, matryoshka sizes and the longest input.

use ember_loader::ModelFiles;
use ember_models::{EncoderConfig, Matryoshka, ModelConfig, PoolerConfig};
use serde::Deserialize;

use crate::args::{EngineArgs, Task};
use crate::error::{EngineError, Result};

/// The network under the pooler.
#[derive(Debug, Clone)]
pub(crate) enum Backbone {
    /// BERT / XLM-RoBERTa.
    Encoder(EncoderConfig),
    /// A decoder family run without its LM head (Qwen3-Embedding...).
    Decoder(ModelConfig),
}

/// Everything needed to build an embedding engine, independent of the backend.
#[derive(Debug, Clone)]
pub(crate) struct EmbeddingSpec {
    pub backbone: Backbone,
    pub pooler: PoolerConfig,
    pub matryoshka: Option<Matryoshka>,
    /// Longest input in tokens.
    pub max_model_len: usize,
}

#[derive(Deserialize)]
struct SentenceBertConfig {
    max_seq_length: Option<usize>,
}

/// Resolves [`Task::Auto`] for a folder, and refuses generation on an encoder.
pub(crate) fn resolve_task(task: Task, files: &ModelFiles) -> Result<Task> {
    let encoder = EncoderConfig::from_file(&files.config)?;
    match task {
        Task::Generate if encoder.is_some() => Err(EngineError::InvalidArgs(format!(
            "{}: an encoder-only model ({:?}) cannot generate text; serve it with --task embed",
            files.dir.display(),
            encoder.map(|e| e.family)
        ))),
        Task::Auto if encoder.is_some() || PoolerConfig::has_pooling_module(&files.dir) => Ok(Task::Embed),
        Task::Auto => Ok(Task::Generate),
        other => Ok(other),
    }
}

impl EmbeddingSpec {
    /// Reads config.json, the sentence-transformers files and checks `--max-model-len`.
    pub(crate) fn from_files(files: &ModelFiles, args: &EngineArgs) -> Result<Self> {
        let backbone = match EncoderConfig::from_file(&files.config)? {
            Some(encoder) => Backbone::Encoder(encoder),
            None => Backbone::Decoder(ModelConfig::from_file(&files.config)?),
        };
        let is_encoder = matches!(backbone, Backbone::Encoder(_));
        let pooler = match PoolerConfig::from_sentence_transformers(&files.dir)? {
            Some(p) => p,
            None => {
                let p = PoolerConfig::default_for(is_encoder);
                tracing::info!("no modules.json: pooling {} with normalisation (vLLM's default)", p.pooling_type.name());
                p
            }
        };
        let hidden = match &backbone {
            Backbone::Encoder(c) => c.hidden_size,
            Backbone::Decoder(c) => c.hidden_size,
        };
        if let Some(dim) = pooler.embedding_dimension.filter(|&d| d != hidden) {
            return Err(EngineError::InvalidArgs(format!(
                "the Pooling module expects {dim}-dimensional token embeddings but the model's hidden size is {hidden}"
            )));
        }
        let positions = match &backbone {
            Backbone::Encoder(c) => c.max_positions(),
            Backbone::Decoder(c) => c.max_position_embeddings,
        };
        let st_max = match &files.sentence_bert_config {
            Some(path) => ember_loader::read_json::<SentenceBertConfig>(path)?.max_seq_length,
            None => None,
        };
        let derived = st_max.map_or(positions, |m| m.min(positions));
        let max_model_len = match args.max_model_len {
            None => derived,
            Some(len) if (1..=derived).contains(&len) => len,
            Some(len) => {
                let why = match st_max {
                    Some(m) if m <= positions => format!("max_seq_length {m} in sentence_bert_config.json"),
                    _ => format!("the model's {positions} positions"),
                };
                return Err(EngineError::InvalidArgs(format!(
                    "--max-model-len {len} must be between 1 and the longest input the model takes ({derived}: {why})"
                )));
            }
        };
        Ok(Self { backbone, pooler, matryoshka: Matryoshka::from_config(&files.config)?, max_model_len })
    }

    /// Native embedding size.
    pub(crate) fn dimension(&self) -> usize {
        match &self.backbone {
            Backbone::Encoder(c) => c.hidden_size,
            Backbone::Decoder(c) => c.hidden_size,
        }
    }

    /// Rows of the word embedding.
    pub(crate) fn vocab_size(&self) -> usize {
        match &self.backbone {
            Backbone::Encoder(c) => c.vocab_size,
            Backbone::Decoder(c) => c.vocab_size,
        }
    }

    /// dtype named by config.json.
    pub(crate) fn checkpoint_dtype(&self) -> Option<&str> {
        match &self.backbone {
            Backbone::Encoder(c) => c.checkpoint_dtype.as_deref(),
            Backbone::Decoder(c) => c.checkpoint_dtype.as_deref(),
        }
    }

    /// A short name for logs (`bert`, `qwen3`...).
    pub(crate) fn family(&self) -> String {
        match &self.backbone {
            Backbone::Encoder(c) => format!("{:?}", c.family),
            Backbone::Decoder(c) => c.family.name().to_string(),
        }
    }
}
