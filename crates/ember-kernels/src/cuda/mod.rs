//! The CUDA backend's custom kernels (`kernels/*.cu`): `reshape_and_cache`, the paged
//! attention (decode and prefill, partitioned for long contexts), the linear layers' GEMV and
//! GEMM, the fused per-layer ops ([`layer_ops`]) and the token pick of the sampler
//! ([`sampling`]), launched through cubecl on
//! the stream burn orders its work on ([`raw_kernel`]); and CUDA graphs of a decode step's
//! forward pass built from those launches ([`step_graph`]). Shapes or dtypes a kernel does not
//! cover fall back to the reference implementation, so results never depend on coverage.

mod ablation;
mod attention;
mod attention_kernel;
mod deferred_norm;
mod device_profiler;
mod fp8;
mod gemm_sm90;
mod gemm_sm90_shape;
mod graph_replay;
mod layer_ops;
mod ops;
mod qkv_rope;
mod raw_kernel;
mod sampling;
mod step_graph;
mod weight_upload;

use burn_cubecl::{BoolElement, CubeBackend, FloatElement, IntElement};
use burn_tensor::{Int, Tensor, TensorPrimitive};
use cubecl_cuda::CudaRuntime;

pub use fp8::fp8_linear_launches;
pub use gemm_sm90::{gemm_sm90_available, gemm_sm90_launches, set_gemm_split_k};
pub use layer_ops::layer_op_fallbacks;
pub use attention::{LAST_FALLBACK, PARTITION_SIZE, attention_supported};
pub use attention_kernel::{AttentionKernel, attention_kernel, set_attention_kernel};
pub use ops::GEMV_MAX_ROWS;
pub use sampling::set_sample_split_max_rows;
pub use step_graph::{step_graph_captures, step_graph_replays};

use std::sync::atomic::{AtomicUsize, Ordering};

static CACHE_FALLBACKS: AtomicUsize = AtomicUsize::new(0);
static ATTENTION_FALLBACKS: AtomicUsize = AtomicUsize::new(0);
static LINEAR_FALLBACKS: AtomicUsize = AtomicUsize::new(0);

/// How many linear-layer products ran on burn's matmul because the GEMV/GEMM kernels did not
/// take their inputs (not counting `EMBER_CUDA_GEMM=burn`).
pub fn linear_fallbacks() -> usize {
    LINEAR_FALLBACKS.load(Ordering::Relaxed)
}

/// How many `(reshape_and_cache, paged_attention)` calls fell back to the reference
/// implementation since start (a kernel did not cover their shapes or dtypes). Parity tests
/// assert both stay 0, so that they test the kernels.
pub fn fallbacks() -> (usize, usize) {
    (CACHE_FALLBACKS.load(Ordering::Relaxed), ATTENTION_FALLBACKS.load(Ordering::Relaxed))
}

use crate::{AttentionMetadata, AttentionParams, KvLayerCache, LinearBackend, PagedAttentionBackend, QkvShape, RmsNormWeights, StepRope, reference};

