//! Identifier types shared by every layer: token ids, KV-cache block ids and request ids.
//!
//! `BlockId` is a newtype so that a block index can never be confused with a token id or a
//! count; `TokenId` and `RequestId` are aliases because they cross into tokenizer and HTTP code
//! that speaks plain `u32` / `String`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A vocabulary index.
pub type TokenId = u32;

/// A request's id, unique among the requests the scheduler currently knows.
pub type RequestId = String;

/// The index of one KV-cache block in the pool: `0..num_blocks`.
///
/// A block holds the keys and values of `block_size` consecutive token positions of one sequence
/// (for every layer); the model runner addresses device memory with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockId(pub u32);

impl BlockId {
    /// The block's index as a `usize`, for indexing per-block arrays.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "block#{}", self.0)
    }
}
