//! Scheduler tests: stop conditions, aborts, admission errors, prefix hits and forks.

use super::*;
use crate::error::CoreError;
use crate::parallel_sampling::fan_out;
use crate::request::{FinishReason, Request};
use crate::sampling_params::SamplingParams;
use crate::scheduler_output::{ModelRunnerOutput, RequestRunnerOutput};
use crate::{CacheConfig, SchedulerConfig, StopReason};

#[test]
fn stop_conditions_through_update() {
    let mut s = scheduler(Setup::default());
    s.add_request(request("eos", prompt(3, 0), params(10)))
        .expect("ok");
    s.add_request(request(
        "stop_id",
        prompt(3, 0),
        SamplingParams {
            stop_token_ids: vec![EOS],
            ignore_eos: true,
            ..params(10)
        },
    ))
    .expect("ok");
    s.add_request(request(
        "ignore",
        prompt(3, 0),
        SamplingParams {
            ignore_eos: true,
            ..params(2)
        },
    ))
    .expect("ok");
    s.add_request(request(
        "min",
        prompt(3, 0),
        SamplingParams {
            min_tokens: 2,
            ..params(10)
        },
    ))
    .expect("ok");
    let (_, r) = step(&mut s, EOS);
    let by_id = |id: &str| {
        r.iter()
            .find(|o| o.request_id == id)
            .cloned()
            .expect("output present")
    };
    assert_eq!(by_id("eos").finish_reason, Some(FinishReason::Stop));
    assert_eq!(by_id("eos").stop_reason, None);
    assert_eq!(by_id("eos").new_token_ids, vec![EOS]);
    assert_eq!(by_id("stop_id").stop_reason, Some(StopReason::TokenId(EOS)));
    assert_eq!(by_id("ignore").finish_reason, None);
    assert_eq!(by_id("min").finish_reason, None);
    let (_, r) = step(&mut s, EOS);
    let by_id = |id: &str| {
        r.iter()
            .find(|o| o.request_id == id)
            .cloned()
            .expect("output present")
    };
    assert_eq!(by_id("ignore").finish_reason, Some(FinishReason::Length));
    assert_eq!(by_id("min").finish_reason, Some(FinishReason::Stop));
    assert!(!s.has_unfinished_requests());
    assert_eq!(
        s.kv_cache_manager().num_free_blocks(),
        64,
        "finished requests free their blocks"
    );
}

#[test]
fn max_model_len_caps_generation() {
    let mut s = scheduler(Setup {
        max_model_len: 8,
        ..Default::default()
    });
    s.add_request(request("a", prompt(5, 0), SamplingParams::default()))
        .expect("ok");
    assert_eq!(s.get_request("a").map(Request::max_tokens), Some(3));
    let mut outputs = 0;
    while s.has_unfinished_requests() {
        let (_, r) = step(&mut s, 7);
        outputs += r.iter().map(|o| o.new_token_ids.len()).sum::<usize>();
        if let Some(o) = r.iter().find(|o| o.finished()) {
            assert_eq!(o.finish_reason, Some(FinishReason::Length));
        }
    }
    assert_eq!(outputs, 3);
}

#[test]
fn abort_between_schedule_and_update_is_skipped() {
    let mut s = scheduler(Setup::default());
    s.add_request(request("a", prompt(5, 0), params(4)))
        .expect("ok");
    let out = s.schedule();
    s.abort_requests(&["a", "unknown"]);
    assert_eq!(s.kv_cache_manager().num_free_blocks(), 64);
    assert!(
        s.update_from_output(&out, &runner_output(&out, 7))
            .is_empty()
    );
    assert_eq!(s.schedule().finished_req_ids, vec!["a".to_string()]);
    assert!(s.schedule().finished_req_ids.is_empty(), "reported once");
}

#[test]
fn prefix_cache_hit_reported_and_counted() {
    let mut s = scheduler(Setup::default());
    s.add_request(request("a", prompt(10, 0), params(1)))
        .expect("ok");
    step(&mut s, 7);
    s.add_request(request("b", prompt(10, 0), params(1)))
        .expect("ok");
    let (o, r) = step(&mut s, 7);
    assert_eq!(shape(&o), vec![("b", 8, 2, true)]);
    assert_eq!(r[0].num_cached_tokens, 8);
    let stats = s.stats();
    assert_eq!(
        (stats.prefix_cache_queries, stats.prefix_cache_hits),
        (20, 8)
    );
}

#[test]
fn add_request_errors() {
    let mut s = scheduler(Setup {
        max_model_len: 8,
        ..Default::default()
    });
    s.add_request(request("a", prompt(3, 0), params(1)))
        .expect("ok");
    let dup = s.add_request(request("a", prompt(3, 0), params(1)));
    assert!(matches!(dup, Err(CoreError::DuplicateRequestId { .. })));
    assert!(matches!(
        s.add_request(request("e", vec![], params(1))),
        Err(CoreError::EmptyPrompt { .. })
    ));
    let long = s.add_request(request("l", prompt(8, 0), params(1)));
    assert!(matches!(
        long,
        Err(CoreError::PromptTooLong {
            num_prompt_tokens: 8,
            max_model_len: 8,
            ..
        })
    ));
    let bad = s.add_request(request(
        "t",
        prompt(2, 0),
        SamplingParams {
            temperature: -1.0,
            ..params(1)
        },
    ));
    assert!(matches!(
        bad,
        Err(CoreError::InvalidSamplingParams {
            field: "temperature",
            ..
        })
    ));
    assert_eq!(s.num_waiting(), 1);
}

