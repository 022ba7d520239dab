//! The attention block: fused q/k/v projection, optional per-head q/k RMSNorm (Qwen3), rotary
//! embedding, writing K/V into the paged cache, paged attention; and the output projection,
//! which the decoder runs (see [`AttentionBlock::forward`]).

use burn_tensor::{Tensor, backend::Backend};
use ember_kernels::{AttentionMetadata, AttentionParams, KvCache, KvLayerCache, PagedAttentionBackend, QkvShape, StepRope};

use crate::config::ModelConfig;
use crate::error::Result;
use crate::layers::{LayerInput, Linear, RmsNorm};
use crate::weights::WeightLoader;

/// One layer's self-attention.
#[derive(Debug, Clone)]
pub struct AttentionBlock<B: Backend> {
    qkv: Linear<B>,
    o_proj: Linear<B>,
    q_norm: Option<RmsNorm<B>>,
    k_norm: Option<RmsNorm<B>>,
    params: AttentionParams,
}

impl<B: PagedAttentionBackend> AttentionBlock<B> {
    /// Loads `{prefix}.{q,k,v,o}_proj` (and `q_norm`/`k_norm`) for layer `layer`.
    pub fn load(loader: &WeightLoader<'_, B>, prefix: &str, config: &ModelConfig, layer: usize) -> Result<Self> {
        let (h, kvh, d) = (config.num_heads, config.num_kv_heads, config.head_dim);
        let parts = ["q_proj", "k_proj", "v_proj"].map(|p| format!("{prefix}.{p}"));
        let qkv = Linear::load_fused(loader, &parts, config.hidden_size, &[h * d, kvh * d, kvh * d], config.qkv_bias)?;
        let o_proj = Linear::load(loader, &format!("{prefix}.o_proj"), h * d, config.hidden_size, config.o_bias)?;
        let norm = |name: &str| -> Result<Option<RmsNorm<B>>> {
            config
                .spec
                .qk_norm
                .then(|| RmsNorm::load(loader, &format!("{prefix}.{name}"), d, config.rms_norm_eps, config.spec.norm))
                .transpose()
        };
        Ok(Self {
            qkv,
            o_proj,
            q_norm: norm("q_norm")?,
            k_norm: norm("k_norm")?,
            params: AttentionParams {
                num_heads: h,
                num_kv_heads: kvh,
                head_dim: d,
                scale: config.attn_scale,
                logit_softcap: config.attn_logit_softcap,
                sliding_window: config.layer_windows[layer],
            },
        })
    }

    /// `x: [tokens, hidden]` → the attention output before the output projection,
    /// `[tokens, heads * head_dim]` (the decoder runs [`Self::o_proj`], so that it can fuse the
    /// residual add after it); writes this step's K/V into layer `layer` of `cache` first, so
    /// the queries see their own keys.
    pub fn forward(
        &self,
        x: LayerInput<B>,
        rope: &StepRope<B>,
        cache: &mut KvCache<B>,
        layer: usize,
        metadata: &AttentionMetadata<B>,
    ) -> Tensor<B, 2> {
        let AttentionParams { num_heads: h, num_kv_heads: kvh, head_dim: d, .. } = self.params;
        let shape = QkvShape { num_heads: h, num_kv_heads: kvh, head_dim: d };
        let qk_norm = match (&self.q_norm, &self.k_norm) {
            (Some(qn), Some(kn)) => Some((qn.weights(), kn.weights())),
            _ => None,
        };
        let mut layer_cache = cache.take_layer(layer);
        // Single-stream decode: the backend may run the projection, the rotary embedding and
        // the cache write as one kernel.
        if let (LayerInput::Deferred(norm), None) = (&x, qk_norm) {
            match B::deferred_qkv_rope_and_cache(norm, self.qkv.weight(), self.qkv.bias(), shape, rope, layer_cache, metadata) {
                Ok((q, layer_cache)) => return self.attend(q, layer_cache, cache, layer, metadata),
                Err(unchanged) => layer_cache = unchanged,
            }
        }
        let qkv = self.qkv.forward_input(x);
        let (q, layer_cache) = B::split_qkv_rope_and_cache(qkv, shape, qk_norm, rope, layer_cache, metadata);
        self.attend(q, layer_cache, cache, layer, metadata)
    }

    /// Attention of `q` (`[tokens, heads, head_dim]`) over the layer's cache, which goes back
    /// into `cache`; `[tokens, heads * head_dim]`.
    fn attend(&self, q: Tensor<B, 3>, layer_cache: KvLayerCache<B>, cache: &mut KvCache<B>, layer: usize, metadata: &AttentionMetadata<B>) -> Tensor<B, 2> {
        let [tokens, heads, head_dim] = q.dims();
        let out = B::paged_attention(q, &layer_cache, metadata, &self.params);
        cache.put_layer(layer, layer_cache);
        out.reshape([tokens, heads * head_dim])
    }

    /// The output projection: `[tokens, heads * head_dim]` → `[tokens, hidden]`.
    pub fn o_proj(&self) -> &Linear<B> {
        &self.o_proj
    }

    /// The block's projections, for quantizing them.
    pub fn linears_mut(&mut self) -> [&mut Linear<B>; 2] {
        [&mut self.qkv, &mut self.o_proj]
    }
}
