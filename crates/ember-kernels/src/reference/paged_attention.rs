//! Reference paged attention: gather each group's queries into a padded grid and its keys and
//! values through the block tables, then `softmax(mask + softcap(scale * q·kᵀ)) · v`, in the
//! order transformers' eager attention computes it (scores and softmax in f32).
//!
//! Grouped-query attention never repeats K/V: the `G = num_heads / num_kv_heads` query heads of a
//! KV head are folded into the query-length axis, `[seqs, kv_heads, G * q_len, head_dim]`.

use burn_tensor::{FloatDType, Tensor, activation::softmax, backend::Backend};

use crate::{AttentionGroup, AttentionMetadata, AttentionParams, KvLayerCache};

/// See the module docs. `query` is `[num_tokens, num_heads, head_dim]`.
pub fn paged_attention<B: Backend>(
    query: Tensor<B, 3>,
    cache: &KvLayerCache<B>,
    metadata: &AttentionMetadata<B>,
    params: &AttentionParams,
) -> Tensor<B, 3> {
    let block_size = metadata.block_size();
    let mut outputs: Vec<Tensor<B, 3>> = metadata
        .groups
        .iter()
        .map(|group| attend_group(query.clone(), cache, group, params, block_size))
        .collect();
    let output = if outputs.len() == 1 {
        outputs.remove(0)
    } else {
        Tensor::cat(outputs, 0)
    };
    match &metadata.merge_index {
        Some(index) => output.select(0, index.clone()),
        None => output,
    }
}

fn attend_group<B: Backend>(
    query: Tensor<B, 3>,
    cache: &KvLayerCache<B>,
    group: &AttentionGroup<B>,
    params: &AttentionParams,
    block_size: usize,
) -> Tensor<B, 3> {
    let [_, num_heads, head_dim] = query.dims();
    let kv_heads = params.num_kv_heads;
    let per_kv = num_heads / kv_heads;
    let seqs = group.num_seqs;
    let q_len = group.max_query_len;
    let keys = group.blocks_per_seq * block_size;
    let dtype = query.dtype();

    // [seqs, kv_heads, per_kv * q_len, head_dim]
    let q = query
        .select(0, group.pad_index.clone())
        .reshape([seqs, q_len, kv_heads, per_kv, head_dim])
        .permute([0, 2, 3, 1, 4])
        .reshape([seqs, kv_heads, per_kv * q_len, head_dim]);
    // [seqs, kv_heads, keys, head_dim], made contiguous by the round trip through 3 dims, so the
    // matmuls see canonical layouts (cubecl's autotuner mis-handles highly permuted operands).
    let gather = |cache: &Tensor<B, 4>| {
        cache
            .clone()
            .select(0, group.block_tables.clone())
            .reshape([seqs, keys, kv_heads, head_dim])
            .swap_dims(1, 2)
            .reshape([seqs * kv_heads, keys, head_dim])
            .reshape([seqs, kv_heads, keys, head_dim])
    };
    let k = gather(&cache.key).cast(dtype); // [seqs, kv_heads, keys, head_dim]
    let v = gather(&cache.value).cast(dtype);

    let mut scores = q.matmul(k.swap_dims(2, 3)).cast(FloatDType::F32) * params.scale;
    if let Some(cap) = params.logit_softcap {
        scores = (scores / cap).tanh() * cap;
    }
    let scores = scores.reshape([seqs, kv_heads, per_kv, q_len, keys])
        + group.mask(params.sliding_window).clone();
    let probs = softmax(scores, 4)
        .reshape([seqs, kv_heads, per_kv * q_len, keys])
        .cast(dtype);

    probs
        .matmul(v)
        .reshape([seqs, kv_heads, per_kv, q_len, head_dim])
        .permute([0, 3, 1, 2, 4])
        .reshape([seqs * q_len, num_heads, head_dim])
        .select(0, group.unpad_index.clone())
}
