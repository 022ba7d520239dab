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

impl<E, I, Q> LinearBackend for burn_ndarray::NdArray<E, I, Q>
where
    E: burn_ndarray::FloatNdArrayElement,
    I: burn_ndarray::IntNdArrayElement,
    Q: burn_ndarray::QuantElement,
    burn_ndarray::NdArrayTensor: From<burn_ndarray::SharedArray<E>>,
    burn_ndarray::NdArrayTensor: From<burn_ndarray::SharedArray<I>>,
{
}

#[cfg(feature = "wgpu")]
impl<F, I, BT> LinearBackend for burn_cubecl::CubeBackend<burn_wgpu::WgpuRuntime, F, I, BT>
where
    F: burn_cubecl::FloatElement,
    I: burn_cubecl::IntElement,
    BT: burn_cubecl::BoolElement,
{
}

#[cfg(feature = "fusion")]
impl<B> LinearBackend for burn_fusion::Fusion<B> where B: burn_fusion::FusionBackend + LinearBackend {}
