//! The encoder's input embeddings: `LayerNorm(word[id] + position[pos] + token_type[0])`.
//! Every input is a single segment, so the token type is always 0 (what sentence-transformers
//! feeds for one text).

use burn_tensor::{Int, Tensor, backend::Backend};

use crate::encoder::EncoderConfig;
use crate::error::Result;
use crate::layers::LayerNorm;
use crate::weights::WeightLoader;

/// `{prefix}embeddings.*`.
#[derive(Debug, Clone)]
pub(crate) struct EncoderEmbeddings<B: Backend> {
    /// `[vocab, hidden]`.
    word: Tensor<B, 2>,
    /// `[max_position_embeddings, hidden]`.
    position: Tensor<B, 2>,
    /// `[1, hidden]`: row 0 of the token-type table.
    token_type: Tensor<B, 2>,
    layer_norm: LayerNorm<B>,
}

impl<B: Backend> EncoderEmbeddings<B> {
    /// Loads `{prefix}.word_embeddings`, `.position_embeddings`, `.token_type_embeddings` and
    /// `.LayerNorm`.
    pub(crate) fn load(loader: &WeightLoader<'_, B>, prefix: &str, c: &EncoderConfig) -> Result<Self> {
        let h = c.hidden_size;
        let token_type: Tensor<B, 2> =
            loader.tensor(&format!("{prefix}.token_type_embeddings.weight"), [c.type_vocab_size, h])?;
        Ok(Self {
            word: loader.tensor(&format!("{prefix}.word_embeddings.weight"), [c.vocab_size, h])?,
            position: loader.tensor(&format!("{prefix}.position_embeddings.weight"), [c.max_position_embeddings, h])?,
            token_type: token_type.narrow(0, 0, 1),
            layer_norm: LayerNorm::load(loader, &format!("{prefix}.LayerNorm"), h, c.layer_norm_eps)?,
        })
    }

    /// `input_ids`, `positions`: `[tokens]` → `[tokens, hidden]`.
    pub(crate) fn forward(&self, input_ids: Tensor<B, 1, Int>, positions: Tensor<B, 1, Int>) -> Tensor<B, 2> {
        let x = self.word.clone().select(0, input_ids) + self.position.clone().select(0, positions);
        self.layer_norm.forward(x + self.token_type.clone())
    }
}
