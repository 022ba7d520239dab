//! Writing into the paged cache: `reshape_and_cache` (new tokens into their slots) and
//! `copy_blocks` (copy-on-write of shared blocks). Both scatter with "assign" semantics into the
//! 4-d layer tensor `[num_blocks, block_size, kv_heads, head_dim]` itself: reshaping the cache
//! would copy all of it on burn-ndarray, whose reshape always allocates.

use burn_tensor::{IndexingUpdateOp, Int, Tensor, backend::Backend};

use crate::KvLayerCache;

/// Writes `key`/`value` (`[num_tokens, kv_heads, head_dim]`) at `slots` (`[num_tokens, 2]`:
/// block and offset of each token).
pub fn reshape_and_cache<B: Backend>(
    cache: KvLayerCache<B>,
    key: Tensor<B, 3>,
    value: Tensor<B, 3>,
    slots: Tensor<B, 2, Int>,
) -> KvLayerCache<B> {
    let dtype = cache.key.dtype();
    KvLayerCache {
        key: cache.key.scatter_nd(slots.clone(), key.cast(dtype), IndexingUpdateOp::Assign),
        value: cache.value.scatter_nd(slots, value.cast(dtype), IndexingUpdateOp::Assign),
    }
}

/// Copies block `src[i]` onto block `dst[i]` in both tensors of one layer.
pub fn copy_blocks<B: Backend>(
    cache: KvLayerCache<B>,
    src: Tensor<B, 1, Int>,
    dst: Tensor<B, 1, Int>,
) -> KvLayerCache<B> {
    let [n] = dst.dims();
    let dst = dst.reshape([n, 1]);
    let key_rows = cache.key.clone().select(0, src.clone());
    let value_rows = cache.value.clone().select(0, src);
    KvLayerCache {
        key: cache.key.scatter_nd(dst.clone(), key_rows, IndexingUpdateOp::Assign),
        value: cache.value.scatter_nd(dst, value_rows, IndexingUpdateOp::Assign),
    }
}
