//! Device-side attention metadata for one step, built once from a [`BatchLayout`] and shared
//! by every layer.
//!
//! The reference attention works on *padded groups*: sequences are split into a decode group
//! (`query_len == 1`) and a prefill group (chunked prefills, prefix-cache tails), so that a long
//! prefill does not pad hundreds of decode rows. Within a group, queries are gathered into a
//! `[num_seqs, max_query_len]` grid and keys into `[num_seqs, blocks_per_seq * block_size]`
//! through the block tables; an additive mask (0 or -inf) encodes causality, context length
//! and sliding windows. Group outputs are concatenated and `merge_index` restores token order.

use burn_tensor::{Int, Tensor, TensorData, backend::Backend};

use crate::flat_metadata::FlatMetadata;
use crate::layout::{BatchLayout, SeqLayout};

/// One padded group of sequences (see module docs).
#[derive(Debug, Clone)]
pub struct AttentionGroup<B: Backend> {
    /// Sequences in the group.
    pub num_seqs: usize,
    /// Longest query in the group: the padded query length.
    pub max_query_len: usize,
    /// Blocks gathered per sequence: the padded key length is `blocks_per_seq * block_size`.
    pub blocks_per_seq: usize,
    /// `[num_seqs * max_query_len]`: flat token index feeding each padded query slot (0 for padding).
    pub pad_index: Tensor<B, 1, Int>,
    /// `[group tokens]`: padded slot of each of the group's tokens, in flat token order.
    pub unpad_index: Tensor<B, 1, Int>,
    /// `[num_seqs * blocks_per_seq]`: block tables, padded with block 0 (masked out).
    pub block_tables: Tensor<B, 1, Int>,
    /// Additive masks `[num_seqs, 1, 1, max_query_len, keys]`, one per sliding window in use.
    masks: Vec<(Option<usize>, Tensor<B, 5>)>,
    /// Flat token indices of the group's tokens, in order.
    token_indices: Vec<usize>,
}

impl<B: Backend> AttentionGroup<B> {
    /// The additive mask for layers with this sliding window (`None` = full causal).
    ///
    /// # Panics
    /// If the metadata was built without that window: a programming error in the model runner.
    pub fn mask(&self, window: Option<usize>) -> &Tensor<B, 5> {
        self.masks
            .iter()
            .find(|(w, _)| *w == window)
            .map(|(_, m)| m)
            .unwrap_or_else(|| panic!("attention metadata has no mask for window {window:?}"))
    }

    /// Number of tokens in the group.
    pub fn num_tokens(&self) -> usize {
        self.token_indices.len()
    }
}

/// Everything an attention layer needs to know about the step's batch.
#[derive(Debug, Clone)]
pub struct AttentionMetadata<B: Backend> {
    /// The host-side layout this was built from (custom kernels build their own inputs from it).
    pub layout: BatchLayout,
    /// `[num_tokens]`: cache slot (`block * block_size + offset`) of each new token.
    pub slot_mapping: Tensor<B, 1, Int>,
    /// `[num_tokens, 2]`: the same slots as `(block, offset)` pairs (indexes the 4-d cache
    /// directly, without reshaping it).
    pub slot_block_offsets: Tensor<B, 2, Int>,
    /// Padded groups (decode first, then prefill), each non-empty; empty when built without
    /// them ([`AttentionMetadata::with_padded_groups`] `false`: a custom kernel does the attention).
    pub groups: Vec<AttentionGroup<B>>,
    /// The same batch unpadded, for custom kernels.
    pub flat: FlatMetadata<B>,
    /// Reorders the concatenated group outputs to flat token order; `None` when already ordered.
    pub merge_index: Option<Tensor<B, 1, Int>>,
}

impl<B: Backend> AttentionMetadata<B> {
    /// Builds the metadata, with masks for each sliding window the model uses (`None` = full).
    pub fn new(layout: &BatchLayout, windows: &[Option<usize>], device: &B::Device) -> Self {
        Self::with_padded_groups(layout, windows, device, true)
    }

    /// Builds the metadata; the padded groups (and their masks, the largest uploads) only when
    /// `padded` (the reference attention needs them, custom kernels read [`FlatMetadata`]).
    pub fn with_padded_groups(layout: &BatchLayout, windows: &[Option<usize>], device: &B::Device, padded: bool) -> Self {
        let (decode, prefill): (Vec<&SeqLayout>, Vec<&SeqLayout>) =
            layout.seqs.iter().partition(|s| s.query_len == 1);
        let groups: Vec<AttentionGroup<B>> = [decode, prefill]
            .into_iter()
            .filter(|g| padded && !g.is_empty())
            .map(|seqs| build_group(&seqs, layout.block_size, windows, device))
            .collect();

        let order: Vec<usize> = groups.iter().flat_map(|g| g.token_indices.iter().copied()).collect();
        let in_order = order.iter().enumerate().all(|(i, &t)| i == t);
        let merge_index = (!in_order).then(|| {
            let mut merge = vec![0i64; order.len()];
            for (concat_pos, &token) in order.iter().enumerate() {
                merge[token] = concat_pos as i64;
            }
            int_tensor(merge, device)
        });

        Self {
            layout: layout.clone(),
            slot_mapping: int_tensor(layout.slot_mapping(), device),
            slot_block_offsets: int_tensor(layout.slot_block_offsets(), device).reshape([layout.num_tokens(), 2]),
            groups,
            merge_index,
            flat: FlatMetadata::new(layout, device),
        }
    }

