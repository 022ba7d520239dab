//! [`EncoderModel`]: a BERT-family encoder (embeddings + `num_layers` post-LN layers) and
//! [`EncoderBatch`], the padded inputs of one forward pass.
//!
//! Sequences are padded to the longest of the batch (`[seqs * len]` flat, sequence-major);
//! padding keys are masked out of attention, so a sequence's hidden states do not depend on
//! what it is batched with. The caller (the embedding runner) keeps batches of similar
//! lengths together to waste little on padding.

use burn_tensor::{DType, Int, Tensor, TensorData, backend::Backend};
use ember_loader::SafetensorsWeights;

use crate::encoder::EncoderConfig;
use crate::encoder::embeddings::EncoderEmbeddings;
use crate::encoder::layer::EncoderLayer;
use crate::error::Result;
use crate::weights::WeightLoader;

/// A BERT / XLM-RoBERTa encoder.
#[derive(Debug, Clone)]
pub struct EncoderModel<B: Backend> {
    config: EncoderConfig,
    dtype: DType,
    embeddings: EncoderEmbeddings<B>,
    layers: Vec<EncoderLayer<B>>,
}

/// The padded device inputs of one encoder pass.
#[derive(Debug, Clone)]
pub struct EncoderBatch<B: Backend> {
    /// Sequences in the batch.
    pub num_seqs: usize,
    /// Padded length (the longest sequence).
    pub padded_len: usize,
    /// Real length of each sequence.
    pub lengths: Vec<usize>,
    /// `[num_seqs * padded_len]`, padded with `pad_token_id`.
    input_ids: Tensor<B, 1, Int>,
    /// `[num_seqs * padded_len]`.
    positions: Tensor<B, 1, Int>,
    /// `[num_seqs, 1, 1, padded_len]` f32: 0 for real keys, −∞ for padding.
    mask: Tensor<B, 4>,
}

impl<B: Backend> EncoderBatch<B> {
    /// Pads `seqs` (each non-empty and within the position table) for `config`.
    pub fn new(config: &EncoderConfig, seqs: &[&[u32]], device: &B::Device) -> Self {
        let len = seqs.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
        let n = seqs.len();
        let pad = config.pad_token_id;
        let pad_position = if config.spec().positions_after_padding_idx { pad as i64 } else { 0 };
        let mut ids = Vec::with_capacity(n * len);
        let mut positions = Vec::with_capacity(n * len);
        let mut mask = Vec::with_capacity(n * len);
        for seq in seqs {
            ids.extend(seq.iter().map(|&t| t as i64));
            ids.extend(std::iter::repeat_n(pad as i64, len - seq.len()));
            positions.extend(config.position_ids(seq));
            positions.extend(std::iter::repeat_n(pad_position, len - seq.len()));
            mask.extend((0..len).map(|j| if j < seq.len() { 0.0f32 } else { f32::NEG_INFINITY }));
        }
        let int = |v: Vec<i64>| Tensor::<B, 1, Int>::from_data(TensorData::new(v, [n * len]), device);
        Self {
            num_seqs: n,
            padded_len: len,
            lengths: seqs.iter().map(|s| s.len()).collect(),
            input_ids: int(ids),
            positions: int(positions),
            mask: Tensor::from_data(TensorData::new(mask, [n, 1, 1, len]), (device, DType::F32)),
        }
    }

    /// `(first row, length)` of each sequence in the flat `[num_seqs * padded_len]` output.
    pub fn spans(&self) -> Vec<(usize, usize)> {
        self.lengths.iter().enumerate().map(|(i, &l)| (i * self.padded_len, l)).collect()
    }
}

impl<B: Backend> EncoderModel<B> {
    /// Loads the weights in `dtype` onto `device`. Tensor names may carry any of the family's
    /// prefixes (`bert.`, `roberta.`...); the first one the checkpoint has is used.
    pub fn load(config: &EncoderConfig, weights: &SafetensorsWeights, device: &B::Device, dtype: DType) -> Result<Self> {
        let loader = WeightLoader::<B>::new(weights, device, dtype);
        let prefixes = config.spec().weight_prefixes;
        let prefix = prefixes
            .iter()
            .find(|p| loader.contains(&format!("{p}embeddings.word_embeddings.weight")))
            .copied()
            .unwrap_or(prefixes[0]);
        let layers = (0..config.num_layers)
            .map(|i| EncoderLayer::load(&loader, &format!("{prefix}encoder.layer.{i}"), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            config: config.clone(),
            dtype,
            embeddings: EncoderEmbeddings::load(&loader, &format!("{prefix}embeddings"), config)?,
            layers,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &EncoderConfig {
        &self.config
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Every token's last hidden state: `[num_seqs * padded_len, hidden]` (padding rows
    /// included; [`EncoderBatch::spans`] says which rows are real).
    pub fn forward(&self, batch: &EncoderBatch<B>) -> Tensor<B, 2> {
        let (n, len) = (batch.num_seqs, batch.padded_len);
        let mut hidden = self.embeddings.forward(batch.input_ids.clone(), batch.positions.clone());
        for layer in &self.layers {
            hidden = layer.forward(hidden, n, len, &batch.mask);
        }
        hidden
    }
}