impl<F, I, BT> PagedAttentionBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn reshape_and_cache(
        cache: KvLayerCache<Self>,
        key: Tensor<Self, 3>,
        value: Tensor<Self, 3>,
        metadata: &AttentionMetadata<Self>,
    ) -> KvLayerCache<Self> {
        let key_cache = cache.key.into_primitive().tensor();
        let value_cache = cache.value.into_primitive().tensor();
        let k = key.clone().into_primitive().tensor();
        let v = value.clone().into_primitive().tensor();
        let slots = metadata.flat.slot_mapping.clone().into_primitive();
        let written = ops::reshape_and_cache(&key_cache, &value_cache, &k, &v, &slots).is_some();
        let cache = KvLayerCache {
            key: Tensor::from_primitive(TensorPrimitive::Float(key_cache)),
            value: Tensor::from_primitive(TensorPrimitive::Float(value_cache)),
        };
        if written {
            return cache;
        }
        CACHE_FALLBACKS.fetch_add(1, Ordering::Relaxed);
        reference::reshape_and_cache(cache, key, value, metadata.slot_block_offsets.clone())
    }

    fn split_qkv_rope_and_cache(
        qkv: Tensor<Self, 2>,
        shape: QkvShape,
        qk_norm: Option<(&RmsNormWeights<Self>, &RmsNormWeights<Self>)>,
        rope: &StepRope<Self>,
        cache: KvLayerCache<Self>,
        metadata: &AttentionMetadata<Self>,
    ) -> (Tensor<Self, 3>, KvLayerCache<Self>) {
        if !fusions_enabled() {
            let (q, k, v) = <Self as crate::LayerOpsBackend>::split_qkv_rope(qkv, shape, qk_norm, rope);
            return (q, Self::reshape_and_cache(cache, k, v, metadata));
        }
        let key_cache = cache.key.into_primitive().tensor();
        let value_cache = cache.value.into_primitive().tensor();
        let slots = metadata.flat.slot_mapping.clone().into_primitive();
        let tables = (rope.cos_table.clone().into_primitive().tensor(), rope.sin_table.clone().into_primitive().tensor());
        let positions = rope.positions.clone().into_primitive();
        let rope_parts = (&tables.0, &tables.1, &positions);
        let q = layer_ops::split_qkv_rope_into_cache(&qkv, shape, qk_norm, rope_parts, &key_cache, &value_cache, &slots);
        let cache = KvLayerCache {
            key: Tensor::from_primitive(TensorPrimitive::Float(key_cache)),
            value: Tensor::from_primitive(TensorPrimitive::Float(value_cache)),
        };
        match q {
            Some(q) => (Tensor::from_primitive(TensorPrimitive::Float(q)), cache),
            None => {
                let (q, k, v) = <Self as crate::LayerOpsBackend>::split_qkv_rope(qkv, shape, qk_norm, rope);
                (q, Self::reshape_and_cache(cache, k, v, metadata))
            }
        }
    }

    fn deferred_qkv_rope_and_cache(
        input: &crate::DeferredNorm<Self>,
        weight: &Tensor<Self, 2>,
        bias: Option<&Tensor<Self, 1>>,
        shape: QkvShape,
        rope: &StepRope<Self>,
        cache: KvLayerCache<Self>,
        metadata: &AttentionMetadata<Self>,
    ) -> Result<(Tensor<Self, 3>, KvLayerCache<Self>), KvLayerCache<Self>> {
        if !fusions_enabled() || !qkv_rope::enabled() {
            return Err(cache);
        }
        let (key_cache, value_cache) = (cube(&cache.key), cube(&cache.value));
        let (cos, sin) = (cube(&rope.cos_table), cube(&rope.sin_table));
        let (positions, slots) = (rope.positions.clone().into_primitive(), metadata.flat.slot_mapping.clone().into_primitive());
        let targets = qkv_rope::RopeTargets { cos: &cos, sin: &sin, positions: &positions, slots: &slots, key_cache: &key_cache, value_cache: &value_cache };
        let bias = bias.map(cube);
        match qkv_rope::gemv_normed_rope(&cube(&input.scaled), &cube(&input.partials), input.norm.eps, &cube(weight), bias.as_ref(), shape, &targets) {
            Some(q) => Ok((Tensor::from_primitive(TensorPrimitive::Float(q)), cache)),
            None => Err(cache),
        }
    }

    fn paged_attention(
        query: Tensor<Self, 3>,
        cache: &KvLayerCache<Self>,
        metadata: &AttentionMetadata<Self>,
        params: &AttentionParams,
    ) -> Tensor<Self, 3> {
        let flat = &metadata.flat;
        let shape = attention::AttentionShape {
            block_size: metadata.block_size(),
            max_context_len: flat.max_context_len,
        };
        let out = attention::paged_attention(
            &query.clone().into_primitive().tensor(),
            &cache.key.clone().into_primitive().tensor(),
            &cache.value.clone().into_primitive().tensor(),
            &flat.block_tables.clone().into_primitive(),
            &flat.token_seq.clone().into_primitive(),
            &flat.token_pos.clone().into_primitive(),
            &shape,
            params,
        );
        match out {
            Some(out) => Tensor::from_primitive(TensorPrimitive::Float(out)),
            None => {
                ATTENTION_FALLBACKS.fetch_add(1, Ordering::Relaxed);
                reference::paged_attention(query, cache, metadata, params)
            }
        }
    }

    fn copy_blocks(cache: KvLayerCache<Self>, src: Tensor<Self, 1, Int>, dst: Tensor<Self, 1, Int>) -> KvLayerCache<Self> {
        reference::copy_blocks(cache, src, dst)
    }

    fn needs_padded_groups(params: &AttentionParams) -> bool {
        !attention_supported(params)
    }
}

