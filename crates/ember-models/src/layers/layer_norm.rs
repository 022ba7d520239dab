//! LayerNorm over the last dimension with a learned scale and bias (BERT / XLM-RoBERTa),
//! computed in f32 as transformers does and cast back to the input dtype.

use burn_tensor::{FloatDType, Tensor, backend::Backend};

use crate::error::Result;
use crate::weights::WeightLoader;

/// `(x − mean) / sqrt(var + eps) · w + b`, biased variance.
#[derive(Debug, Clone)]
pub struct LayerNorm<B: Backend> {
    /// `[dim]`, f32.
    weight: Tensor<B, 1>,
    /// `[dim]`, f32.
    bias: Tensor<B, 1>,
    eps: f64,
}

impl<B: Backend> LayerNorm<B> {
    /// Loads `{prefix}.weight` and `{prefix}.bias`, or the TF-era names `{prefix}.gamma` and
    /// `{prefix}.beta` that some old BERT checkpoints still carry.
    pub fn load(loader: &WeightLoader<'_, B>, prefix: &str, dim: usize, eps: f64) -> Result<Self> {
        let (w, b) = if !loader.contains(&format!("{prefix}.weight")) && loader.contains(&format!("{prefix}.gamma")) {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        Ok(Self {
            weight: loader.tensor_f32(&format!("{prefix}.{w}"), [dim])?,
            bias: loader.tensor_f32(&format!("{prefix}.{b}"), [dim])?,
            eps,
        })
    }

    /// Normalises over the last dim of `x` (any rank).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = x.cast(FloatDType::F32);
        let centered = x.clone() - x.mean_dim(D - 1);
        let variance = (centered.clone() * centered.clone()).mean_dim(D - 1);
        // A division, not `recip()` (burn-ndarray's SIMD recip is approximate; docs/burn-notes.md).
        let normed = centered / (variance + self.eps).sqrt();
        let y = normed * self.weight.clone().unsqueeze::<D>() + self.bias.clone().unsqueeze::<D>();
        y.cast(dtype)
    }
}
