//! [`DeviceProfilerBackend`]: opening and closing the range a device profiler records, so that
//! one engine step can be profiled on its own (`ncu --profile-from-start off`, driven by
//! `EMBER_PROFILE_DECODE_SEQS`; see docs/perf.md). Backends without such a tool keep the
//! default, which does nothing.

use burn_tensor::backend::Backend;

/// Backends whose device work a profiler can record in ranges.
pub trait DeviceProfilerBackend: Backend {
    /// Starts (`on`) or stops recording `device`'s work. The caller syncs the device first, so
    /// the range holds exactly the launches made in between.
    fn device_profiler(_device: &Self::Device, _on: bool) {}
}

crate::reference_backends!(DeviceProfilerBackend);
