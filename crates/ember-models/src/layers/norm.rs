//! RMSNorm over the last dimension, computed in f32 as transformers does, in either family's
//! weight style (`x̂·w` cast before the multiply, or Gemma's `x̂·(1+w)` multiplied in f32).

use burn_tensor::{FloatDType, Tensor, backend::Backend};

use crate::config::NormStyle;
use crate::error::Result;
use crate::weights::WeightLoader;

/// Root-mean-square normalisation with a learned scale.
#[derive(Debug, Clone)]
pub struct RmsNorm<B: Backend> {
    /// `[dim]`, f32; for Gemma already `1 + w`.
    scale: Tensor<B, 1>,
    eps: f64,
    style: NormStyle,
}

impl<B: Backend> RmsNorm<B> {
    /// Loads `{prefix}.weight` of size `dim`.
    pub fn load(loader: &WeightLoader<'_, B>, prefix: &str, dim: usize, eps: f64, style: NormStyle) -> Result<Self> {
        let weight = loader.tensor_f32(&format!("{prefix}.weight"), [dim])?;
        let scale = match style {
            NormStyle::Weight => weight,
            NormStyle::OnePlusWeight => weight + 1.0,
        };
        Ok(Self { scale, eps, style })
    }

    /// Normalises over the last dim of `x` (any rank).
    pub fn forward<const D: usize>(&self, x: Tensor<B, D>) -> Tensor<B, D> {
        let dtype = x.dtype();
        let x = x.cast(FloatDType::F32);
        let variance = (x.clone() * x.clone()).mean_dim(D - 1); // x² (burn-ndarray's powi goes through powf)
        // A division, not `recip()`: burn-ndarray's SIMD recip is an approximation (~1e-4
        // relative on x86), enough to move logprobs by 1e-3 in deep models.
        let normed = x / (variance + self.eps).sqrt();
        let scale = self.scale.clone().unsqueeze::<D>();
        match self.style {
            NormStyle::Weight => normed.cast(dtype) * scale.cast(dtype),
            NormStyle::OnePlusWeight => (normed * scale).cast(dtype),
        }
    }
}
