//! A linear projection `y = x·Wᵀ + b` with the checkpoint's `[out, in]` weight layout, and
//! its FP8 copy under `--quantization fp8` ([`Linear::quantize_fp8`]).

use burn_tensor::{Tensor, backend::Backend};
use ember_kernels::{DeferredNorm, Fp8Weight, LayerOpsBackend, LinearBackend, RmsNormWeights};

use crate::layers::LayerInput;

use crate::error::Result;
use crate::weights::WeightLoader;

/// A dense projection; several checkpoint tensors may be fused into one (q/k/v, gate/up).
#[derive(Debug, Clone)]
pub struct Linear<B: Backend> {
    /// `[out_features, in_features]`.
    weight: Tensor<B, 2>,
    /// `[out_features]`.
    bias: Option<Tensor<B, 1>>,
    /// The weight in FP8 for the backend's FP8 products (`--quantization fp8`); the f16/bf16
    /// `weight` stays for the products the backend runs without it (see
    /// [`LinearBackend::linear_fp8`]).
    fp8: Option<Fp8Weight<B>>,
}

impl<B: Backend> Linear<B> {
    /// Loads `{prefix}.weight` (and `{prefix}.bias` when `bias`) for each prefix, fused row-wise.
    /// `out_features` lists each part's output size.
    pub fn load_fused(
        loader: &WeightLoader<'_, B>,
        prefixes: &[String],
        in_features: usize,
        out_features: &[usize],
        bias: bool,
    ) -> Result<Self> {
        let total: usize = out_features.iter().sum();
        let weights: Vec<String> = prefixes.iter().map(|p| format!("{p}.weight")).collect();
        let weight = loader.concat_rows(&refs(&weights), [total, in_features])?;
        let bias = if bias {
            let biases: Vec<String> = prefixes.iter().map(|p| format!("{p}.bias")).collect();
            Some(loader.concat_rows(&refs(&biases), [total])?)
        } else {
            None
        };
        Ok(Self { weight, bias, fp8: None })
    }

    /// Loads a single projection.
    pub fn load(loader: &WeightLoader<'_, B>, prefix: &str, in_features: usize, out_features: usize, bias: bool) -> Result<Self> {
        Self::load_fused(loader, &[prefix.to_string()], in_features, &[out_features], bias)
    }

    /// Wraps an existing weight (tied embeddings).
    pub fn from_weight(weight: Tensor<B, 2>) -> Self {
        Self { weight, bias: None, fp8: None }
    }

    /// `x: [tokens, in]` → `[tokens, out]`.
    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        let y = x.matmul(self.weight.clone().transpose());
        match &self.bias {
            Some(b) => y + b.clone().unsqueeze::<2>(),
            None => y,
        }
    }
}

impl<B: LinearBackend> Linear<B> {
    /// [`Linear::forward`] through the backend's linear kernel when it has one (the CUDA GEMV
    /// for small batches); the decoder's projections go through here.
    pub fn forward_kernel(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        if let Some(y) = self.fp8.as_ref().and_then(|w| <B as LinearBackend>::linear_fp8(&x, w, self.bias.as_ref())) {
            return y;
        }
        <B as LinearBackend>::linear(x, self.weight.clone(), self.bias.clone())
    }

    /// Quantizes the weight to FP8 for the backend's FP8 products; `false` when the backend
    /// has none for this weight ([`LinearBackend::quantize_weight_fp8`]).
    pub fn quantize_fp8(&mut self) -> bool {
        self.fp8 = <B as LinearBackend>::quantize_weight_fp8(&self.weight);
        self.fp8.is_some()
    }

    /// `act(gate) * up` of a fused gate/up projection in one op, when the backend has a fused
    /// kernel for `x` ([`LinearBackend::linear_act_and_mul`] and its deferred-norm form);
    /// `None` otherwise.
    pub fn forward_act_and_mul(&self, x: &LayerInput<B>, activation: ember_kernels::Activation) -> Option<Tensor<B, 2>> {
        match x {
            LayerInput::Normed(x) => <B as LinearBackend>::linear_act_and_mul(x, &self.weight, self.bias.as_ref(), activation),
            LayerInput::Deferred(d) => <B as LinearBackend>::linear_deferred_norm_act_and_mul(d, &self.weight, self.bias.as_ref(), activation),
        }
    }

    /// This projection of `x` added to `residual`, with `norm` of the sum left for the next
    /// projection to apply, when the backend fuses that ([`LinearBackend::linear_residual_norm`]).
    pub fn forward_residual_norm(&self, x: &Tensor<B, 2>, residual: &Tensor<B, 2>, norm: &RmsNormWeights<B>) -> Option<DeferredNorm<B>> {
        <B as LinearBackend>::linear_residual_norm(x, &self.weight, self.bias.as_ref(), residual, norm)
    }
}

impl<B: Backend> Linear<B> {
    /// `[out_features, in_features]`.
    pub fn weight(&self) -> &Tensor<B, 2> {
        &self.weight
    }

    /// `[out_features]`, when the layer has one.
    pub fn bias(&self) -> Option<&Tensor<B, 1>> {
        self.bias.as_ref()
    }
}

impl<B: LinearBackend + LayerOpsBackend> Linear<B> {
    /// [`Linear::forward_kernel`] of a block's input, applying a deferred norm inside the
    /// projection when the backend can ([`LinearBackend::linear_deferred_norm`]).
    pub fn forward_input(&self, x: LayerInput<B>) -> Tensor<B, 2> {
        match x {
            LayerInput::Normed(x) => self.forward_kernel(x),
            LayerInput::Deferred(d) => match <B as LinearBackend>::linear_deferred_norm(&d, &self.weight, self.bias.as_ref()) {
                Some(y) => y,
                None => self.forward_kernel(d.materialize()),
            },
        }
    }
}

fn refs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}
