//! [`KvCacheManager`]: per-request block tables on top of the [`BlockPool`].
//!
//! Owns the mapping request id -> block table and decides which blocks a step needs:
//! prefix-cache lookups ([`KvCacheManager::get_computed_blocks`]), slot allocation with
//! copy-on-write ([`KvCacheManager::allocate_slots`]), registration of newly computed full
//! blocks in the prefix cache ([`KvCacheManager::cache_blocks`]) and release
//! ([`KvCacheManager::free`]).
//!
//! Invariants:
//! - every block in a table holds one reference per table it appears in;
//! - after `allocate_slots` succeeds, the table covers `num_computed_tokens + num_new_tokens`
//!   positions and every block that this step writes has `ref_cnt == 1` (copy-on-write);
//! - full blocks are registered in the prefix cache only once their K/V has been computed
//!   (`cache_blocks` runs after the forward pass), so a cache hit never reads unwritten K/V,
//!   whatever order the model runner writes the batch in.

use std::collections::HashMap;

use crate::block_pool::{BlockPool, PrefixCacheStats};
use crate::config::CacheConfig;
use crate::ids::{BlockId, RequestId};
use crate::request::Request;

/// A copy-on-write order: copy the device K/V of block `.0` into block `.1` before the step.
pub type BlockCopy = (BlockId, BlockId);

/// Block tables of all requests holding KV-cache blocks.
#[derive(Debug, Clone)]
pub struct KvCacheManager {
    block_size: usize,
    enable_prefix_caching: bool,
    block_pool: BlockPool,
    req_to_blocks: HashMap<RequestId, Vec<BlockId>>,
    /// Per request, how many leading blocks of its table were already offered to the cache.
    num_cached_blocks: HashMap<RequestId, usize>,
}