impl<F, I, BT> LinearBackend for CubeBackend<CudaRuntime, F, I, BT>
where
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
{
    fn linear(x: Tensor<Self, 2>, weight: Tensor<Self, 2>, bias: Option<Tensor<Self, 1>>) -> Tensor<Self, 2> {
        let (xp, wp) = (x.clone().into_primitive().tensor(), weight.clone().into_primitive().tensor());
        let bp = bias.clone().map(|b| b.into_primitive().tensor());
        let y = if x.dims()[0] <= crate::gemv_max_rows() {
            ops::gemv(&xp, &wp, bp.as_ref())
        } else if burn_gemm() {
            None
        } else {
            ops::gemm(&xp, &wp, bp.as_ref())
        };
        match y {
            Some(y) => Tensor::from_primitive(TensorPrimitive::Float(y)),
            None => {
                if !burn_gemm() || x.dims()[0] <= crate::gemv_max_rows() {
                    LINEAR_FALLBACKS.fetch_add(1, Ordering::Relaxed);
                }
                let y = x.matmul(weight.transpose());
                match bias {
                    Some(b) => y + b.unsqueeze::<2>(),
                    None => y,
                }
            }
        }
    }

    fn warm_up_linear(device: &Self::Device, dtype: burn_tensor::DType, fp8: bool) {
        if matches!(dtype, burn_tensor::DType::F16 | burn_tensor::DType::BF16) {
            fp8::warm_up(&cube(&Tensor::<Self, 2>::zeros([128, 128], (device, dtype))), fp8);
        }
    }

    fn quantize_weight_fp8(weight: &Tensor<Self, 2>) -> Option<crate::Fp8Weight<Self>> {
        let (data, scale) = fp8::quantize_rows(&cube(weight))?;
        Some(crate::Fp8Weight { data: Tensor::from_primitive(data), scale: Tensor::from_primitive(TensorPrimitive::Float(scale)) })
    }

    fn linear_fp8(x: &Tensor<Self, 2>, weight: &crate::Fp8Weight<Self>, bias: Option<&Tensor<Self, 1>>) -> Option<Tensor<Self, 2>> {
        // Decode batches the GEMV takes (and the step graphs capture) keep the f16/bf16 weight.
        if x.dims()[0] <= crate::gemv_max_rows() {
            return None;
        }
        let bias = bias.map(|b| cube(b));
        let y = fp8::linear(&cube(x), &weight.data.clone().into_primitive(), &cube(&weight.scale), bias.as_ref())?;
        Some(Tensor::from_primitive(TensorPrimitive::Float(y)))
    }

    fn linear_act_and_mul(
        x: &Tensor<Self, 2>,
        weight: &Tensor<Self, 2>,
        bias: Option<&Tensor<Self, 1>>,
        activation: crate::Activation,
    ) -> Option<Tensor<Self, 2>> {
        let code = activation_code(activation)?;
        if !fusions_enabled() || x.dims()[0] != 1 {
            return None;
        }
        let bias = bias.map(|b| b.clone().into_primitive().tensor());
        let y = ops::gemv_gated(&x.clone().into_primitive().tensor(), &weight.clone().into_primitive().tensor(), bias.as_ref(), code)?;
        Some(Tensor::from_primitive(TensorPrimitive::Float(y)))
    }

    fn linear_residual_norm(
        x: &Tensor<Self, 2>,
        weight: &Tensor<Self, 2>,
        bias: Option<&Tensor<Self, 1>>,
        residual: &Tensor<Self, 2>,
        norm: &crate::RmsNormWeights<Self>,
    ) -> Option<crate::DeferredNorm<Self>> {
        if !fusions_enabled() || !deferred_norm::enabled() || x.dims()[0] != 1 {
            return None;
        }
        let bias = bias.map(|b| cube(b));
        let (sum, scaled, partials) = deferred_norm::gemv_residual_norm(&cube(x), &cube(weight), bias.as_ref(), &cube(residual), &cube(&norm.scale))?;
        Some(crate::DeferredNorm { residual: wrap(sum), scaled: wrap(scaled), partials: wrap(partials), norm: norm.clone() })
    }

    fn linear_deferred_norm(input: &crate::DeferredNorm<Self>, weight: &Tensor<Self, 2>, bias: Option<&Tensor<Self, 1>>) -> Option<Tensor<Self, 2>> {
        let bias = bias.map(|b| cube(b));
        let y = deferred_norm::gemv_normed(&cube(&input.scaled), &cube(&input.partials), input.norm.eps, &cube(weight), bias.as_ref())?;
        Some(wrap(y))
    }

    fn linear_deferred_norm_act_and_mul(
        input: &crate::DeferredNorm<Self>,
        weight: &Tensor<Self, 2>,
        bias: Option<&Tensor<Self, 1>>,
        activation: crate::Activation,
    ) -> Option<Tensor<Self, 2>> {
        let code = activation_code(activation)?;
        let bias = bias.map(|b| cube(b));
        let y = deferred_norm::gemv_gated_normed(&cube(&input.scaled), &cube(&input.partials), input.norm.eps, &cube(weight), bias.as_ref(), code)?;
        Some(wrap(y))
    }
}

