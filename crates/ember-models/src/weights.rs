//! Reads checkpoint tensors into device tensors of the chosen compute dtype.
//!
//! Conversion between f32/f16/bf16 happens on the host while copying out of the memory map, so
//! a bf16 checkpoint can run as f16 or f32 on wgpu (which has no bf16). Shapes are checked
//! against what the config implies; fused projections (q/k/v, gate/up) are concatenated row-wise
//! on the host, which for row-major `[out, in]` matrices is plain byte concatenation. The bytes
//! reach the device through an uploader ([`WeightLoader::with_uploader`]; default burn's
//! `from_data`): decoders use their backend's [`ember_kernels::WeightUploadBackend`], which on
//! CUDA copies straight from the memory map when the checkpoint already has the compute dtype.

use std::cell::Cell;
use std::time::{Duration, Instant};

use std::borrow::Cow;

use burn_tensor::{DType, Tensor, TensorData, backend::Backend};
use ember_loader::{SafetensorsWeights, WeightDtype};

use crate::error::{ModelError, Result};

/// Loads named tensors from a checkpoint onto one device in one dtype.
pub struct WeightLoader<'a, B: Backend> {
    weights: &'a SafetensorsWeights,
    device: B::Device,
    dtype: DType,
    /// Time spent copying (and converting) out of the memory map, and handing the bytes to the
    /// backend, and the bytes handed over: the parts of time to ready [`Self::log_timings`] reports.
    copying: Cell<Duration>,
    uploading: Cell<Duration>,
    bytes: Cell<u64>,
    /// Puts the concatenation of byte slices on the device as a 1-d tensor of the given dtype.
    uploader: fn(&[&[u8]], DType, &B::Device) -> Tensor<B, 1>,
}

fn from_data<B: Backend>(parts: &[&[u8]], dtype: DType, device: &B::Device) -> Tensor<B, 1> {
    let bytes = parts.concat();
    let len = bytes.len() / dtype.size();
    Tensor::from_data(TensorData::from_bytes_vec(bytes, [len], dtype), (device, dtype))
}

impl<'a, B: Backend> WeightLoader<'a, B> {
    /// A loader producing `dtype` tensors (F32, F16 or BF16) on `device`.
    pub fn new(weights: &'a SafetensorsWeights, device: &B::Device, dtype: DType) -> Self {
        Self {
            weights,
            device: device.clone(),
            dtype,
            copying: Cell::default(),
            uploading: Cell::default(),
            bytes: Cell::default(),
            uploader: from_data::<B>,
        }
    }

    /// Uses `uploader` instead of burn's `from_data`.
    pub fn with_uploader(mut self, uploader: fn(&[&[u8]], DType, &B::Device) -> Tensor<B, 1>) -> Self {
        self.uploader = uploader;
        self
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.weights.contains(name)
    }

    /// Loads `name`, checking its shape.
    pub fn tensor<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<B, D>> {
        self.concat_rows(&[name], shape)
    }

    /// Loads `name` in f32 whatever the compute dtype (norm weights, kept in full precision).
    pub fn tensor_f32<const D: usize>(&self, name: &str, shape: [usize; D]) -> Result<Tensor<B, D>> {
        self.load(&[name], shape, DType::F32)
    }

    /// Loads several tensors and concatenates them along dim 0 (fused projections). `shape` is
    /// the shape of the result; each part must match it in every dim but the first.
    pub fn concat_rows<const D: usize>(&self, names: &[&str], shape: [usize; D]) -> Result<Tensor<B, D>> {
        self.load(names, shape, self.dtype)
    }

    fn load<const D: usize>(&self, names: &[&str], shape: [usize; D], dtype: DType) -> Result<Tensor<B, D>> {
        let started = Instant::now();
        let target = weight_dtype(dtype);
        let mut parts: Vec<Cow<'_, [u8]>> = Vec::with_capacity(names.len());
        let mut rows = 0;
        for name in names {
            let found = self.weights.shape(name)?.to_vec();
            let mut expected = shape.to_vec();
            if names.len() > 1 {
                expected[0] = found.first().copied().unwrap_or(0);
            }
            if found != expected || found.len() != D {
                return Err(ModelError::WeightShape { name: name.to_string(), expected, found });
            }
            rows += found[0];
            parts.push(self.weights.to_dtype_bytes(name, target)?);
        }
        if rows != shape[0] {
            let found = [vec![rows], shape[1..].to_vec()].concat();
            return Err(ModelError::WeightShape { name: names.join("+"), expected: shape.to_vec(), found });
        }
        let copied = Instant::now();
        self.copying.set(self.copying.get() + copied.duration_since(started));
        let slices: Vec<&[u8]> = parts.iter().map(|p| p.as_ref()).collect();
        self.bytes.set(self.bytes.get() + slices.iter().map(|s| s.len() as u64).sum::<u64>());
        let tensor = (self.uploader)(&slices, dtype, &self.device).reshape(shape);
        self.uploading.set(self.uploading.get() + copied.elapsed());
        Ok(tensor)
    }

    /// Logs how long the tensors loaded so far took to copy out of the checkpoint and to hand to
    /// the backend (an asynchronous backend may still be uploading when this returns).
    pub fn log_timings(&self) {
        tracing::info!(
            "weights: {:.2} GB read (and converted where needed) out of the checkpoint in {:.1} s, handed to the backend in {:.1} s",
            self.bytes.get() as f64 / 1e9,
            self.copying.get().as_secs_f64(),
            self.uploading.get().as_secs_f64()
        );
    }
}

fn weight_dtype(dtype: DType) -> WeightDtype {
    match dtype {
        DType::F16 => WeightDtype::F16,
        DType::BF16 => WeightDtype::BF16,
        _ => WeightDtype::F32,
    }
}
