//! Property tests: random add / schedule / update / finish / abort sequences on small pools,
//! checking block accounting, copy-on-write, budgets and liveness after every step.

mod support;

use ember_core::FinishReason;
use proptest::prelude::*;
use support::{Config, Harness};

#[derive(Debug, Clone)]
enum Op {
    Add {
        prefix: usize,
        prompt_len: usize,
        max_tokens: usize,
        n: usize,
        min_tokens: usize,
        ignore_eos: bool,
    },
    Step {
        seed: u64,
    },
    Abort {
        pick: usize,
    },
    FinishStop {
        pick: usize,
    },
}

fn config_strategy() -> impl Strategy<Value = Config> {
    (
        prop::sample::select(vec![1usize, 2, 4]),
        0usize..8,
        1usize..24,
        1usize..6,
        6usize..24,
        any::<bool>(),
        0usize..6,
    )
        .prop_map(
            |(block_size, extra_blocks, budget, max_seqs, max_model_len, caching, long_prefill)| {
                Config {
                    block_size,
                    extra_blocks,
                    budget,
                    max_seqs,
                    max_model_len,
                    caching,
                    long_prefill,
                }
            },
        )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0usize..3, 1usize..16, 1usize..10, 1usize..4, 0usize..3, any::<bool>()).prop_map(
            |(prefix, prompt_len, max_tokens, n, min_tokens, ignore_eos)| Op::Add { prefix, prompt_len, max_tokens, n, min_tokens, ignore_eos }
        ),
        6 => any::<u64>().prop_map(|seed| Op::Step { seed }),
        1 => any::<usize>().prop_map(|pick| Op::Abort { pick }),
        1 => any::<usize>().prop_map(|pick| Op::FinishStop { pick }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn scheduler_invariants_hold(cfg in config_strategy(), ops in prop::collection::vec(op_strategy(), 1..60), drain_seed in any::<u64>()) {
        let mut h = Harness::new(cfg);
        for op in ops {
            match op {
                Op::Add { prefix, prompt_len, max_tokens, n, min_tokens, ignore_eos } => h.add(prefix, prompt_len, max_tokens, n, min_tokens, ignore_eos),
                Op::Step { seed } => h.step(seed),
                Op::Abort { pick } => h.finish(pick, FinishReason::Abort),
                Op::FinishStop { pick } => h.finish(pick, FinishReason::Stop),
            }
        }
        h.drain(drain_seed);
    }
}

/// A deterministic heavy-contention run: many forked requests on the smallest legal pool.
#[test]
fn contention_with_forks_terminates() {
    let cfg = Config {
        block_size: 2,
        extra_blocks: 0,
        budget: 5,
        max_seqs: 8,
        max_model_len: 12,
        caching: true,
        long_prefill: 0,
    };
    let mut h = Harness::new(cfg);
    for i in 0..12 {
        h.add(i % 3, 7, 4, 3, 0, true);
    }
    h.drain(42);
    assert!(
        h.s.stats().num_preemptions_total > 0,
        "the scenario should exercise preemption"
    );
    assert!(
        h.s.stats().prefix_cache_hits > 0,
        "the scenario should exercise the prefix cache"
    );
}
