//! The decoder skeleton shared by every family: embeddings, `num_layers` pre-norm blocks
//! (attention + gated MLP, with Gemma2's extra "sandwich" norms when the spec says so), the
//! final norm and the LM head.
//!
//! Checkpoints name the tensors `model.layers.*` (a `*ForCausalLM`) or `layers.*` (the bare
//! `*Model`, as Qwen3-Embedding ships); both load. Embedding models load without the LM head
//! ([`DecoderModel::load_without_lm_head`]) and pool [`DecoderModel::forward`]'s final-normed
//! hidden states.
//!
//! `forward` runs a flat batch of tokens from many sequences (no padding): per-sequence
//! structure lives entirely in the [`AttentionMetadata`]. Logits are computed separately, only
//! for the rows the sampler needs.

use burn_tensor::{DType, FloatDType, Int, Tensor, backend::Backend};
use ember_kernels::{AttentionMetadata, DeferredNorm, KvCache, PagedAttentionBackend};
use ember_loader::SafetensorsWeights;

use crate::config::ModelConfig;
use crate::error::{ModelError, Result};
use crate::layers::{AttentionBlock, GatedMlp, LayerInput, Linear, RmsNorm, RotaryEmbedding};
use crate::weights::WeightLoader;

/// One transformer block.
#[derive(Debug, Clone)]
struct DecoderLayer<B: Backend> {
    input_layernorm: RmsNorm<B>,
    attention: AttentionBlock<B>,
    /// Llama: the norm before the MLP. Gemma2: the norm after attention.
    post_attention_layernorm: RmsNorm<B>,
    /// Gemma2 only: norms before and after the MLP.
    feedforward_norms: Option<(RmsNorm<B>, RmsNorm<B>)>,
    mlp: GatedMlp<B>,
}

/// A decoder-only language model of any supported family.
#[derive(Debug, Clone)]
pub struct DecoderModel<B: Backend> {
    config: ModelConfig,
    dtype: DType,
    embed_tokens: Tensor<B, 2>,
    layers: Vec<DecoderLayer<B>>,
    norm: RmsNorm<B>,
    /// `None` for embedding models.
    lm_head: Option<Linear<B>>,
    rotary: RotaryEmbedding<B>,
}

impl<B: PagedAttentionBackend> DecoderModel<B> {
    /// Loads all weights in `dtype` onto `device`. Rotary tables cover `max_positions`.
    pub fn load(
        config: &ModelConfig,
        weights: &SafetensorsWeights,
        device: &B::Device,
        dtype: DType,
        max_positions: usize,
    ) -> Result<Self> {
        Self::load_parts(config, weights, device, dtype, max_positions, true)
    }

    /// Like [`Self::load`] without the LM head (embedding models: the checkpoint may have
    /// none, and [`Self::compute_logits`] must not be called).
    pub fn load_without_lm_head(
        config: &ModelConfig,
        weights: &SafetensorsWeights,
        device: &B::Device,
        dtype: DType,
        max_positions: usize,
    ) -> Result<Self> {
        Self::load_parts(config, weights, device, dtype, max_positions, false)
    }

