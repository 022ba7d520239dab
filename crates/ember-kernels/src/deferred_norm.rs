//! [`DeferredNorm`]: an RMSNorm whose 1/rms factor is applied by the linear layer that reads
//! it, so single-stream decode needs no norm kernel between two GEMVs. A backend that fuses it
//! ([`crate::LinearBackend::linear_residual_norm`]) returns one from the projection before
//! the norm (o_proj, down_proj): the residual sum, the sum scaled by the norm's weight, and
//! partial sums of squares; the next projection
//! ([`crate::LinearBackend::linear_deferred_norm`]) multiplies its dot products by the 1/rms
//! it sums from the partials. Anything else takes [`DeferredNorm::materialize`], the plain
//! norm of the residual sum.

use burn_tensor::Tensor;

use crate::layer_ops::{LayerOpsBackend, RmsNormWeights};

/// The norm of `residual` (one row), not yet applied.
#[derive(Debug, Clone)]
pub struct DeferredNorm<B: burn_tensor::backend::Backend> {
    /// `[1, dim]`: the residual stream after the add (the norm's input, and the next add's).
    pub residual: Tensor<B, 2>,
    /// `[1, dim]`: `residual * scale`, rounded to the compute dtype.
    pub scaled: Tensor<B, 2>,
    /// `[1, parts]` f32: sums of `residual²` over consecutive slices of the row; together the
    /// row's sum of squares.
    pub partials: Tensor<B, 2>,
    /// The norm being deferred.
    pub norm: RmsNormWeights<B>,
}

impl<B: LayerOpsBackend> DeferredNorm<B> {
    /// The normalised row, as the norm kernel computes it (for consumers with no fused form).
    pub fn materialize(&self) -> Tensor<B, 2> {
        B::rms_norm(self.residual.clone(), &self.norm)
    }
}
