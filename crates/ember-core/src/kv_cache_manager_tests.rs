//! Unit tests of [`KvCacheManager`]: allocation, prefix hits, caching after compute, CoW, free.

use std::sync::Arc;

use super::*;
use crate::ids::TokenId;
use crate::sampling_params::SamplingParams;

const BS: usize = 4;

fn manager(num_blocks: usize, caching: bool) -> KvCacheManager {
    KvCacheManager::new(&CacheConfig {
        block_size: BS,
        num_blocks,
        enable_prefix_caching: caching,
    })
}

fn request(id: &str, prompt: Vec<TokenId>) -> Request {
    let mut r = Request::new(id, prompt, Arc::new(SamplingParams::default()), vec![0]);
    r.update_block_hashes(BS);
    r
}

/// Allocates and "computes" `n` tokens of `r`, as the scheduler would across one step.
fn step(m: &mut KvCacheManager, r: &mut Request, n: usize) -> Vec<BlockCopy> {
    let copies = m.allocate_slots(r, n, 0, &[]).expect("enough blocks");
    r.num_computed_tokens += n;
    m.cache_blocks(r);
    copies
}

#[test]
fn allocate_covers_tokens_and_fails_atomically() {
    let mut m = manager(3, false);
    let mut r = request("a", (1..=9).collect());
    assert_eq!(step(&mut m, &mut r, 5), vec![]);
    assert_eq!(m.get_block_ids("a").len(), 2);
    assert_eq!(m.num_free_blocks(), 1);
    // 4 more tokens -> 9 total -> 3 blocks: fits exactly.
    let mut big = r.clone();
    assert!(
        m.allocate_slots(&big, 8, 0, &[]).is_none(),
        "13 tokens need 4 blocks"
    );
    assert_eq!(m.get_block_ids("a").len(), 2, "failure changes nothing");
    step(&mut m, &mut big, 4);
    assert_eq!(m.get_block_ids("a").len(), 3);
    assert_eq!(m.num_free_blocks(), 0);
    m.free("a");
    assert_eq!(m.num_free_blocks(), 3);
    assert_eq!(m.get_block_ids("a"), &[] as &[BlockId]);
}

#[test]
fn prefix_hit_after_compute_never_whole_prompt() {
    let mut m = manager(8, true);
    let mut a = request("a", (1..=8).collect());
    // Before A's K/V is computed nothing is cached.
    m.allocate_slots(&a, 8, 0, &[]).expect("fits");
    let b = request("b", (1..=12).collect());
    assert_eq!(
        m.get_computed_blocks(&b).1,
        0,
        "uncomputed blocks are not hits"
    );
    a.num_computed_tokens = 8;
    m.cache_blocks(&a);
    let (blocks, n) = m.get_computed_blocks(&b);
    assert_eq!(n, 8);
    assert_eq!(blocks, m.get_block_ids("a").to_vec());
    // Same 8-token prompt: at most 1 block (7 tokens max) may hit.
    let same = request("same", (1..=8).collect());
    assert_eq!(m.get_computed_blocks(&same).1, 4);
    // Diverging second block: only the first hits.
    let mut tokens: Vec<TokenId> = (1..=8).collect();
    tokens[5] = 99;
    tokens.push(100);
    assert_eq!(m.get_computed_blocks(&request("c", tokens)).1, 4);
}

#[test]
fn hit_on_freed_blocks_touches_them_and_counts_evictable() {
    let mut m = manager(3, true);
    let mut a = request("a", (1..=8).collect());
    step(&mut m, &mut a, 8);
    m.free("a");
    assert_eq!(m.num_free_blocks(), 3);
    let b = request("b", (1..=9).collect());
    let (hit, n) = m.get_computed_blocks(&b);
    assert_eq!(n, 8);
    // 9 tokens = 3 blocks: 2 hit (evictable, free) + 1 new: exactly the pool.
    let copies = m
        .allocate_slots(&b, 1, n, &hit)
        .expect("hits are not double counted");
    assert!(copies.is_empty());
    assert_eq!(&m.get_block_ids("b")[..2], hit.as_slice());
    assert_eq!(m.num_free_blocks(), 0);
    for block in &hit {
        assert_eq!(m.block_pool().block(*block).ref_cnt, 1);
    }
}

