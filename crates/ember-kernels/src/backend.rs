//! The backend-extension trait for paged attention (burn's pattern for custom operations).
//!
//! Every method has a default body: the reference implementation in plain burn ops, correct on
//! every backend. A backend with custom kernels overrides the methods it accelerates; its
//! kernels must agree with the reference (parity tests). Implementations for the concrete
//! backends live at the bottom of this file, behind the crate features that bring them in.

use burn_tensor::{Int, Tensor};

use crate::{
    AttentionMetadata, AttentionParams, DeviceProfilerBackend, KvLayerCache, LayerOpsBackend, LinearBackend, QkvShape, RmsNormWeights,
    SamplingBackend, StepGraphBackend, StepRope, WeightUploadBackend, reference,
};

/// Paged attention and KV-cache operations.
///
/// It extends [`LinearBackend`], [`LayerOpsBackend`], [`SamplingBackend`], [`StepGraphBackend`],
/// [`WeightUploadBackend`] and [`DeviceProfilerBackend`], so that model and engine code bound
/// by this one trait gets every
/// custom op of its backend.
pub trait PagedAttentionBackend: LinearBackend + LayerOpsBackend + SamplingBackend + StepGraphBackend + WeightUploadBackend + DeviceProfilerBackend {
    /// Writes the step's new keys and values (`[num_tokens, num_kv_heads, head_dim]`) into their
    /// cache slots (`metadata.slot_mapping`; vLLM's `reshape_and_cache`).
    fn reshape_and_cache(
        cache: KvLayerCache<Self>,
        key: Tensor<Self, 3>,
        value: Tensor<Self, 3>,
        metadata: &AttentionMetadata<Self>,
    ) -> KvLayerCache<Self> {
        reference::reshape_and_cache(cache, key, value, metadata.slot_block_offsets.clone())
    }

    /// [`LayerOpsBackend::split_qkv_rope`] followed by [`Self::reshape_and_cache`] of its k and
    /// v: returns q (`[num_tokens, num_heads, head_dim]`) and the updated cache. A backend may
    /// fuse the two (the CUDA kernel writes k and v straight into their slots: one launch and
    /// no k/v tensors).
    fn split_qkv_rope_and_cache(
        qkv: Tensor<Self, 2>,
        shape: QkvShape,
        qk_norm: Option<(&RmsNormWeights<Self>, &RmsNormWeights<Self>)>,
        rope: &StepRope<Self>,
        cache: KvLayerCache<Self>,
        metadata: &AttentionMetadata<Self>,
    ) -> (Tensor<Self, 3>, KvLayerCache<Self>) {
        let (q, k, v) = Self::split_qkv_rope(qkv, shape, qk_norm, rope);
        (q, Self::reshape_and_cache(cache, k, v, metadata))
    }

    /// [`LinearBackend::linear_deferred_norm`] of the q/k/v weight followed by
    /// [`Self::split_qkv_rope_and_cache`] (no q/k norms), in one kernel where the backend has
    /// one: q and the updated cache, or `Err(cache)` unchanged when it has none for these
    /// inputs (the default), and the caller runs the two.
    #[allow(clippy::too_many_arguments, clippy::result_large_err)]
    fn deferred_qkv_rope_and_cache(
        _input: &crate::DeferredNorm<Self>,
        _weight: &Tensor<Self, 2>,
        _bias: Option<&Tensor<Self, 1>>,
        _shape: QkvShape,
        _rope: &StepRope<Self>,
        cache: KvLayerCache<Self>,
        _metadata: &AttentionMetadata<Self>,
    ) -> Result<(Tensor<Self, 3>, KvLayerCache<Self>), KvLayerCache<Self>> {
        Err(cache)
    }

    /// Attention of the step's queries (`[num_tokens, num_heads, head_dim]`) over the cached keys
    /// and values of their sequences; returns `[num_tokens, num_heads, head_dim]`.
    fn paged_attention(
        query: Tensor<Self, 3>,
        cache: &KvLayerCache<Self>,
        metadata: &AttentionMetadata<Self>,
        params: &AttentionParams,
    ) -> Tensor<Self, 3> {
        reference::paged_attention(query, cache, metadata, params)
    }

    /// Whether [`AttentionMetadata`] must carry the padded groups (and masks) the reference
    /// attention reads; a backend whose kernel covers `params` reads the flat metadata only.
    fn needs_padded_groups(_params: &AttentionParams) -> bool {
        true
    }

    /// Copies whole blocks `src[i] -> dst[i]` (copy-on-write of shared blocks).
    fn copy_blocks(
        cache: KvLayerCache<Self>,
        src: Tensor<Self, 1, Int>,
        dst: Tensor<Self, 1, Int>,
    ) -> KvLayerCache<Self> {
        reference::copy_blocks(cache, src, dst)
    }
}

// wgpu: the reference implementations (WGSL kernels come with their issue). CUDA's impl, with
// custom kernels, is in `crate::cuda`.
crate::reference_backends!(PagedAttentionBackend);
