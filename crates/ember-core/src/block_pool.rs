//! [`BlockPool`]: every KV-cache block, its reference count, and the prefix cache.
//!
//! A block is either *in use* (`ref_cnt > 0`, held by that many requests' block tables) or
//! *free* (`ref_cnt == 0`, linked in the [`FreeBlockQueue`]). A free block may still carry the
//! hash of the full block it last held: it stays findable through the prefix cache until
//! [`BlockPool::get_new_blocks`] pops it from the queue head and evicts it.
//!
//! Invariants:
//! - `num_free_blocks() + number of blocks with ref_cnt > 0 == num_blocks`;
//! - a block is in the free queue iff its `ref_cnt` is 0;
//! - `cached_block_hash_to_block[h] == b` implies `blocks[b].block_hash == Some(h)`, and a block
//!   carries a hash only while it is registered under it (one block per hash; a second block
//!   that fills up with the same content simply stays unregistered).
//!
//! There is no reserved "null block": all `num_blocks` blocks are allocatable.

use std::collections::HashMap;

use crate::block_hash::BlockHash;
use crate::free_block_queue::FreeBlockQueue;
use crate::ids::BlockId;

/// Metadata of one KV-cache block (the K/V data itself lives on the device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvCacheBlock {
    /// The block's index in the pool.
    pub block_id: BlockId,
    /// Number of requests whose block table contains this block.
    pub ref_cnt: u32,
    /// Hash of the full block's content (chained), while it is registered in the prefix cache.
    pub block_hash: Option<BlockHash>,
}

/// Prefix-cache counters, in tokens, for metrics (vLLM's `prefix_cache_queries/hits`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefixCacheStats {
    /// Tokens looked up in the prefix cache (whole request length per lookup).
    pub queries_tokens: u64,
    /// Tokens found in the prefix cache.
    pub hits_tokens: u64,
}

/// All blocks of the KV cache, the free queue and the prefix cache map.
#[derive(Debug, Clone)]
pub struct BlockPool {
    blocks: Vec<KvCacheBlock>,
    free_block_queue: FreeBlockQueue,
    cached_block_hash_to_block: HashMap<BlockHash, BlockId>,
    enable_caching: bool,
    stats: PrefixCacheStats,
}

impl BlockPool {
    /// A pool of `num_blocks` free blocks. Panics if `num_blocks` does not fit in `u32`.
    pub fn new(num_blocks: usize, enable_caching: bool) -> Self {
        let blocks = (0..num_blocks)
            .map(|i| KvCacheBlock {
                block_id: BlockId(u32::try_from(i).expect("num_blocks must fit in u32")),
                ref_cnt: 0,
                block_hash: None,
            })
            .collect();
        Self {
            blocks,
            free_block_queue: FreeBlockQueue::new(num_blocks),
            cached_block_hash_to_block: HashMap::new(),
            enable_caching,
            stats: PrefixCacheStats::default(),
        }
    }

    /// Total number of blocks.
    pub fn num_blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Number of blocks with `ref_cnt == 0` (including evictable cached ones).
    pub fn num_free_blocks(&self) -> usize {
        self.free_block_queue.len()
    }

    /// Fraction of blocks in use, in `[0, 1]` (0 for an empty pool).
    pub fn usage(&self) -> f32 {
        if self.blocks.is_empty() {
            return 0.0;
        }
        1.0 - self.num_free_blocks() as f32 / self.blocks.len() as f32
    }

    /// One block's metadata. Panics on an id outside the pool.
    pub fn block(&self, block_id: BlockId) -> &KvCacheBlock {
        &self.blocks[block_id.index()]
    }

    /// All blocks' metadata, indexed by block id.
    pub fn blocks(&self) -> &[KvCacheBlock] {
        &self.blocks
    }

    /// The free queue (head = next evicted), for inspection.
    pub fn free_block_queue(&self) -> &FreeBlockQueue {
        &self.free_block_queue
    }

    /// Number of blocks registered in the prefix cache (in use or free).
    pub fn num_cached_blocks(&self) -> usize {
        self.cached_block_hash_to_block.len()
    }

    /// The block registered under `block_hash`, if any.
    pub fn get_cached_block(&self, block_hash: BlockHash) -> Option<BlockId> {
        self.cached_block_hash_to_block.get(&block_hash).copied()
    }

