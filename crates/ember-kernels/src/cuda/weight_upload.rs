//! The CUDA [`WeightUploadBackend`]: an uninitialised cubecl allocation (so cubecl owns and
//! frees it, in whatever allocation mode the caller set), filled by synchronous driver copies
//! from the host slices (the checkpoint's memory map when no conversion is needed). A sync of
//! cubecl's stream first makes its stream-ordered allocation usable from the driver's copy.

use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use burn_tensor::{DType, Tensor, TensorData};
use cubecl_cuda::{CudaDevice, CudaRuntime};
use cudarc::driver::{CudaContext, result};

use crate::WeightUploadBackend;

impl<F, I, BT> WeightUploadBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn upload_parts(parts: &[&[u8]], dtype: DType, device: &CudaDevice) -> Tensor<Self, 1> {
        match driver_upload::<Self>(parts, dtype, device) {
            Ok(tensor) => tensor,
            Err(why) => {
                tracing::warn!("weight upload through the driver failed ({why}); using burn's from_data");
                let bytes = parts.concat();
                let len = bytes.len() / dtype.size();
                Tensor::from_data(TensorData::from_bytes_vec(bytes, [len], dtype), (device, dtype))
            }
        }
    }
}

fn driver_upload<B>(parts: &[&[u8]], dtype: DType, device: &CudaDevice) -> Result<Tensor<B, 1>, String>
where
    B: burn_tensor::backend::Backend<Device = CudaDevice, FloatTensorPrimitive = burn_cubecl::tensor::CubeTensor<CudaRuntime>>,
{
    let total: usize = parts.iter().map(|p| p.len()).sum();
    let tensor = Tensor::<B, 1>::empty([total / dtype.size()], (device, dtype));
    if total == 0 {
        return Ok(tensor);
    }
    let primitive = tensor.clone().into_primitive().tensor();
    B::sync(device).map_err(|e| format!("{e:?}"))?;
    let resource = primitive.client.get_resource(primitive.handle.clone()).map_err(|e| format!("{e:?}"))?;
    let (ptr, size) = (resource.resource().ptr, resource.resource().size as usize);
    if size < total {
        return Err(format!("an allocation of {size} bytes for {total}"));
    }
    let ctx = CudaContext::new(device.index).map_err(|e| format!("{e:?}"))?;
    ctx.bind_to_thread().map_err(|e| format!("{e:?}"))?;
    let mut offset = 0u64;
    for part in parts {
        // SAFETY: `ptr + offset .. + part.len()` lies inside the allocation (checked above),
        // which `tensor` keeps alive; the copy is synchronous.
        unsafe { result::memcpy_htod_sync(ptr + offset, part) }.map_err(|e| format!("{e:?}"))?;
        offset += part.len() as u64;
    }
    Ok(tensor)
}
