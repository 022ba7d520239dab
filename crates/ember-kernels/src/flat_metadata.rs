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
        let block_size = layout.block_size;
        let max_blocks_per_seq = layout.seqs.iter().map(|s| s.context_len.div_ceil(block_size)).max().unwrap_or(1).max(1);
        let max_context_len = layout.seqs.iter().map(|s| s.context_len).max().unwrap_or(0);
        let num_seqs = layout.seqs.len();
        let mut tables = vec![0i32; num_seqs * max_blocks_per_seq];
        let mut token_seq = vec![0i32; layout.num_tokens()];
        let mut token_pos = vec![0i32; layout.num_tokens()];
        for (s, seq) in layout.seqs.iter().enumerate() {
            let used = seq.context_len.div_ceil(block_size);
            for (b, &block) in seq.block_table[..used].iter().enumerate() {
                tables[s * max_blocks_per_seq + b] = block as i32;
            }
            let first = seq.context_len - seq.query_len;
            for i in 0..seq.query_len {
                token_seq[seq.query_start + i] = s as i32;
                token_pos[seq.query_start + i] = (first + i) as i32;
            }
        }
        let ints = |v: Vec<i32>| {
            let len = v.len();
            Tensor::<B, 1, Int>::from_data(TensorData::new(v, [len]), (device, DType::I32))
        };
        let slots = layout.slot_mapping().into_iter().map(|s| s as i32).collect();
        Self {
            block_tables: Tensor::from_data(TensorData::new(tables, [num_seqs, max_blocks_per_seq]), (device, DType::I32)),
            token_seq: ints(token_seq),
            token_pos: ints(token_pos),
            slot_mapping: ints(slots),
            max_blocks_per_seq,
            max_context_len,
        }
    }
}
