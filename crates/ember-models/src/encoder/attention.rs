//! Bidirectional self-attention of one encoder layer over a padded batch, BERT's post-LN
//! form: `LayerNorm(x + dense(softmax(q·kᵀ/√d + mask)·v))`. Every query sees every real token
//! of its sequence; padding keys get −∞ (the mask of [`EncoderBatch`]). Scores and softmax are
//! computed in f32, as in the decoder.
//!
//! [`EncoderBatch`]: crate::encoder::EncoderBatch

use burn_tensor::{FloatDType, Tensor, activation::softmax, backend::Backend};

use crate::encoder::EncoderConfig;
use crate::error::Result;
use crate::layers::{LayerNorm, Linear};
use crate::weights::WeightLoader;

/// `{prefix}.self.{query,key,value}` (fused) and `{prefix}.output.{dense,LayerNorm}`.
#[derive(Debug, Clone)]
pub(crate) struct EncoderSelfAttention<B: Backend> {
    qkv: Linear<B>,
    output: Linear<B>,
    output_norm: LayerNorm<B>,
    num_heads: usize,
    head_dim: usize,
}

impl<B: Backend> EncoderSelfAttention<B> {
    /// Loads one layer's attention (`prefix` = `...encoder.layer.{i}.attention`).
    pub(crate) fn load(loader: &WeightLoader<'_, B>, prefix: &str, c: &EncoderConfig) -> Result<Self> {
        let h = c.hidden_size;
        let parts = ["query", "key", "value"].map(|p| format!("{prefix}.self.{p}"));
        Ok(Self {
            qkv: Linear::load_fused(loader, &parts, h, &[h, h, h], true)?,
            output: Linear::load(loader, &format!("{prefix}.output.dense"), h, h, true)?,
            output_norm: LayerNorm::load(loader, &format!("{prefix}.output.LayerNorm"), h, c.layer_norm_eps)?,
            num_heads: c.num_heads,
            head_dim: c.head_dim,
        })
    }

    /// `x: [seqs * len, hidden]` (sequence-major, padded to `len`), `mask: [seqs, 1, 1, len]`
    /// (0 or −∞, f32) → `[seqs * len, hidden]`.
    pub(crate) fn forward(&self, x: Tensor<B, 2>, seqs: usize, len: usize, mask: &Tensor<B, 4>) -> Tensor<B, 2> {
        let (heads, d) = (self.num_heads, self.head_dim);
        let hidden = heads * d;
        let dtype = x.dtype();
        let qkv = self.qkv.forward(x.clone());
        // [seqs, heads, len, d], made contiguous through a 3-d round trip so the matmuls see
        // canonical layouts (as the decoder's reference attention does).
        let split = |i: usize| {
            qkv.clone()
                .narrow(1, i * hidden, hidden)
                .reshape([seqs, len, heads, d])
                .swap_dims(1, 2)
                .reshape([seqs * heads, len, d])
                .reshape([seqs, heads, len, d])
        };
        let (q, k, v) = (split(0), split(1), split(2));
        let scale = 1.0 / (d as f64).sqrt();
        let scores = q.matmul(k.swap_dims(2, 3)).cast(FloatDType::F32) * scale + mask.clone();
        let probs = softmax(scores, 3).cast(dtype);
        let context = probs.matmul(v).swap_dims(1, 2).reshape([seqs * len, hidden]);
        self.output_norm.forward(self.output.forward(context) + x)
    }
}
