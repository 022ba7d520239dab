//! The CUDA [`DeviceProfilerBackend`]: `cuProfilerStart`/`cuProfilerStop` on the device's
//! primary context (the one cubecl launches on), which Nsight Compute honours under
//! `--profile-from-start off`.

use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use cubecl_cuda::{CudaDevice, CudaRuntime};
use cudarc::driver::{CudaContext, profiler_start, profiler_stop};

use crate::DeviceProfilerBackend;

impl<F, I, BT> DeviceProfilerBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn device_profiler(device: &CudaDevice, on: bool) {
        let result = CudaContext::new(device.index).and_then(|ctx| {
            ctx.bind_to_thread()?;
            if on { profiler_start() } else { profiler_stop() }
        });
        if let Err(e) = result {
            tracing::warn!("device profiler range: {e:?}");
        }
    }
}