#[test]
fn new_rejects_pool_smaller_than_one_sequence() {
    let sc = SchedulerConfig::new(100);
    let cc = CacheConfig {
        block_size: 4,
        num_blocks: 24,
        enable_prefix_caching: true,
    };
    assert!(matches!(
        Scheduler::new(sc.clone(), cc.clone()),
        Err(CoreError::InvalidConfig {
            field: "num_blocks",
            ..
        })
    ));
    assert!(
        Scheduler::new(
            sc,
            CacheConfig {
                num_blocks: 25,
                ..cc
            }
        )
        .is_ok(),
        "99 tokens fit 25 blocks"
    );
}

fn add_all(s: &mut Scheduler, requests: Vec<Request>) {
    for r in requests {
        s.add_request(r).expect("ok");
    }
}

#[test]
fn fork_children_wait_for_leader_then_share_and_copy() {
    for caching in [false, true] {
        let mut s = scheduler(Setup {
            budget: 4,
            caching,
            ..Default::default()
        });
        // Prompt of 6 tokens, blocks of 4: chunked in two steps under a budget of 4.
        add_all(
            &mut s,
            fan_out(
                "p",
                prompt(6, 0),
                &SamplingParams { n: 3, ..params(5) },
                vec![EOS],
            ),
        );
        let (o, _) = step(&mut s, 7);
        assert_eq!(
            shape(&o),
            vec![("0_p", 0, 4, false)],
            "children skip while the leader prefills"
        );
        assert_eq!(s.waiting_ids().collect::<Vec<_>>(), vec!["1_p", "2_p"]);
        let (o, _) = step(&mut s, 7);
        assert_eq!(shape(&o), vec![("0_p", 4, 2, true)]);
        // Leader computed its prompt: each child forks 5 tokens and recomputes the 6th.
        let (o, _) = step(&mut s, 8);
        assert_eq!(
            shape(&o),
            vec![
                ("0_p", 6, 1, true),
                ("1_p", 5, 1, true),
                ("2_p", 5, 1, true)
            ]
        );
        let leader_table = &o.scheduled[0].block_table;
        assert_eq!(o.blocks_to_copy.len(), 2);
        for (child, &(src, dst)) in o.scheduled[1..].iter().zip(&o.blocks_to_copy) {
            assert_eq!(
                child.block_table[0], leader_table[0],
                "full prompt block shared"
            );
            assert_eq!(src, leader_table[1]);
            assert_eq!(child.block_table[1], dst);
            assert_eq!(child.token_ids, vec![prompt(6, 0)[5]]);
        }
        let pool = s.kv_cache_manager().block_pool();
        assert_eq!(pool.block(leader_table[0]).ref_cnt, 3);
        assert_eq!(pool.block(leader_table[1]).ref_cnt, 1);
        assert_eq!(
            s.get_request("1_p").and_then(Request::num_cached_tokens),
            Some(5)
        );
        while s.has_unfinished_requests() {
            step(&mut s, 9);
        }
        assert_eq!(s.kv_cache_manager().num_free_blocks(), 64);
    }
}

#[test]
fn fork_child_runs_normally_when_leader_is_gone() {
    let mut s = scheduler(Setup {
        budget: 4,
        ..Default::default()
    });
    add_all(
        &mut s,
        fan_out(
            "p",
            prompt(6, 0),
            &SamplingParams { n: 2, ..params(5) },
            vec![EOS],
        ),
    );
    step(&mut s, 7);
    s.abort_requests(&["0_p"]);
    let (o, _) = step(&mut s, 7);
    // Not a fork any more; the leader's first (computed) block is still a prefix-cache hit.
    assert_eq!(shape(&o), vec![("1_p", 4, 2, true)]);
    assert_eq!(s.get_request("1_p").and_then(Request::fork_of), None);
}

#[test]
fn sampling_step_without_token_is_retried() {
    let mut s = scheduler(Setup::default());
    s.add_request(request("a", prompt(5, 0), params(2)))
        .expect("ok");
    let out = s.schedule();
    let empty = ModelRunnerOutput {
        outputs: vec![RequestRunnerOutput::default()],
    };
    assert!(s.update_from_output(&out, &empty).is_empty());
    let (o, r) = step(&mut s, 7);
    assert_eq!(
        shape(&o),
        vec![("a", 4, 1, true)],
        "the last prompt token runs again"
    );
    assert_eq!(r[0].new_token_ids, vec![7]);
}

#[test]
fn prompt_logprobs_of_intermediate_chunks_are_forwarded() {
    let mut s = scheduler(Setup {
        budget: 4,
        ..Default::default()
    });
    let p = SamplingParams {
        prompt_logprobs: Some(0),
        ..params(1)
    };
    s.add_request(request("a", prompt(6, 0), p)).expect("ok");
    let out = s.schedule();
    let lp = crate::PositionLogprobs {
        token: crate::Logprob {
            token_id: 10,
            logprob: -0.5,
            rank: 1,
        },
        top: vec![],
    };
    let runner = ModelRunnerOutput {
        outputs: vec![RequestRunnerOutput {
            sampled_token_id: Some(99), // ignored: not a sampling step
            prompt_logprobs: Some(vec![None, Some(lp.clone()), Some(lp)]),
            ..Default::default()
        }],
    };
    let r = s.update_from_output(&out, &runner);
    assert_eq!(r.len(), 1);
    assert!(r[0].new_token_ids.is_empty());
    assert_eq!(r[0].new_prompt_logprobs.as_ref().map(Vec::len), Some(3));
    assert_eq!(s.get_request("a").map(Request::num_output_tokens), Some(0));
}
