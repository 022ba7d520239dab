//! Ember's attention and KV-cache operations.
//!
//! This crate owns the *paged* KV cache layout and every op that touches it:
//!
//! - [`KvCache`]: one K and one V tensor per layer, `[num_blocks, block_size, num_kv_heads, head_dim]`;
//! - [`AttentionMetadata`]: the per-step batch description (slot mapping, block tables, masks),
//!   built once per step on the host from plain [`BatchLayout`] data and shared by every layer;
//! - [`PagedAttentionBackend`]: the backend-extension trait (burn's pattern for custom ops) with
//!   `reshape_and_cache`, `paged_attention` and `copy_blocks`. Its default methods are the
//!   reference implementations in plain burn ops ([`reference`]), which run on every backend.
//!   Backends with custom kernels (CUDA `kernels/*.cu`, WGSL `shaders/`) override the methods
//!   and must match the reference in parity tests;
//! - [`LinearBackend`] (the linear layers' product) and [`LayerOpsBackend`] (RMSNorm, residual
//!   add + RMSNorm, `act(gate) * up`, q/k/v split + rotary embedding): the same pattern for the
//!   rest of a decoder layer, and [`SamplingBackend`] (picking the sampled tokens), so a
//!   backend can replace every op of a step with its own kernels;
//! - [`StepGraphBackend`]: capturing a decode step's forward pass into one device graph (CUDA
//!   graphs), replayed with new inputs; [`DeviceProfilerBackend`]: a profiler's recording range.
//!
//! Nothing here knows about requests or scheduling: the engine turns scheduler output into a
//! [`BatchLayout`].

/// Implements a backend-extension trait with its default (reference) bodies for the backends
/// without custom kernels: ndarray, wgpu (feature `wgpu`) and burn's fusion wrapper (feature
/// `fusion`, over a backend that implements the trait).
macro_rules! reference_backends {
    ($trait:ident) => {
        impl<E, I, Q> $trait for burn_ndarray::NdArray<E, I, Q>
        where
            E: burn_ndarray::FloatNdArrayElement,
            I: burn_ndarray::IntNdArrayElement,
            Q: burn_ndarray::QuantElement,
            burn_ndarray::NdArrayTensor: From<burn_ndarray::SharedArray<E>>,
            burn_ndarray::NdArrayTensor: From<burn_ndarray::SharedArray<I>>,
        {
        }

        #[cfg(feature = "wgpu")]
        impl<F, I, BT> $trait for burn_cubecl::CubeBackend<burn_wgpu::WgpuRuntime, F, I, BT>
        where
            F: burn_cubecl::FloatElement,
            I: burn_cubecl::IntElement,
            BT: burn_cubecl::BoolElement,
        {
        }

        #[cfg(feature = "fusion")]
        impl<B> $trait for burn_fusion::Fusion<B> where B: burn_fusion::FusionBackend + $trait {}
    };
}
pub(crate) use reference_backends;

mod backend;
mod deferred_norm;
mod device_profiler;
#[cfg(feature = "cuda")]
pub mod cuda;
mod flat_metadata;
mod kv_cache;
mod layer_ops;
mod linear;
mod layout;
mod metadata;
mod params;
pub mod reference;
mod sampling;
mod step_graph;
mod weight_upload;

pub use backend::PagedAttentionBackend;
pub use deferred_norm::DeferredNorm;
pub use device_profiler::DeviceProfilerBackend;
pub use kv_cache::{KvCache, KvCacheSpec, KvLayerCache};
pub use layer_ops::{Activation, LayerOpsBackend, NormStyle, QkvShape, RmsNormWeights, StepRope};
pub use linear::{Fp8Weight, LinearBackend, gemv_max_rows};
pub use layout::{BatchLayout, LayoutError, SeqLayout};
pub use flat_metadata::{FlatHostMetadata, FlatMetadata};
pub use metadata::{AttentionGroup, AttentionMetadata};
pub use params::AttentionParams;
pub use sampling::{PendingIds, SamplingBackend, read_ids};
pub use step_graph::{StepGraph, StepGraphBackend};
pub use weight_upload::WeightUploadBackend;