    fn load_parts(
        config: &ModelConfig,
        weights: &SafetensorsWeights,
        device: &B::Device,
        dtype: DType,
        max_positions: usize,
        with_lm_head: bool,
    ) -> Result<Self> {
        let loader = WeightLoader::<B>::new(weights, device, dtype).with_uploader(B::upload_parts);
        let c = config;
        let (eps, style) = (c.rms_norm_eps, c.spec.norm);
        // `model.` for *ForCausalLM checkpoints, none for a bare *Model.
        let base = if !weights.contains("model.embed_tokens.weight") && weights.contains("embed_tokens.weight") {
            ""
        } else {
            "model."
        };
        let embed_tokens = loader.tensor(&format!("{base}embed_tokens.weight"), [c.vocab_size, c.hidden_size])?;
        let layers = (0..c.num_layers)
            .map(|i| {
                let p = format!("{base}layers.{i}");
                let norm = |name: &str| RmsNorm::load(&loader, &format!("{p}.{name}"), c.hidden_size, eps, style);
                Ok(DecoderLayer {
                    input_layernorm: norm("input_layernorm")?,
                    attention: AttentionBlock::load(&loader, &format!("{p}.self_attn"), c, i)?,
                    post_attention_layernorm: norm("post_attention_layernorm")?,
                    feedforward_norms: if c.spec.sandwich_norms {
                        Some((norm("pre_feedforward_layernorm")?, norm("post_feedforward_layernorm")?))
                    } else {
                        None
                    },
                    mlp: GatedMlp::load(&loader, &format!("{p}.mlp"), c.hidden_size, c.intermediate_size, c.mlp_bias, c.activation)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let lm_head = match (with_lm_head, c.tie_word_embeddings) {
            (false, _) => None,
            (true, true) => Some(Linear::from_weight(embed_tokens.clone())),
            (true, false) => Some(Linear::load(&loader, "lm_head", c.hidden_size, c.vocab_size, false)?),
        };
        let norm = RmsNorm::load(&loader, &format!("{base}norm"), c.hidden_size, eps, style)?;
        loader.log_timings();
        Ok(Self {
            config: config.clone(),
            dtype,
            embed_tokens,
            layers,
            norm,
            lm_head,
            rotary: RotaryEmbedding::new(&c.rope, c.head_dim, max_positions, device),
        })
    }

    /// `--quantization fp8`: every layer's projections (q/k/v, o, gate/up, down; not the
    /// embeddings or the LM head, as vLLM) get an FP8 copy of their weight with one scale per
    /// output channel, which the backend's FP8 products use (CUDA on Hopper, f16/bf16 models);
    /// an error when the backend has none. Returns the bytes of FP8 weights added.
    pub fn quantize_fp8(&mut self) -> Result<u64> {
        if !matches!(self.dtype, DType::F16 | DType::BF16) {
            let reason = format!("needs a float16 or bfloat16 model (--dtype), not {:?}", self.dtype);
            return Err(ModelError::Quantization { method: "fp8", reason });
        }
        let mut bytes = 0u64;
        for layer in &mut self.layers {
            let linears = layer.attention.linears_mut().into_iter().chain(layer.mlp.linears_mut());
            for linear in linears {
                if !linear.quantize_fp8() {
                    let reason = "not supported by this backend: it needs --backend cuda on a Hopper GPU (compute capability 9.0) and projections whose input width is a multiple of 16".to_string();
                    return Err(ModelError::Quantization { method: "fp8", reason });
                }
                let [n, k] = linear.weight().dims();
                bytes += (n * k + 4 * n) as u64;
            }
        }
        Ok(bytes)
    }

    /// The model's configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The compute dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Runs all layers over a flat batch: `input_ids`, `positions`: `[tokens]`. Writes the
    /// tokens' K/V into `cache` and returns the final hidden states `[tokens, hidden]`.
    pub fn forward(
        &self,
        input_ids: Tensor<B, 1, Int>,
        positions: Tensor<B, 1, Int>,
        cache: &mut KvCache<B>,
        metadata: &AttentionMetadata<B>,
    ) -> Tensor<B, 2> {
        let mut hidden = B::token_embedding(self.embed_tokens.clone(), input_ids);
        if self.config.spec.scale_embeddings {
            // transformers rounds the normaliser to the compute dtype first.
            let normalizer = round_to(self.dtype, (self.config.hidden_size as f32).sqrt());
            hidden = hidden * normalizer;
        }
        let rope = self.rotary.tables(positions, self.dtype);
        // The residual stream between blocks (vLLM's layout: each add is fused with the norm
        // that follows it, or, for one-token steps on a backend that defers norms, with the
        // projection before it).
        let mut carry = Carry::Pending { hidden, residual: None };
        for (i, layer) in self.layers.iter().enumerate() {
            let (x, r) = carry.into_input(&layer.input_layernorm);
            let attn = layer.attention.forward(x, &rope, cache, i, metadata);
            let o_proj = layer.attention.o_proj();
            let (x, r) = match &layer.feedforward_norms {
                // Gemma2: the attention output is normed before its residual add.
                Some((pre_ff, _)) => {
                    let (x, r) = pre_ff.forward_add(layer.post_attention_layernorm.forward(o_proj.forward_kernel(attn)), r);
                    (LayerInput::Normed(x), r)
                }
                None => project_add(o_proj, attn, r, Some(&layer.post_attention_layernorm)).into_input(&layer.post_attention_layernorm),
            };
            let y = layer.mlp.activated(x);
            carry = match &layer.feedforward_norms {
                Some((_, post_ff)) => Carry::Pending { hidden: post_ff.forward(layer.mlp.down().forward_kernel(y)), residual: Some(r) },
                None => project_add(layer.mlp.down(), y, r, self.layers.get(i + 1).map(|next| &next.input_layernorm)),
            };
        }
        carry.into_input(&self.norm).0.materialize()
    }

    /// LM head (+ Gemma2's final soft-capping, in f32) for the given rows: `[rows, hidden]` →
    /// `[rows, vocab_size]`, in the model's dtype when there is no soft-capping (the sampler's
    /// plain path reads them as they are; everything else casts to f32 first).
    ///
    /// # Panics
    /// If the model was loaded with [`Self::load_without_lm_head`] (a bug in the caller).
    pub fn compute_logits(&self, hidden: Tensor<B, 2>) -> Tensor<B, 2> {
        let lm_head = self.lm_head.as_ref().expect("compute_logits on a model loaded without its LM head");
        let logits = lm_head.forward_kernel(hidden);
        match self.config.final_logit_softcap {
            Some(cap) => (logits.cast(FloatDType::F32) / cap).tanh() * cap,
            None => logits,
        }
    }
}

/// The residual stream between two sub-blocks.
enum Carry<B: Backend> {
    /// The last sub-block's output, still to be added to the residual (none before the first
    /// block).
    Pending { hidden: Tensor<B, 2>, residual: Option<Tensor<B, 2>> },
    /// Added already, with the next norm deferred into the next projection.
    Deferred(DeferredNorm<B>),
}

impl<B: PagedAttentionBackend> Carry<B> {
    /// The next block's input under `norm`, and the residual stream after the add.
    fn into_input(self, norm: &RmsNorm<B>) -> (LayerInput<B>, Tensor<B, 2>) {
        match self {
            Self::Pending { hidden, residual: Some(r) } => {
                let (x, r) = norm.forward_add(hidden, r);
                (LayerInput::Normed(x), r)
            }
            Self::Pending { hidden, residual: None } => (LayerInput::Normed(norm.forward(hidden.clone())), hidden),
            Self::Deferred(d) => {
                let r = d.residual.clone();
                (LayerInput::Deferred(d), r)
            }
        }
    }
}

/// `proj(x)`, to be added to `residual`: fused with the add and `next_norm` when the backend
/// defers that norm into the next projection (one-token steps on CUDA), pending otherwise.
fn project_add<B: PagedAttentionBackend>(proj: &Linear<B>, x: Tensor<B, 2>, residual: Tensor<B, 2>, next_norm: Option<&RmsNorm<B>>) -> Carry<B> {
    if let Some(deferred) = next_norm.and_then(|norm| proj.forward_residual_norm(&x, &residual, norm.weights())) {
        return Carry::Deferred(deferred);
    }
    Carry::Pending { hidden: proj.forward_kernel(x), residual: Some(residual) }
}

/// `value` rounded to `dtype`'s precision (as `torch.tensor(value, dtype=...)` does).
fn round_to(dtype: DType, value: f32) -> f32 {
    match dtype {
        DType::F16 => burn_tensor::f16::from_f32(value).to_f32(),
        DType::BF16 => burn_tensor::bf16::from_f32(value).to_f32(),
        _ => value,
    }
}
