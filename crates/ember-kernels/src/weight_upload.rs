//! [`WeightUploadBackend`]: putting checkpoint bytes on the device. The default goes through
//! burn's `Tensor::from_data`; the CUDA backend copies with the driver into a cubecl
//! allocation, straight from the memory-mapped checkpoint (burn's path moved 16 GB at 0.5 GB/s).

use burn_tensor::{DType, Tensor, TensorData, backend::Backend};

/// How a backend receives weight bytes.
pub trait WeightUploadBackend: Backend {
    /// A 1-d tensor of `dtype` holding `parts` concatenated (each a whole number of elements,
    /// in the backend's byte order).
    fn upload_parts(parts: &[&[u8]], dtype: DType, device: &Self::Device) -> Tensor<Self, 1> {
        let bytes = parts.concat();
        let len = bytes.len() / dtype.size();
        Tensor::from_data(TensorData::from_bytes_vec(bytes, [len], dtype), (device, dtype))
    }
}

crate::reference_backends!(WeightUploadBackend);