/// The gated GEMV kernels' `EMBER_ACT_*` code; `None` for exact GELU (no kernel).
fn activation_code(activation: crate::Activation) -> Option<u32> {
    match activation {
        crate::Activation::Silu => Some(0),
        crate::Activation::GeluTanh => Some(1),
        crate::Activation::Gelu => None,
    }
}

fn cube<B: burn_tensor::backend::Backend<FloatTensorPrimitive = burn_cubecl::tensor::CubeTensor<CudaRuntime>>, const D: usize>(
    t: &Tensor<B, D>,
) -> burn_cubecl::tensor::CubeTensor<CudaRuntime> {
    t.clone().into_primitive().tensor()
}

fn wrap<B: burn_tensor::backend::Backend<FloatTensorPrimitive = burn_cubecl::tensor::CubeTensor<CudaRuntime>>, const D: usize>(
    t: burn_cubecl::tensor::CubeTensor<CudaRuntime>,
) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(t))
}

/// Whether decode steps use the fused kernels (the gate/up GEMV with the activation, the rope
/// kernel writing the KV cache): `EMBER_CUDA_FUSE=0` runs the separate kernels instead, to
/// compare them (read once).
fn fusions_enabled() -> bool {
    static FUSE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FUSE.get_or_init(|| std::env::var("EMBER_CUDA_FUSE").map_or(true, |v| v != "0"))
}

/// `EMBER_CUDA_GEMM=burn` routes batches above the GEMV's rows to burn's matmul instead of
/// Ember's GEMM kernels (to compare them; read once). `EMBER_CUDA_GEMM=mma` keeps Ember's
/// kernels but skips the Hopper one (`kernels/gemm_sm90.cu`) for `kernels/gemm.cu`.
fn burn_gemm() -> bool {
    static BURN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *BURN.get_or_init(|| std::env::var("EMBER_CUDA_GEMM").is_ok_and(|v| v == "burn"))
}