impl KvCacheManager {
    /// An empty manager over `config.num_blocks` blocks of `config.block_size` tokens.
    /// Panics on a config that fails [`CacheConfig::validate`].
    pub fn new(config: &CacheConfig) -> Self {
        assert!(
            config.block_size > 0,
            "block_size must be validated before use"
        );
        Self {
            block_size: config.block_size,
            enable_prefix_caching: config.enable_prefix_caching,
            block_pool: BlockPool::new(config.num_blocks, config.enable_prefix_caching),
            req_to_blocks: HashMap::new(),
            num_cached_blocks: HashMap::new(),
        }
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Whether prefix caching is on.
    pub fn enable_prefix_caching(&self) -> bool {
        self.enable_prefix_caching
    }

    /// The underlying pool (read-only: ref counts, free queue, cache map).
    pub fn block_pool(&self) -> &BlockPool {
        &self.block_pool
    }

    /// Free blocks, cached-but-evictable ones included.
    pub fn num_free_blocks(&self) -> usize {
        self.block_pool.num_free_blocks()
    }

    /// Fraction of blocks in use, in `[0, 1]`.
    pub fn usage(&self) -> f32 {
        self.block_pool.usage()
    }

    /// The block table of `request_id` (empty if it holds no blocks).
    pub fn get_block_ids(&self, request_id: &str) -> &[BlockId] {
        self.req_to_blocks
            .get(request_id)
            .map_or(&[], Vec::as_slice)
    }

    /// Every `(request id, block table)` pair, in no particular order.
    pub fn block_tables(&self) -> impl Iterator<Item = (&str, &[BlockId])> {
        self.req_to_blocks
            .iter()
            .map(|(id, blocks)| (id.as_str(), blocks.as_slice()))
    }

    /// The longest run of cached full blocks matching the start of `request`, and the number
    /// of tokens they cover. Never covers the whole sequence: at least the last token is left
    /// to compute so that logits exist. Empty when caching is off or the request wants prompt
    /// logprobs (those need every prompt position computed). Does not count as a lookup for
    /// metrics: call [`Self::record_prefix_cache_lookup`] once the request is scheduled.
    pub fn get_computed_blocks(&self, request: &Request) -> (Vec<BlockId>, usize) {
        if !self.enable_prefix_caching
            || request.sampling_params().prompt_logprobs.is_some()
            || request.num_tokens() == 0
        {
            return (Vec::new(), 0);
        }
        let max_hit_blocks = (request.num_tokens() - 1) / self.block_size;
        let blocks: Vec<BlockId> = request
            .block_hashes()
            .iter()
            .take(max_hit_blocks)
            .map_while(|&h| self.block_pool.get_cached_block(h))
            .collect();
        let num_tokens = blocks.len() * self.block_size;
        (blocks, num_tokens)
    }

    /// Counts one prefix-cache lookup for metrics.
    pub fn record_prefix_cache_lookup(&mut self, queries_tokens: usize, hits_tokens: usize) {
        self.block_pool
            .record_prefix_cache_lookup(queries_tokens, hits_tokens);
    }

    /// Cumulative prefix-cache counters.
    pub fn prefix_cache_stats(&self) -> PrefixCacheStats {
        self.block_pool.prefix_cache_stats()
    }

    /// The first blocks of `leader_id`'s table covering `num_tokens` positions, for a fork;
    /// `None` if the leader's table is shorter.
    pub fn get_fork_blocks(&self, leader_id: &str, num_tokens: usize) -> Option<Vec<BlockId>> {
        let table = self.get_block_ids(leader_id);
        let num_blocks = num_tokens.div_ceil(self.block_size);
        table.get(..num_blocks).map(<[BlockId]>::to_vec)
    }

    /// Makes `request`'s table cover `num_computed_tokens + num_new_computed_tokens +
    /// num_new_tokens` positions.
    ///
    /// `new_computed_blocks` (covering `num_new_computed_tokens` already-computed positions: a
    /// prefix-cache hit or a fork) are only allowed on a request's first allocation; they gain
    /// one reference each. Any block the step writes that is shared (`ref_cnt > 1`) is replaced
    /// by a fresh block and the returned list orders the device copy (copy-on-write).
    /// Returns `None`, changing nothing, when the free blocks do not suffice.
    pub fn allocate_slots(
        &mut self,
        request: &Request,
        num_new_tokens: usize,
        num_new_computed_tokens: usize,
        new_computed_blocks: &[BlockId],
    ) -> Option<Vec<BlockCopy>> {
        let bs = self.block_size;
        let request_id = request.request_id();
        let existing = self.get_block_ids(request_id);
        assert_eq!(
            new_computed_blocks.len(),
            num_new_computed_tokens.div_ceil(bs),
            "request {request_id}: computed blocks do not match computed tokens"
        );
        assert!(
            new_computed_blocks.is_empty()
                || (existing.is_empty() && request.num_computed_tokens() == 0),
            "request {request_id}: computed blocks given to a request that already has blocks"
        );
        // Positions a step in flight is computing are taken: this step's tokens follow them.
        let num_computed_tokens = request.num_scheduled_through() + num_new_computed_tokens;
        let num_total_tokens = num_computed_tokens + num_new_tokens;
        let num_required_blocks = num_total_tokens.div_ceil(bs);
        let table_len = existing.len() + new_computed_blocks.len();
        let num_new_blocks = num_required_blocks.saturating_sub(table_len);

        // Blocks this step writes that already exist and are (or will be) shared.
        let block_at = |i: usize| {
            existing
                .get(i)
                .copied()
                .unwrap_or_else(|| new_computed_blocks[i - existing.len()])
        };
        let written_blocks = if num_new_tokens == 0 {
            0..0
        } else {
            num_computed_tokens / bs..num_required_blocks.min(table_len)
        };
        let copy_indices: Vec<usize> = written_blocks
            .filter(|&i| {
                let ref_cnt = self.block_pool.block(block_at(i)).ref_cnt;
                let gains_ref = u32::from(i >= existing.len());
                ref_cnt + gains_ref > 1
            })
            .collect();

        let num_evictable_computed_blocks = new_computed_blocks
            .iter()
            .filter(|&&b| self.block_pool.block(b).ref_cnt == 0)
            .count();
        let num_available = self.block_pool.num_free_blocks() - num_evictable_computed_blocks;
        if num_new_blocks + copy_indices.len() > num_available {
            return None;
        }

        self.block_pool.touch(new_computed_blocks);
        let table = self
            .req_to_blocks
            .entry(request_id.to_string())
            .or_default();
        table.extend_from_slice(new_computed_blocks);
        let mut copies = Vec::with_capacity(copy_indices.len());
        for i in copy_indices {
            let src = table[i];
            let dst = self
                .block_pool
                .get_new_blocks(1)
                .expect("capacity was checked")[0];
            table[i] = dst;
            self.block_pool.free_blocks([src]);
            copies.push((src, dst));
        }
        let new_blocks = self
            .block_pool
            .get_new_blocks(num_new_blocks)
            .expect("capacity was checked");
        table.extend(new_blocks);
        Some(copies)
    }

    /// Registers the request's computed full blocks in the prefix cache (no-op when caching is
    /// off). Call after the step that computed them.
    pub fn cache_blocks(&mut self, request: &Request) {
        if !self.enable_prefix_caching {
            return;
        }
        let request_id = request.request_id();
        let Some(table) = self.req_to_blocks.get(request_id) else {
            return;
        };
        let hashes = request.block_hashes();
        let num_full_blocks = (request.num_computed_tokens() / self.block_size)
            .min(hashes.len())
            .min(table.len());
        let num_cached = self.num_cached_blocks.get(request_id).copied().unwrap_or(0);
        if num_full_blocks <= num_cached {
            return;
        }
        self.block_pool
            .cache_full_blocks((num_cached..num_full_blocks).map(|i| (table[i], hashes[i])));
        self.num_cached_blocks
            .insert(request_id.to_string(), num_full_blocks);
    }

    /// Releases all blocks of `request_id`, tail first so its last blocks are evicted first.
    /// Cached blocks stay in the prefix cache until evicted. No-op for an unknown id.
    pub fn free(&mut self, request_id: &str) {
        self.num_cached_blocks.remove(request_id);
        if let Some(blocks) = self.req_to_blocks.remove(request_id) {
            self.block_pool.free_blocks(blocks.into_iter().rev());
        }
    }

    /// Forgets the prefix cache; only possible while no request holds blocks.
    pub fn reset_prefix_cache(&mut self) -> bool {
        self.block_pool.reset_prefix_cache()
    }
}

#[cfg(test)]
#[path = "kv_cache_manager_tests.rs"]
mod tests;
