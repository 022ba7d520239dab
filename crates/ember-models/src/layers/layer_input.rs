//! [`LayerInput`]: what a block's first projection (q/k/v, gate/up) reads: a normalised row,
//! or the norm still to apply ([`DeferredNorm`]: single-stream decode on a backend that moves
//! the norm into the projections around it).

use burn_tensor::{Tensor, backend::Backend};
use ember_kernels::{DeferredNorm, LayerOpsBackend};

/// The input of a projection that follows an RMSNorm.
#[derive(Debug, Clone)]
pub enum LayerInput<B: Backend> {
    /// `[tokens, hidden]`, already normalised.
    Normed(Tensor<B, 2>),
    /// One row whose norm the projection applies.
    Deferred(DeferredNorm<B>),
}

impl<B: LayerOpsBackend> LayerInput<B> {
    /// The normalised rows (runs the norm kernel for a deferred norm).
    pub fn materialize(self) -> Tensor<B, 2> {
        match self {
            Self::Normed(x) => x,
            Self::Deferred(d) => d.materialize(),
        }
    }
}