    /// Tokens per KV block.
    pub fn block_size(&self) -> usize {
        self.layout.block_size
    }

    /// Number of tokens in the step.
    pub fn num_tokens(&self) -> usize {
        self.layout.num_tokens()
    }
}

fn build_group<B: Backend>(
    seqs: &[&SeqLayout],
    block_size: usize,
    windows: &[Option<usize>],
    device: &B::Device,
) -> AttentionGroup<B> {
    let num_seqs = seqs.len();
    let max_query_len = seqs.iter().map(|s| s.query_len).max().unwrap_or(1);
    let blocks_per_seq = seqs
        .iter()
        .map(|s| s.context_len.div_ceil(block_size))
        .max()
        .unwrap_or(1);
    let num_keys = blocks_per_seq * block_size;

    let mut pad_index = vec![0i64; num_seqs * max_query_len];
    let mut unpad_index = Vec::new();
    let mut token_indices = Vec::new();
    let mut block_tables = vec![0i64; num_seqs * blocks_per_seq];
    for (s, seq) in seqs.iter().enumerate() {
        for i in 0..seq.query_len {
            pad_index[s * max_query_len + i] = (seq.query_start + i) as i64;
            unpad_index.push((s * max_query_len + i) as i64);
            token_indices.push(seq.query_start + i);
        }
        let used = seq.context_len.div_ceil(block_size);
        for (b, &block) in seq.block_table[..used].iter().enumerate() {
            block_tables[s * blocks_per_seq + b] = block as i64;
        }
    }

    let mut distinct: Vec<Option<usize>> = Vec::new();
    for w in windows.iter().copied().chain([None]) {
        if !distinct.contains(&w) {
            distinct.push(w);
        }
    }
    let masks = distinct
        .into_iter()
        .map(|w| {
            let mask = mask_values(seqs, max_query_len, num_keys, w);
            let data = TensorData::new(mask, [num_seqs, 1, 1, max_query_len, num_keys]);
            (w, Tensor::<B, 5>::from_data(data, (device, burn_tensor::DType::F32)))
        })
        .collect();

    AttentionGroup {
        num_seqs,
        max_query_len,
        blocks_per_seq,
        pad_index: int_tensor(pad_index, device),
        unpad_index: int_tensor(unpad_index, device),
        block_tables: int_tensor(block_tables, device),
        masks,
        token_indices,
    }
}

/// Additive mask: 0 where query `i` of sequence `s` may attend key position `j`, -inf elsewhere.
/// Padding rows see key 0 only, so that their softmax stays finite (their output is dropped).
fn mask_values(
    seqs: &[&SeqLayout],
    max_query_len: usize,
    num_keys: usize,
    window: Option<usize>,
) -> Vec<f32> {
    let mut mask = vec![f32::NEG_INFINITY; seqs.len() * max_query_len * num_keys];
    for (s, seq) in seqs.iter().enumerate() {
        for i in 0..max_query_len {
            let row = &mut mask[(s * max_query_len + i) * num_keys..][..num_keys];
            if i >= seq.query_len {
                row[0] = 0.0;
                continue;
            }
            let pos = seq.first_position() + i;
            let lowest = window.map_or(0, |w| (pos + 1).saturating_sub(w));
            row[lowest..=pos].fill(0.0);
        }
    }
    mask
}

fn int_tensor<B: Backend>(values: Vec<i64>, device: &B::Device) -> Tensor<B, 1, Int> {
    let len = values.len();
    Tensor::from_data(TensorData::new(values, [len]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(first: usize, query_len: usize) -> SeqLayout {
        SeqLayout { query_start: 0, query_len, context_len: first + query_len, block_table: vec![0; 4] }
    }

    #[test]
    fn mask_is_causal_and_windowed() {
        let s = seq(2, 2); // positions 2 and 3
        let m = mask_values(&[&s], 3, 8, None);
        let allowed = |row: usize| -> Vec<usize> {
            (0..8).filter(|&j| m[row * 8 + j] == 0.0).collect()
        };
        assert_eq!(allowed(0), vec![0, 1, 2]);
        assert_eq!(allowed(1), vec![0, 1, 2, 3]);
        assert_eq!(allowed(2), vec![0]); // padding row
        let m = mask_values(&[&s], 2, 8, Some(2));
        let allowed: Vec<usize> = (0..8).filter(|&j| m[8 + j] == 0.0).collect();
        assert_eq!(allowed, vec![2, 3]); // position 3 with window 2 sees 2..=3
    }
}
