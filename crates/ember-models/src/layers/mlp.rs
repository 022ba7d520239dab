//! The gated MLP shared by all families: `down(act(gate(x)) * up(x))`, with gate and up fused
//! into one projection at load time.

use ember_kernels::LinearBackend;
use burn_tensor::{Tensor, activation, backend::Backend};

use crate::config::Activation;
use crate::error::Result;
use crate::layers::Linear;
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

impl<B: LinearBackend> GatedMlp<B> {
    /// `x: [tokens, hidden]` → `[tokens, hidden]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let gate_up = self.gate_up.forward_kernel(x);
        let gate = gate_up.clone().narrow(1, 0, self.intermediate_size);
        let up = gate_up.narrow(1, self.intermediate_size, self.intermediate_size);
        self.down.forward_kernel(activate(self.activation, gate) * up)
    }
}

/// Applies `activation` elementwise (shared with the encoders' feed-forward).
pub fn activate<B: Backend, const D: usize>(activation: Activation, x: Tensor<B, D>) -> Tensor<B, D> {
    match activation {
        // x / (1 + e^-x), as torch computes SiLU (burn's goes through log-sigmoid: 3x the work).
        Activation::Silu => x.clone() / (x.neg().exp() + 1.0),
        Activation::GeluTanh => activation::gelu_approximate(x),
        Activation::Gelu => activation::gelu(x),
    }
}
