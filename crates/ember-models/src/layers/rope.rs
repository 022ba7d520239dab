//! Rotary position embeddings (the "rotate half" / NeoX layout transformers uses).
//!
//! cos/sin tables for every position up to `max_position_embeddings` are computed once on the
//! host (in f32, as transformers does) and uploaded; each step gathers the rows of its
//! positions once ([`RopeTables`]) and every layer reuses them.

use burn_tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::config::RopeConfig;

/// Precomputed cos/sin for all positions.
#[derive(Debug, Clone)]
pub struct RotaryEmbedding<B: Backend> {
    /// `[max_positions, head_dim / 2]`, f32.
    cos: Tensor<B, 2>,
    /// `[max_positions, head_dim / 2]`, f32.
    sin: Tensor<B, 2>,
}

/// The cos/sin rows of one step's positions, `[tokens, 1, head_dim / 2]`, in the compute dtype.
#[derive(Debug, Clone)]
pub struct RopeTables<B: Backend> {
    cos: Tensor<B, 3>,
    sin: Tensor<B, 3>,
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

    /// Gathers the rows for `positions` (`[tokens]`), cast to `dtype`.
    pub fn tables(&self, positions: Tensor<B, 1, Int>, dtype: burn_tensor::DType) -> RopeTables<B> {
        let gather = |t: &Tensor<B, 2>| t.clone().select(0, positions.clone()).cast(dtype).unsqueeze_dim(1);
        RopeTables { cos: gather(&self.cos), sin: gather(&self.sin) }
    }
}

impl<B: Backend> RopeTables<B> {
    /// Rotates `x: [tokens, heads, head_dim]`.
    pub fn apply(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [_, _, head_dim] = x.dims();
        let half = head_dim / 2;
        let x1 = x.clone().narrow(2, 0, half);
        let x2 = x.narrow(2, half, half);
        let rotated_1 = x1.clone() * self.cos.clone() - x2.clone() * self.sin.clone();
        let rotated_2 = x2 * self.cos.clone() + x1 * self.sin.clone();
        Tensor::cat(vec![rotated_1, rotated_2], 2)
    }
}