    /// Registers each `(block, hash)` pair in the prefix cache. A block that already carries a
    /// hash is skipped, as is a hash that another block already holds. No-op when caching is off.
    pub fn cache_full_blocks(
        &mut self,
        blocks_and_hashes: impl IntoIterator<Item = (BlockId, BlockHash)>,
    ) {
        if !self.enable_caching {
            return;
        }
        for (block_id, block_hash) in blocks_and_hashes {
            let block = &mut self.blocks[block_id.index()];
            if block.block_hash.is_some() {
                continue;
            }
            if let std::collections::hash_map::Entry::Vacant(slot) =
                self.cached_block_hash_to_block.entry(block_hash)
            {
                slot.insert(block_id);
                block.block_hash = Some(block_hash);
            }
        }
    }

    /// Takes one more reference on each block, removing it from the free queue when it was free
    /// (a prefix-cache hit or a fork).
    pub fn touch(&mut self, blocks: &[BlockId]) {
        for &block_id in blocks {
            if self.blocks[block_id.index()].ref_cnt == 0 {
                self.free_block_queue.remove(block_id);
            }
            self.blocks[block_id.index()].ref_cnt += 1;
        }
    }

    /// Pops `num_blocks` blocks from the free-queue head, evicting their cached hashes, each with
    /// `ref_cnt = 1`. Returns `None` (and changes nothing) when fewer blocks are free.
    pub fn get_new_blocks(&mut self, num_blocks: usize) -> Option<Vec<BlockId>> {
        if num_blocks > self.num_free_blocks() {
            return None;
        }
        let mut new_blocks = Vec::with_capacity(num_blocks);
        for _ in 0..num_blocks {
            let block_id = self
                .free_block_queue
                .popleft()
                .expect("free queue shorter than its length");
            self.evict_cached_block(block_id);
            let block = &mut self.blocks[block_id.index()];
            assert_eq!(
                block.ref_cnt, 0,
                "{block_id} was in the free queue while in use"
            );
            block.ref_cnt = 1;
            new_blocks.push(block_id);
        }
        Some(new_blocks)
    }

    fn evict_cached_block(&mut self, block_id: BlockId) {
        if let Some(block_hash) = self.blocks[block_id.index()].block_hash.take() {
            let removed = self.cached_block_hash_to_block.remove(&block_hash);
            assert_eq!(
                removed,
                Some(block_id),
                "prefix cache map out of sync for {block_id}"
            );
        }
    }

    /// Drops one reference on each block, in order; a block reaching 0 joins the free-queue tail
    /// (keeping its hash, so it can still be hit). Pass a request's blocks tail-first so that
    /// its last blocks are evicted first. Panics on a block that is already free.
    pub fn free_blocks(&mut self, blocks: impl IntoIterator<Item = BlockId>) {
        for block_id in blocks {
            let block = &mut self.blocks[block_id.index()];
            assert!(
                block.ref_cnt > 0,
                "{block_id} freed while already free (double free)"
            );
            block.ref_cnt -= 1;
            if block.ref_cnt == 0 {
                self.free_block_queue.append(block_id);
            }
        }
    }

    /// Forgets every cached hash (e.g. after a weight update). Only possible while no block is
    /// in use; returns whether the reset happened.
    pub fn reset_prefix_cache(&mut self) -> bool {
        if self.num_free_blocks() != self.num_blocks() {
            return false;
        }
        self.cached_block_hash_to_block.clear();
        for block in &mut self.blocks {
            block.block_hash = None;
        }
        true
    }

    /// Whether prefix caching is enabled.
    pub fn enable_caching(&self) -> bool {
        self.enable_caching
    }

    /// Records one prefix-cache lookup of `queries_tokens` tokens of which `hits_tokens` hit.
    pub fn record_prefix_cache_lookup(&mut self, queries_tokens: usize, hits_tokens: usize) {
        self.stats.queries_tokens += queries_tokens as u64;
        self.stats.hits_tokens += hits_tokens as u64;
    }

    /// Cumulative prefix-cache counters.
    pub fn prefix_cache_stats(&self) -> PrefixCacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block_hash::hash_block_tokens;

    fn b(i: u32) -> BlockId {
        BlockId(i)
    }

