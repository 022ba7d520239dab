//! [`LinearBackend`]: the backend-extension trait for the linear layers' product
//! `y = x · Wᵀ` (W in the checkpoint's `[out, in]` layout). The default is burn's matmul, on
//! every backend; the CUDA backend overrides it with its GEMV kernel for small batches
//! (`kernels/gemv.cu`), the shape of decode steps.

use burn_tensor::{Tensor, backend::Backend};

/// The linear layers' matrix product.
pub trait LinearBackend: Backend {
    /// `x: [tokens, in]`, `weight: [out, in]`, `bias: [out]` → `[tokens, out]`. A kernel adds
    /// the bias before rounding to the compute dtype (as torch's `addmm` does); the default
    /// adds it after the product.
    fn linear(x: Tensor<Self, 2>, weight: Tensor<Self, 2>, bias: Option<Tensor<Self, 1>>) -> Tensor<Self, 2> {
        let y = x.matmul(weight.transpose());
        match bias {
            Some(b) => y + b.unsqueeze::<2>(),
            None => y,
        }
    }
}

crate::reference_backends!(LinearBackend);
