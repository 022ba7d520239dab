//! Test harness shared by the scheduler property tests: drives a [`Scheduler`] like an engine
//! (random sampled tokens, finishes, aborts) and checks the block-accounting, copy-on-write,
//! budget and liveness invariants after every step.

use std::collections::{HashMap, HashSet};

use ember_core::{
    BlockId, CacheConfig, FinishReason, ModelRunnerOutput, RequestRunnerOutput, SamplingParams,
    Scheduler, SchedulerConfig, SchedulerOutput, TokenId, fan_out,
};

pub const EOS: TokenId = 2;

/// Shape of one randomly generated scheduler setup.
#[derive(Debug, Clone)]
pub struct Config {
    pub block_size: usize,
    pub extra_blocks: usize,
    pub budget: usize,
    pub max_seqs: usize,
    pub max_model_len: usize,
    pub caching: bool,
    pub long_prefill: usize,
}

/// SplitMix64: a tiny deterministic generator for sampled tokens.
pub fn next_random(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A scheduler plus the bookkeeping needed to check it.
pub struct Harness {
    pub s: Scheduler,
    pub cfg: Config,
    pub next_id: usize,
    pub live: Vec<String>,
    pub added: HashSet<String>,
    pub finished: HashSet<String>,
    pub num_outputs: HashMap<String, usize>,
    pub max_tokens: HashMap<String, usize>,
}

impl Harness {
    pub fn new(cfg: Config) -> Self {
        let min_blocks = (cfg.max_model_len - 1).div_ceil(cfg.block_size);
        let sc = SchedulerConfig {
            max_num_batched_tokens: cfg.budget,
            max_num_seqs: cfg.max_seqs,
            max_model_len: cfg.max_model_len,
            long_prefill_token_threshold: cfg.long_prefill,
        };
        let cc = CacheConfig {
            block_size: cfg.block_size,
            num_blocks: min_blocks + cfg.extra_blocks,
            enable_prefix_caching: cfg.caching,
        };
        let s = Scheduler::new(sc, cc).expect("valid config");
        Self {
            s,
            cfg,
            next_id: 0,
            live: Vec::new(),
            added: HashSet::new(),
            finished: HashSet::new(),
            num_outputs: HashMap::new(),
            max_tokens: HashMap::new(),
        }
    }

    pub fn add(
        &mut self,
        prefix: usize,
        prompt_len: usize,
        max_tokens: usize,
        n: usize,
        min_tokens: usize,
        ignore_eos: bool,
    ) {
        let prompt_len = prompt_len.min(self.cfg.max_model_len - 1);
        // Prompts share one of three prefixes so that prefix-cache hits happen.
        let prompt: Vec<TokenId> = (0..prompt_len)
            .map(|i| {
                if i < 6 {
                    100 * (prefix as TokenId + 1) + i as TokenId
                } else {
                    10 + (self.next_id + i) as TokenId % 7
                }
            })
            .collect();
        let params = SamplingParams {
            n,
            max_tokens: Some(max_tokens),
            min_tokens: min_tokens.min(max_tokens),
            ignore_eos,
            ..SamplingParams::default()
        };
        let parent = format!("r{}", self.next_id);
        self.next_id += 1;
        for child in fan_out(&parent, prompt, &params, vec![EOS]) {
            let id = child.request_id().to_string();
            self.s
                .add_request(child)
                .expect("requests within max_model_len are accepted");
            self.live.push(id.clone());
            self.max_tokens.insert(id.clone(), max_tokens);
            self.added.insert(id);
        }
    }

    pub fn step(&mut self, seed: u64) {
        let out = self.s.schedule();
        self.check_schedule(&out);
        let mut rng = seed;
        let model_output = ModelRunnerOutput {
            outputs: out
                .scheduled
                .iter()
                .map(|r| {
                    let token = if next_random(&mut rng).is_multiple_of(8) {
                        EOS
                    } else {
                        3 + (next_random(&mut rng) % 5) as TokenId
                    };
                    // Rarely, the runner returns no token (the step must be retried).
                    let dropped = next_random(&mut rng).is_multiple_of(32);
                    RequestRunnerOutput {
                        sampled_token_id: (r.sample && !dropped).then_some(token),
                        ..Default::default()
                    }
                })
                .collect(),
        };
        for o in self.s.update_from_output(&out, &model_output) {
            assert!(
                !self.finished.contains(&o.request_id),
                "output after finish for {}",
                o.request_id
            );
            *self.num_outputs.entry(o.request_id.clone()).or_default() += o.new_token_ids.len();
            if o.finished() {
                self.finished.insert(o.request_id.clone());
                self.live.retain(|id| *id != o.request_id);
            }
        }
        self.check_state();
    }

    pub fn finish(&mut self, pick: usize, reason: FinishReason) {
        if self.live.is_empty() {
            return;
        }
        let id = self.live.remove(pick % self.live.len());
        self.s.finish_requests(&[id.as_str()], reason);
        self.finished.insert(id);
        self.check_state();
    }

    pub fn check_schedule(&self, out: &SchedulerOutput) {
        let total: usize = out.scheduled.iter().map(|r| r.token_ids.len()).sum();
        assert_eq!(total, out.total_num_scheduled_tokens);
        assert!(
            total <= self.cfg.budget,
            "{total} tokens over budget {}",
            self.cfg.budget
        );
        assert!(self.s.num_running() <= self.cfg.max_seqs);
        let pool = self.s.kv_cache_manager().block_pool();
        let bs = self.cfg.block_size;
        let mut seen = HashSet::new();
        for r in &out.scheduled {
            assert!(
                seen.insert(&r.request_id),
                "request scheduled twice in one step"
            );
            assert!(!r.token_ids.is_empty());
            if self.cfg.long_prefill > 0 {
                assert!(r.token_ids.len() <= self.cfg.long_prefill);
            }
            let req = self
                .s
                .get_request(&r.request_id)
                .expect("scheduled request is live");
            let end = r.num_computed_tokens + r.token_ids.len();
            assert_eq!(r.num_computed_tokens, req.num_computed_tokens());
            assert_eq!(
                r.token_ids,
                req.all_token_ids()
                    .skip(r.num_computed_tokens)
                    .take(r.token_ids.len())
                    .collect::<Vec<_>>()
            );
            assert_eq!(r.sample, end == req.num_tokens());
            assert!(end <= self.cfg.max_model_len);
            assert!(
                r.block_table.len() * bs >= end,
                "table does not cover the step"
            );
            assert_eq!(
                r.block_table,
                self.s.kv_cache_manager().get_block_ids(&r.request_id)
            );
            // Copy-on-write: every block written this step is exclusively owned.
            for block in &r.block_table[r.num_computed_tokens / bs..end.div_ceil(bs)] {
                assert_eq!(
                    pool.block(*block).ref_cnt,
                    1,
                    "{} writes shared {block}",
                    r.request_id
                );
            }
        }
        for &(src, dst) in &out.blocks_to_copy {
            assert_ne!(src, dst);
            assert!(
                pool.block(src).ref_cnt >= 1,
                "copy source must still be held"
            );
            assert_eq!(pool.block(dst).ref_cnt, 1);
        }
    }

    pub fn check_state(&self) {
        let kv = self.s.kv_cache_manager();
        let pool = kv.block_pool();
        let num_used = pool.blocks().iter().filter(|b| b.ref_cnt > 0).count();
        assert_eq!(
            pool.num_free_blocks() + num_used,
            pool.num_blocks(),
            "free + used == total"
        );
        let free: HashSet<BlockId> = pool.free_block_queue().iter().collect();
        assert_eq!(free.len(), pool.num_free_blocks());
        let mut holders: HashMap<BlockId, u32> = HashMap::new();
        for (id, table) in kv.block_tables() {
            let req = self
                .s
                .get_request(id)
                .expect("only live requests hold blocks");
            assert!(
                self.s.running_ids().iter().any(|r| r == id),
                "{id} holds blocks but is not running"
            );
            assert!(table.len() * self.cfg.block_size >= req.num_computed_tokens());
            for b in table {
                *holders.entry(*b).or_default() += 1;
            }
        }
        for block in pool.blocks() {
            let expected = holders.get(&block.block_id).copied().unwrap_or(0);
            assert_eq!(
                block.ref_cnt, expected,
                "ref_cnt of {} vs tables holding it",
                block.block_id
            );
            assert_eq!(free.contains(&block.block_id), block.ref_cnt == 0);
        }
        for id in self.s.running_ids() {
            assert!(
                !kv.get_block_ids(id).is_empty()
                    || self
                        .s
                        .get_request(id)
                        .is_some_and(|r| r.num_computed_tokens() == 0)
            );
        }
        for id in self.s.waiting_ids() {
            let req = self.s.get_request(id).expect("waiting request is live");
            assert_eq!(req.num_computed_tokens(), 0);
            assert!(kv.get_block_ids(id).is_empty(), "waiting {id} holds blocks");
        }
        if !self.s.has_unfinished_requests() {
            assert_eq!(
                pool.num_free_blocks(),
                pool.num_blocks(),
                "all blocks back when idle"
            );
        }
    }

    pub fn drain(&mut self, mut seed: u64) {
        let bound = 200 + 40 * self.added.len() * self.cfg.max_model_len;
        let mut steps = 0;
        while self.s.has_unfinished_requests() {
            steps += 1;
            assert!(
                steps <= bound,
                "no progress after {bound} steps: possible deadlock"
            );
            seed = next_random(&mut seed);
            self.step(seed);
        }
        assert_eq!(
            self.finished, self.added,
            "every request finished exactly once"
        );
        let pool = self.s.kv_cache_manager().block_pool();
        assert_eq!(pool.num_free_blocks(), pool.num_blocks());
        for (id, n) in &self.num_outputs {
            assert!(
                *n <= self.max_tokens[id],
                "{id} produced {n} tokens, over its max_tokens"
            );
        }
    }
}
