//! RMSNorm over the last dimension, computed in f32 as transformers does, in either family's
//! weight style (`x̂·w` cast before the multiply, or Gemma's `x̂·(1+w)` multiplied in f32). The
//! arithmetic is the backend's ([`LayerOpsBackend::rms_norm`] and its fused residual-add form).

use burn_tensor::{Tensor, backend::Backend};
use ember_kernels::{LayerOpsBackend, RmsNormWeights};

use crate::config::NormStyle;
use crate::error::Result;
use crate::weights::WeightLoader;

/// Root-mean-square normalisation with a learned scale.
#[derive(Debug, Clone)]
pub struct RmsNorm<B: Backend> {
    weights: RmsNormWeights<B>,
}

impl<B: Backend> RmsNorm<B> {
    /// Loads `{prefix}.weight` of size `dim`.
    pub fn load(loader: &WeightLoader<'_, B>, prefix: &str, dim: usize, eps: f64, style: NormStyle) -> Result<Self> {
        let weight = loader.tensor_f32(&format!("{prefix}.weight"), [dim])?;
        let scale = match style {
            NormStyle::Weight => weight,
            NormStyle::OnePlusWeight => weight + 1.0,
        };
        Ok(Self { weights: RmsNormWeights { scale, eps, style } })
    }

    /// The scale, epsilon and style (for fused ops that take the norm as an argument).
    pub fn weights(&self) -> &RmsNormWeights<B> {
        &self.weights
    }
}

impl<B: LayerOpsBackend> RmsNorm<B> {
    /// Normalises each row of `x: [rows, dim]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        B::rms_norm(x, &self.weights)
    }

    /// `(norm(residual + x), residual + x)`: the residual add of a pre-norm block fused with
    /// the next norm.
    pub fn forward_add(&self, x: Tensor<B, 2>, residual: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
        B::fused_add_rms_norm(x, residual, &self.weights)
    }
}
