//! Host-side layout of one step's batch: which tokens belong to which sequence, where each
//! sequence's keys live (its block table) and where the new tokens' K/V are written.
//!
//! Invariants checked by [`BatchLayout::validate`]:
//! - sequences cover the flat token array contiguously, in order (`query_start` is the running
//!   sum of `query_len`);
//! - `1 <= query_len <= context_len`;
//! - each block table covers `context_len` tokens;
//! - `slot_mapping[t]` is the slot (`block_id * block_size + offset`) of token `t`, i.e. of
//!   position `context_len - query_len + i` of its sequence.

use std::fmt;

/// One sequence of the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeqLayout {
    /// Index of the sequence's first token in the flat token array.
    pub query_start: usize,
    /// Number of tokens of this sequence computed this step.
    pub query_len: usize,
    /// Tokens in the KV cache once this step's tokens are written (`num_computed + query_len`).
    pub context_len: usize,
    /// Physical block ids holding positions `0..context_len`, in order.
    pub block_table: Vec<u32>,
}

impl SeqLayout {
    /// Position of the sequence's first query token.
    pub fn first_position(&self) -> usize {
        self.context_len - self.query_len
    }
}

/// The whole step: sequences plus the slot of every new token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLayout {
    /// Tokens per KV block.
    pub block_size: usize,
    /// Sequences in batch order.
    pub seqs: Vec<SeqLayout>,
}

/// A layout that breaks one of the invariants above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayoutError(pub String);

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid batch layout: {}", self.0)
    }
}

impl std::error::Error for LayoutError {}

impl BatchLayout {
    /// Builds a layout from `(num_computed_tokens, query_len, block_table)` per sequence.
    pub fn from_sequences(
        block_size: usize,
        seqs: impl IntoIterator<Item = (usize, usize, Vec<u32>)>,
    ) -> Self {
        let mut query_start = 0;
        let seqs = seqs
            .into_iter()
            .map(|(num_computed, query_len, block_table)| {
                let seq = SeqLayout {
                    query_start,
                    query_len,
                    context_len: num_computed + query_len,
                    block_table,
                };
                query_start += query_len;
                seq
            })
            .collect();
        Self { block_size, seqs }
    }

    /// Total number of tokens in the step.
    pub fn num_tokens(&self) -> usize {
        self.seqs.iter().map(|s| s.query_len).sum()
    }

    /// Slot of every new token, in flat token order.
    pub fn slot_mapping(&self) -> Vec<i64> {
        let bs = self.block_size;
        let mut slots = Vec::with_capacity(self.num_tokens());
        for seq in &self.seqs {
            for pos in seq.first_position()..seq.context_len {
                let block = seq.block_table[pos / bs] as usize;
                slots.push((block * bs + pos % bs) as i64);
            }
        }
        slots
    }

    /// `(block, offset)` of every new token, flattened (`[num_tokens * 2]`), in flat token order.
    pub fn slot_block_offsets(&self) -> Vec<i64> {
        self.slot_mapping()
            .into_iter()
            .flat_map(|slot| [slot / self.block_size as i64, slot % self.block_size as i64])
            .collect()
    }

    /// Position of every new token, in flat token order.
    pub fn positions(&self) -> Vec<i64> {
        self.seqs
            .iter()
            .flat_map(|s| (s.first_position()..s.context_len).map(|p| p as i64))
            .collect()
    }

    /// Checks the invariants listed in the module docs.
    pub fn validate(&self, num_blocks: usize) -> Result<(), LayoutError> {
        if self.block_size == 0 {
            return Err(LayoutError("block_size is 0".into()));
        }
        let mut expected_start = 0;
        for (i, s) in self.seqs.iter().enumerate() {
            if s.query_start != expected_start {
                return Err(LayoutError(format!(
                    "sequence {i} starts at token {} but {expected_start} tokens precede it",
                    s.query_start
                )));
            }
            if s.query_len == 0 || s.query_len > s.context_len {
                return Err(LayoutError(format!(
                    "sequence {i} has query_len {} and context_len {}",
                    s.query_len, s.context_len
                )));
            }
            let needed = s.context_len.div_ceil(self.block_size);
            if s.block_table.len() < needed {
                return Err(LayoutError(format!(
                    "sequence {i} needs {needed} blocks for {} tokens but its table has {}",
                    s.context_len,
                    s.block_table.len()
                )));
            }
            if let Some(b) = s.block_table.iter().find(|&&b| b as usize >= num_blocks) {
                return Err(LayoutError(format!(
                    "sequence {i} references block {b} but the cache has {num_blocks} blocks"
                )));
            }
            expected_start += s.query_len;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_and_positions_follow_block_tables() {
        // seq 0: 3 computed + 2 new, blocks [5, 2]; seq 1: decode at position 4, blocks [1, 7].
        let layout = BatchLayout::from_sequences(4, [(3, 2, vec![5, 2]), (4, 1, vec![1, 7])]);
        assert_eq!(layout.num_tokens(), 3);
        assert_eq!(layout.positions(), vec![3, 4, 4]);
        // pos 3 -> block 5 offset 3 = 23; pos 4 -> block 2 offset 0 = 8; pos 4 -> block 7 = 28.
        assert_eq!(layout.slot_mapping(), vec![23, 8, 28]);
        assert!(layout.validate(8).is_ok());
    }

    #[test]
    fn validate_rejects_short_tables_and_bad_blocks() {
        let layout = BatchLayout::from_sequences(4, [(3, 2, vec![5])]);
        assert!(layout.validate(8).unwrap_err().0.contains("needs 2 blocks"));
        let layout = BatchLayout::from_sequences(4, [(0, 2, vec![9])]);
        assert!(layout.validate(8).unwrap_err().0.contains("block 9"));
    }
}
