//! Chained content hashes of full KV-cache blocks, the keys of the prefix cache.
//!
//! The hash of block `i` of a sequence covers the hash of block `i - 1` and the `block_size`
//! token ids of block `i`, so equal hashes mean equal *prefixes*, not just equal blocks. The
//! hash is 128-bit xxh3: with 2^-128 collision odds per pair, a false prefix-cache hit is
//! negligible even over billions of cached blocks, so hits are not re-verified token by token.
//! Only full blocks are ever hashed.

use std::fmt;

use xxhash_rust::xxh3::xxh3_128;

use crate::ids::TokenId;

/// Content hash of a full block and (through chaining) of every block before it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlockHash(pub u128);

impl fmt::Debug for BlockHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockHash({:032x})", self.0)
    }
}

/// Domain tags keep a first block from ever colliding structurally with a chained one.
const TAG_FIRST_BLOCK: u8 = 0;
const TAG_CHAINED_BLOCK: u8 = 1;

/// Hashes one full block given its parent's hash (`None` for the first block of a sequence).
pub fn hash_block_tokens(
    parent: Option<BlockHash>,
    token_ids: impl IntoIterator<Item = TokenId>,
) -> BlockHash {
    let tokens = token_ids.into_iter();
    let mut bytes = Vec::with_capacity(17 + 4 * tokens.size_hint().0);
    match parent {
        None => bytes.push(TAG_FIRST_BLOCK),
        Some(BlockHash(h)) => {
            bytes.push(TAG_CHAINED_BLOCK);
            bytes.extend_from_slice(&h.to_le_bytes());
        }
    }
    for token in tokens {
        bytes.extend_from_slice(&token.to_le_bytes());
    }
    BlockHash(xxh3_128(&bytes))
}

/// Hashes every full block of `token_ids`, chaining from the first block.
pub fn hash_request_tokens(block_size: usize, token_ids: &[TokenId]) -> Vec<BlockHash> {
    let mut parent = None;
    token_ids
        .chunks_exact(block_size)
        .map(|block| {
            let h = hash_block_tokens(parent, block.iter().copied());
            parent = Some(h);
            h
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaining_distinguishes_prefixes() {
        let a = hash_request_tokens(2, &[1, 2, 3, 4]);
        let b = hash_request_tokens(2, &[9, 9, 3, 4]);
        assert_eq!(a.len(), 2);
        // Same second block, different first block -> different second hash.
        assert_ne!(a[1], b[1]);
        // Same prefix -> same hash, independent of what follows.
        let c = hash_request_tokens(2, &[1, 2, 7, 7, 5]);
        assert_eq!(a[0], c[0]);
        assert_eq!(c.len(), 2, "the partial block (5) is not hashed");
    }

    #[test]
    fn deterministic_and_order_sensitive() {
        assert_eq!(
            hash_block_tokens(None, [1, 2]),
            hash_block_tokens(None, [1, 2])
        );
        assert_ne!(
            hash_block_tokens(None, [1, 2]),
            hash_block_tokens(None, [2, 1])
        );
        let p = hash_block_tokens(None, [1, 2]);
        assert_ne!(
            hash_block_tokens(Some(p), [3, 4]),
            hash_block_tokens(None, [3, 4])
        );
    }
}