#[test]
fn prompt_logprobs_and_disabled_cache_skip_lookup() {
    let mut m = manager(4, true);
    let mut a = request("a", (1..=8).collect());
    step(&mut m, &mut a, 8);
    let mut with_lp = Request::new(
        "lp",
        (1..=8).collect(),
        Arc::new(SamplingParams {
            prompt_logprobs: Some(1),
            ..Default::default()
        }),
        vec![],
    );
    with_lp.update_block_hashes(BS);
    assert_eq!(m.get_computed_blocks(&with_lp).1, 0);
    let mut off = manager(4, false);
    let mut a2 = request("a", (1..=8).collect());
    step(&mut off, &mut a2, 8);
    assert_eq!(off.block_pool().num_cached_blocks(), 0);
    assert_eq!(
        off.get_computed_blocks(&request("b", (1..=9).collect())).1,
        0
    );
}

#[test]
fn fork_shares_blocks_and_copies_partial_tail_on_write() {
    for caching in [false, true] {
        let mut m = manager(8, caching);
        // Leader: prompt of 6 tokens (blocks: [full][2 of 4]).
        let prompt: Vec<TokenId> = (1..=6).collect();
        let mut leader = request("0_p", prompt.clone());
        step(&mut m, &mut leader, 6);
        leader.append_output_token(50);
        let leader_blocks = m.get_block_ids("0_p").to_vec();

        // Child forks 5 computed tokens: both leader blocks, the second one partial.
        let child = request("1_p", prompt.clone());
        let fork = m.get_fork_blocks("0_p", 5).expect("leader covers 5 tokens");
        assert_eq!(fork, leader_blocks);
        let copies = m.allocate_slots(&child, 1, 5, &fork).expect("fits");
        assert_eq!(copies.len(), 1);
        let (src, dst) = copies[0];
        assert_eq!(src, leader_blocks[1]);
        let child_blocks = m.get_block_ids("1_p").to_vec();
        assert_eq!(child_blocks, vec![leader_blocks[0], dst]);
        let pool = m.block_pool();
        assert_eq!(
            pool.block(leader_blocks[0]).ref_cnt,
            2,
            "full block stays shared"
        );
        assert_eq!(pool.block(src).ref_cnt, 1, "child released the source");
        assert_eq!(pool.block(dst).ref_cnt, 1);

        // The leader now writes position 6 into its own (no longer shared) tail: no copy.
        assert!(
            m.allocate_slots(&leader, 1, 0, &[])
                .expect("fits")
                .is_empty()
        );
        m.free("0_p");
        m.free("1_p");
        assert_eq!(m.num_free_blocks(), 8);
    }
}

#[test]
fn leader_copies_when_it_writes_a_still_shared_tail() {
    let mut m = manager(8, false);
    let mut leader = request("0_p", (1..=6).collect());
    step(&mut m, &mut leader, 6);
    leader.append_output_token(9);
    // Simulate a second holder of the tail block (e.g. a fork that has not written yet).
    let tail = m.get_block_ids("0_p")[1];
    m.block_pool.touch(&[tail]);
    let copies = m.allocate_slots(&leader, 1, 0, &[]).expect("fits");
    assert_eq!(copies.len(), 1);
    assert_eq!(copies[0].0, tail);
    assert_eq!(m.get_block_ids("0_p")[1], copies[0].1);
    assert_eq!(m.block_pool().block(tail).ref_cnt, 1);
}

#[test]
fn cow_needs_capacity() {
    let mut m = manager(2, false);
    let mut leader = request("0_p", (1..=6).collect());
    step(&mut m, &mut leader, 6);
    let child = request("1_p", (1..=6).collect());
    let fork = m.get_fork_blocks("0_p", 5).expect("covered");
    assert!(
        m.allocate_slots(&child, 1, 5, &fork).is_none(),
        "no block for the copy"
    );
    assert_eq!(
        m.block_pool().block(fork[0]).ref_cnt,
        1,
        "no reference taken on failure"
    );
}

#[test]
fn free_order_evicts_tail_blocks_first() {
    let mut m = manager(3, true);
    let mut a = request("a", (1..=12).collect());
    step(&mut m, &mut a, 12);
    let blocks = m.get_block_ids("a").to_vec();
    m.free("a");
    let order: Vec<BlockId> = m.block_pool().free_block_queue().iter().collect();
    assert_eq!(order, blocks.into_iter().rev().collect::<Vec<_>>());
    // Allocating one block evicts the last block of the prefix, keeping the first two cached.
    let mut other = request("x", vec![7; 3]);
    step(&mut m, &mut other, 3);
    let b = request("b", (1..=13).collect());
    assert_eq!(m.get_computed_blocks(&b).1, 8);
}
