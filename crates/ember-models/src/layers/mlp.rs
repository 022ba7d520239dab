//! The gated MLP shared by all families: `down(act(gate(x)) * up(x))`, with gate and up fused
//! into one projection at load time. The decoder runs the down projection itself
//! ([`GatedMlp::down`]) so that it can fuse the residual add and the next norm into it.

use burn_tensor::{Tensor, backend::Backend};
use ember_kernels::{LayerOpsBackend, LinearBackend};

use crate::config::Activation;
use crate::error::Result;
use crate::layers::{LayerInput, Linear};
use crate::weights::WeightLoader;

/// SwiGLU / GeGLU feed-forward block.
#[derive(Debug, Clone)]
pub struct GatedMlp<B: Backend> {
    gate_up: Linear<B>,
    down: Linear<B>,
    intermediate_size: usize,
    activation: Activation,
}

impl<B: Backend> GatedMlp<B> {
    /// Loads `{prefix}.gate_proj`, `{prefix}.up_proj` (fused) and `{prefix}.down_proj`.
    pub fn load(
        loader: &WeightLoader<'_, B>,
        prefix: &str,
        hidden_size: usize,
        intermediate_size: usize,
        bias: bool,
        activation: Activation,
    ) -> Result<Self> {
        let parts = [format!("{prefix}.gate_proj"), format!("{prefix}.up_proj")];
        Ok(Self {
            gate_up: Linear::load_fused(loader, &parts, hidden_size, &[intermediate_size; 2], bias)?,
            down: Linear::load(loader, &format!("{prefix}.down_proj"), intermediate_size, hidden_size, bias)?,
            intermediate_size,
            activation,
        })
    }

}

impl<B: LinearBackend + LayerOpsBackend> GatedMlp<B> {
    /// `act(gate(x)) * up(x)`: `[tokens, hidden]` → `[tokens, intermediate]`, the input of
    /// [`Self::down`] (which the decoder runs, so that it can fuse the residual add after it).
    pub fn activated(&self, x: LayerInput<B>) -> Tensor<B, 2> {
        match self.gate_up.forward_act_and_mul(&x, self.activation) {
            Some(fused) => fused,
            None => {
                let gate_up = self.gate_up.forward_input(x);
                debug_assert_eq!(gate_up.dims()[1], 2 * self.intermediate_size);
                B::act_and_mul(gate_up, self.activation)
            }
        }
    }

    /// The down projection: `[tokens, intermediate]` → `[tokens, hidden]`.
    pub fn down(&self) -> &Linear<B> {
        &self.down
    }

    /// The block's projections, for quantizing them.
    pub fn linears_mut(&mut self) -> [&mut Linear<B>; 2] {
        [&mut self.gate_up, &mut self.down]
    }
}

/// Applies an activation elementwise (shared with the encoders' feed-forward).
pub use ember_kernels::reference::layer_ops::activate;
