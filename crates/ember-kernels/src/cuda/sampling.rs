//! The CUDA [`SamplingBackend`]: `kernels/sampling.cu` picks every row's token (argmax for
//! greedy rows, inverse CDF otherwise) in one launch. Logits that are not f32 with dense rows go
//! to the reference.

use std::sync::OnceLock;

use burn_cubecl::ops::numeric::empty_device_contiguous_dtype;
use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use burn_tensor::{DType, Int, Shape, Tensor, TensorData};
use cubecl_cuda::CudaRuntime;

use super::ops::row_stride;
use super::raw_kernel::{RawCudaKernel, launch, pack_u32};
use crate::SamplingBackend;
use crate::reference::sampling as reference;

const SAMPLING: &str = include_str!("../../../../kernels/sampling.cu");

fn kernel() -> &'static RawCudaKernel {
    static CELL: OnceLock<RawCudaKernel> = OnceLock::new();
    CELL.get_or_init(|| RawCudaKernel::new(SAMPLING, "ember_sample_tokens", 1024))
}

impl<F, I, BT> SamplingBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn sample_tokens(logits: Tensor<Self, 2>, uniforms: &[f32]) -> Tensor<Self, 2, Int> {
        let x = logits.clone().into_primitive().tensor();
        let [rows, vocab] = x.meta.shape().dims::<2>();
        let stride = row_stride(&x);
        let fits = rows == uniforms.len() && rows > 0 && vocab > 0 && I::dtype() == DType::I32;
        let (Some(stride), DType::F32, true) = (stride, x.dtype, fits) else {
            return reference::sample_tokens(logits, uniforms);
        };
        let device = logits.device();
        let u = Tensor::<Self, 1>::from_data(TensorData::new(uniforms.to_vec(), [rows]), (&device, DType::F32));
        let u = u.into_primitive().tensor();
        let out = empty_device_contiguous_dtype(x.client.clone(), x.device.clone(), Shape::new([rows, 1]), DType::I32);
        let buffers = vec![x.handle.clone(), u.handle.clone(), out.handle.clone()];
        launch(&x.client, kernel(), (rows as u32, 1, 1), buffers, pack_u32(&[rows as u32, vocab as u32, stride as u32, 0]));
        Tensor::from_primitive(out)
    }
}
