//! Rotary position embeddings (the "rotate half" / NeoX layout transformers uses).
//!
//! cos/sin tables for every position up to `max_position_embeddings` are computed once on the
//! host (in f32, as transformers does) and uploaded; each step prepares them once for its
//! positions ([`StepRope`]: the reference gathers the rows, kernels index the tables) and every
//! layer reuses that. The rotation itself is the backend's
//! ([`LayerOpsBackend::split_qkv_rope`]).

use burn_tensor::{Int, Tensor, TensorData, backend::Backend};
use ember_kernels::{LayerOpsBackend, StepRope};

use crate::config::RopeConfig;

/// Precomputed cos/sin for all positions.
#[derive(Debug, Clone)]
pub struct RotaryEmbedding<B: Backend> {
    /// `[max_positions, head_dim / 2]`, f32.
    cos: Tensor<B, 2>,
    /// `[max_positions, head_dim / 2]`, f32.
    sin: Tensor<B, 2>,
}

impl<B: Backend> RotaryEmbedding<B> {
    /// Builds the tables for `max_positions` positions.
    pub fn new(rope: &RopeConfig, head_dim: usize, max_positions: usize, device: &B::Device) -> Self {
        let inv_freq = rope.inv_freq(head_dim);
        let half = inv_freq.len();
        let mut cos = Vec::with_capacity(max_positions * half);
        let mut sin = Vec::with_capacity(max_positions * half);
        for pos in 0..max_positions {
            for f in &inv_freq {
                let angle = pos as f32 * f;
                cos.push(angle.cos());
                sin.push(angle.sin());
            }
        }
        let table = |v| Tensor::from_data(TensorData::new(v, [max_positions, half]), (device, burn_tensor::DType::F32));
        Self { cos: table(cos), sin: table(sin) }
    }
}

impl<B: LayerOpsBackend> RotaryEmbedding<B> {
    /// The tables of one step's `positions` (`[tokens]`) in compute dtype `dtype`.
    pub fn tables(&self, positions: Tensor<B, 1, Int>, dtype: burn_tensor::DType) -> StepRope<B> {
        B::rope_for_step(self.cos.clone(), self.sin.clone(), positions, dtype)
    }
}