    #[test]
    fn allocate_and_free_accounting() {
        let mut pool = BlockPool::new(4, true);
        let got = pool.get_new_blocks(3).expect("3 of 4 free");
        assert_eq!(got, vec![b(0), b(1), b(2)]);
        assert_eq!(pool.num_free_blocks(), 1);
        assert!((pool.usage() - 0.75).abs() < 1e-6);
        assert!(pool.get_new_blocks(2).is_none());
        assert_eq!(
            pool.num_free_blocks(),
            1,
            "failed allocation changes nothing"
        );
        pool.free_blocks(got.iter().rev().copied());
        assert_eq!(pool.num_free_blocks(), 4);
        // Tail blocks of the freed sequence come first in eviction order.
        let order: Vec<u32> = pool.free_block_queue().iter().map(|x| x.0).collect();
        assert_eq!(order, vec![3, 2, 1, 0]);
    }

    #[test]
    fn cache_hit_touch_and_lru_eviction() {
        let mut pool = BlockPool::new(3, true);
        let blocks = pool.get_new_blocks(2).expect("free");
        let h0 = hash_block_tokens(None, [1, 2]);
        let h1 = hash_block_tokens(Some(h0), [3, 4]);
        pool.cache_full_blocks([(blocks[0], h0), (blocks[1], h1)]);
        assert_eq!(pool.get_cached_block(h0), Some(blocks[0]));
        // Free tail-first: block 1 then block 0 join the queue after block 2.
        pool.free_blocks(blocks.iter().rev().copied());
        assert_eq!(
            pool.get_cached_block(h1),
            Some(blocks[1]),
            "free blocks stay cached"
        );

        // A hit on a free block pulls it out of the queue.
        pool.touch(&[blocks[0]]);
        assert_eq!(pool.block(blocks[0]).ref_cnt, 1);
        assert!(!pool.free_block_queue().contains(blocks[0]));
        assert_eq!(pool.num_free_blocks(), 2);

        // Next allocations: the uncached block 2 first, then evict block 1 (h1).
        assert_eq!(pool.get_new_blocks(1), Some(vec![b(2)]));
        assert_eq!(pool.get_cached_block(h1), Some(b(1)));
        assert_eq!(pool.get_new_blocks(1), Some(vec![b(1)]));
        assert_eq!(pool.get_cached_block(h1), None, "evicted on reuse");
        assert_eq!(pool.block(b(1)).block_hash, None);
        assert_eq!(
            pool.get_cached_block(h0),
            Some(b(0)),
            "the touched block survives"
        );
    }

    #[test]
    fn duplicate_hash_keeps_first_block() {
        let mut pool = BlockPool::new(2, true);
        let blocks = pool.get_new_blocks(2).expect("free");
        let h = hash_block_tokens(None, [5]);
        pool.cache_full_blocks([(blocks[0], h), (blocks[1], h)]);
        assert_eq!(pool.get_cached_block(h), Some(blocks[0]));
        assert_eq!(pool.block(blocks[1]).block_hash, None);
        // Evicting the unregistered duplicate must not disturb the map.
        pool.free_blocks([blocks[1], blocks[0]]);
        assert_eq!(pool.get_new_blocks(1), Some(vec![blocks[1]]));
        assert_eq!(pool.get_cached_block(h), Some(blocks[0]));
    }

    #[test]
    fn caching_disabled_never_registers() {
        let mut pool = BlockPool::new(1, false);
        let blocks = pool.get_new_blocks(1).expect("free");
        pool.cache_full_blocks([(blocks[0], hash_block_tokens(None, [1]))]);
        assert_eq!(pool.num_cached_blocks(), 0);
    }

    #[test]
    fn shared_block_freed_only_at_zero() {
        let mut pool = BlockPool::new(2, false);
        let blocks = pool.get_new_blocks(1).expect("free");
        pool.touch(&blocks);
        assert_eq!(pool.block(blocks[0]).ref_cnt, 2);
        pool.free_blocks(blocks.clone());
        assert_eq!(pool.num_free_blocks(), 1);
        pool.free_blocks(blocks);
        assert_eq!(pool.num_free_blocks(), 2);
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn double_free_panics() {
        let mut pool = BlockPool::new(1, false);
        pool.free_blocks([BlockId(0)]);
    }

    #[test]
    fn reset_prefix_cache_only_when_idle() {
        let mut pool = BlockPool::new(2, true);
        let blocks = pool.get_new_blocks(1).expect("free");
        let h = hash_block_tokens(None, [1]);
        pool.cache_full_blocks([(blocks[0], h)]);
        assert!(!pool.reset_prefix_cache());
        pool.free_blocks(blocks);
        assert!(pool.reset_prefix_cache());
        assert_eq!(pool.get_cached_block(h), None);
    }
}
