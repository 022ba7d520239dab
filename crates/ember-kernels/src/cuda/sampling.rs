//! The CUDA [`SamplingBackend`]: `kernels/sampling.cu` picks every row's token (argmax for
//! greedy rows, inverse CDF otherwise, after the row's temperature) in one launch, from f32,
//! f16 or bf16 logits. Logits without unit column stride go to the reference.

use std::sync::OnceLock;

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use burn_tensor::{DType, Int, Shape, Tensor, TensorData};
use cubecl_cuda::CudaRuntime;

use super::ops::{PerDtype, kernels, row_stride, suffix};
use super::raw_kernel::{launch, pack_u32};
use crate::SamplingBackend;
use crate::reference::sampling as reference;

const SAMPLING: &str = include_str!("../../../../kernels/sampling.cu");

fn sample_kernels() -> &'static PerDtype {
    static CELL: OnceLock<PerDtype> = OnceLock::new();
    kernels(&CELL, SAMPLING, ["ember_sample_tokens_f32", "ember_sample_tokens_f16", "ember_sample_tokens_bf16"], 1024)
}

impl<F, I, BT> SamplingBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn sample_tokens(logits: Tensor<Self, 2>, uniforms: &[f32], temperatures: &[f32]) -> Tensor<Self, 2, Int> {
        let x = logits.clone().into_primitive().tensor();
        let [rows, vocab] = x.meta.shape().dims::<2>();
        let stride = row_stride(&x);
        let fits = rows == uniforms.len() && rows == temperatures.len() && rows > 0 && vocab > 0 && I::dtype() == DType::I32;
        let (Some(stride), Some(index), true) = (stride, suffix(x.dtype), fits) else {
            return reference::sample_tokens(logits, uniforms, temperatures);
        };
        let device = logits.device();
        let row_params: Vec<f32> = uniforms.iter().chain(temperatures).copied().collect();
        let row_params = Tensor::<Self, 1>::from_data(TensorData::new(row_params, [2 * rows]), (&device, DType::F32));
        let row_params = row_params.into_primitive().tensor();
        let out = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([rows, 1]), DType::I32);
        let buffers = vec![x.handle.clone(), row_params.handle.clone(), out.handle.clone()];
        launch(&x.client, &sample_kernels().0[index], (rows as u32, 1, 1), buffers, pack_u32(&[rows as u32, vocab as u32, stride as u32, 0]));
        Tensor::from_primitive(out)
    }
}
