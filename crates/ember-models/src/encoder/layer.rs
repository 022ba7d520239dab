//! One post-LN encoder layer: self-attention (with its own residual + LayerNorm), then the
//! feed-forward `LayerNorm(a + output(act(intermediate(a))))` with exact (erf) GELU by default.

use burn_tensor::{Tensor, backend::Backend};

use crate::config::Activation;
use crate::encoder::EncoderConfig;
use crate::encoder::attention::EncoderSelfAttention;
use crate::error::Result;
use crate::layers::{LayerNorm, Linear, activate};
use crate::weights::WeightLoader;

/// `{prefix}.attention.*`, `{prefix}.intermediate.dense`, `{prefix}.output.{dense,LayerNorm}`.
#[derive(Debug, Clone)]
pub(crate) struct EncoderLayer<B: Backend> {
    attention: EncoderSelfAttention<B>,
    intermediate: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
    activation: Activation,
}

impl<B: Backend> EncoderLayer<B> {
    /// Loads layer `prefix` = `...encoder.layer.{i}`.
    pub(crate) fn load(loader: &WeightLoader<'_, B>, prefix: &str, c: &EncoderConfig) -> Result<Self> {
        let (h, ff) = (c.hidden_size, c.intermediate_size);
        Ok(Self {
            attention: EncoderSelfAttention::load(loader, &format!("{prefix}.attention"), c)?,
            intermediate: Linear::load(loader, &format!("{prefix}.intermediate.dense"), h, ff, true)?,
            output: Linear::load(loader, &format!("{prefix}.output.dense"), ff, h, true)?,
            output_norm: LayerNorm::load(loader, &format!("{prefix}.output.LayerNorm"), h, c.layer_norm_eps)?,
            activation: c.activation,
        })
    }

    /// `x: [seqs * len, hidden]` → same shape (see [`EncoderSelfAttention::forward`]).
    pub(crate) fn forward(&self, x: Tensor<B, 2>, seqs: usize, len: usize, mask: &Tensor<B, 4>) -> Tensor<B, 2> {
        let a = self.attention.forward(x, seqs, len, mask);
        let y = self.output.forward(activate(self.activation, self.intermediate.forward(a.clone())));
        self.output_norm.forward(y + a)
    }
}
