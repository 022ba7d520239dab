//! [`FlatMetadata`]: the step's batch described the way custom attention kernels read it, with
//! no padding: a `[num_seqs, max_blocks_per_seq]` block table, and per token its sequence and
//! absolute position (vLLM's `block_tables`, `seq_lens` / `query_start_loc` folded into per-token
//! indices). Built once per step, shared by every layer; a few small uploads. Always i32,
//! whatever the backend's default int type, because that is what the kernels read.

use burn_tensor::{DType, Int, Tensor, TensorData, backend::Backend};

use crate::layout::BatchLayout;

/// Unpadded attention inputs for custom kernels.
#[derive(Debug, Clone)]
pub struct FlatMetadata<B: Backend> {
    /// `[num_seqs, max_blocks_per_seq]`: each sequence's blocks, padded with 0 (never read).
    pub block_tables: Tensor<B, 2, Int>,
    /// `[num_tokens]`: index of each token's sequence (row of `block_tables`).
    pub token_seq: Tensor<B, 1, Int>,
    /// `[num_tokens]`: absolute position of each token; it attends keys `0..=position`.
    pub token_pos: Tensor<B, 1, Int>,
    /// `[num_tokens]`: cache slot (`block * block_size + offset`) of each new token.
    pub slot_mapping: Tensor<B, 1, Int>,
    /// Columns of `block_tables`.
    pub max_blocks_per_seq: usize,
    /// Longest context (keys) of any sequence in the step.
    pub max_context_len: usize,
}

impl<B: Backend> FlatMetadata<B> {
    /// Builds the tensors from the host-side layout.
    pub fn new(layout: &BatchLayout, device: &B::Device) -> Self {
        Self::with_table_width(layout, device, 1)
    }

    /// As [`Self::new`], with `max_blocks_per_seq` block-table columns (at least
    /// what `layout` needs): a fixed width keeps a captured step graph's shapes.
    pub fn with_table_width(layout: &BatchLayout, device: &B::Device, max_blocks_per_seq: usize) -> Self {
        Self::upload(FlatHostMetadata::new(layout, max_blocks_per_seq), device)
    }

    /// Uploads host-side metadata.
    pub fn upload(host: FlatHostMetadata, device: &B::Device) -> Self {
        let ints = |v: Vec<i32>| {
            let len = v.len();
            Tensor::<B, 1, Int>::from_data(TensorData::new(v, [len]), (device, DType::I32))
        };
        let num_seqs = host.block_tables.len() / host.max_blocks_per_seq;
        Self {
            // Uploaded flat, then viewed as 2-d: dense rows (cubecl may pitch 2-d allocations),
            // so the table is one buffer a step graph can rewrite whole.
            block_tables: ints(host.block_tables).reshape([num_seqs, host.max_blocks_per_seq]),
            token_seq: ints(host.token_seq),
            token_pos: ints(host.token_pos),
            slot_mapping: ints(host.slot_mapping),
            max_blocks_per_seq: host.max_blocks_per_seq,
            max_context_len: host.max_context_len,
        }
    }
}

/// The host-side values of a [`FlatMetadata`] (what a step-graph replay copies in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlatHostMetadata {
    /// `[num_seqs * max_blocks_per_seq]`, row-major.
    pub block_tables: Vec<i32>,
    /// `[num_tokens]`.
    pub token_seq: Vec<i32>,
    /// `[num_tokens]`.
    pub token_pos: Vec<i32>,
    /// `[num_tokens]`.
    pub slot_mapping: Vec<i32>,
    /// Columns of `block_tables`.
    pub max_blocks_per_seq: usize,
    /// Longest context of any sequence.
    pub max_context_len: usize,
}

impl FlatHostMetadata {
    /// The values for `layout`, with at least `max_blocks_per_seq` block-table columns.
    pub fn new(layout: &BatchLayout, max_blocks_per_seq: usize) -> Self {
        let block_size = layout.block_size;
        let needed = layout.seqs.iter().map(|s| s.context_len.div_ceil(block_size)).max().unwrap_or(1).max(1);
        let max_blocks_per_seq = max_blocks_per_seq.max(needed);
        let max_context_len = layout.seqs.iter().map(|s| s.context_len).max().unwrap_or(0);
        let mut block_tables = vec![0i32; layout.seqs.len() * max_blocks_per_seq];
        let mut token_seq = vec![0i32; layout.num_tokens()];
        let mut token_pos = vec![0i32; layout.num_tokens()];
        for (s, seq) in layout.seqs.iter().enumerate() {
            let used = seq.context_len.div_ceil(block_size);
            for (b, &block) in seq.block_table[..used].iter().enumerate() {
                block_tables[s * max_blocks_per_seq + b] = block as i32;
            }
            let first = seq.context_len - seq.query_len;
            for i in 0..seq.query_len {
                token_seq[seq.query_start + i] = s as i32;
                token_pos[seq.query_start + i] = (first + i) as i32;
            }
        }
        let slot_mapping = layout.slot_mapping().into_iter().map(|s| s as i32).collect();
        Self { block_tables, token_seq, token_pos, slot_mapping, max_blocks_per_seq, max_context_len }
    }
}
