//! Writing into the paged cache: `reshape_and_cache` (new tokens into their slots) and
//! `copy_blocks` (copy-on-write of shared blocks). Both view a layer tensor
//! `[num_blocks, block_size, kv_heads, head_dim]` as rows and scatter with "assign" semantics.

use burn_tensor::{IndexingUpdateOp, Int, Tensor, backend::Backend};

use crate::KvLayerCache;

/// Writes `key`/`value` (`[num_tokens, kv_heads, head_dim]`) into the cache slots
/// `slot_mapping` (`[num_tokens]`, slot = `block * block_size + offset`).
pub fn reshape_and_cache<B: Backend>(
    cache: KvLayerCache<B>,
    key: Tensor<B, 3>,
    value: Tensor<B, 3>,
    slot_mapping: Tensor<B, 1, Int>,
) -> KvLayerCache<B> {
    let [num_tokens] = slot_mapping.dims();
    let index = slot_mapping.reshape([num_tokens, 1]);
    KvLayerCache {
        key: scatter_rows(cache.key, index.clone(), key),
        value: scatter_rows(cache.value, index, value),
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

/// Views `cache` as one row per slot, `[num_blocks * block_size, kv_heads * head_dim]`, and
/// assigns the rows of `values` at `index` (`[num_tokens, 1]`).
fn scatter_rows<B: Backend>(
    cache: Tensor<B, 4>,
    index: Tensor<B, 2, Int>,
    values: Tensor<B, 3>,
) -> Tensor<B, 4> {
    let [num_blocks, block_size, kv_heads, head_dim] = cache.dims();
    let [num_tokens, _, _] = values.dims();
    let values = values.cast(cache.dtype()).reshape([num_tokens, kv_heads * head_dim]);
    cache
        .reshape([num_blocks * block_size, kv_heads * head_dim])
        .scatter_nd(index, values, IndexingUpdateOp::Assign)
        .reshape([num_blocks, block_size, kv_heads, head_dim])
}
