//! Scheduler tests: chunked prefill, mixed batches, budgets, FCFS and preemption.

use super::*;
use crate::request::RequestStatus;

#[test]
fn chunked_prefill_splits_by_budget() {
    let mut s = scheduler(Setup {
        budget: 8,
        ..Default::default()
    });
    s.add_request(request("a", prompt(20, 0), params(5)))
        .expect("ok");
    let (o1, r1) = step(&mut s, 7);
    assert_eq!(shape(&o1), vec![("a", 0, 8, false)]);
    assert_eq!(o1.scheduled[0].token_ids, prompt(20, 0)[..8].to_vec());
    assert!(r1.is_empty(), "intermediate chunks produce no output");
    let (o2, _) = step(&mut s, 7);
    assert_eq!(shape(&o2), vec![("a", 8, 8, false)]);
    let (o3, r3) = step(&mut s, 7);
    assert_eq!(shape(&o3), vec![("a", 16, 4, true)]);
    assert_eq!(r3[0].new_token_ids, vec![7]);
    let (o4, _) = step(&mut s, 8);
    assert_eq!(shape(&o4), vec![("a", 20, 1, true)]);
    assert_eq!(o4.scheduled[0].token_ids, vec![7]);
    assert_eq!(
        o4.scheduled[0].block_table.len(),
        6,
        "21 positions in blocks of 4"
    );
}

#[test]
fn long_prefill_threshold_caps_chunks() {
    let mut s = scheduler(Setup::default());
    s.scheduler_config.long_prefill_token_threshold = 5;
    s.add_request(request("a", prompt(12, 0), params(3)))
        .expect("ok");
    s.add_request(request("b", prompt(3, 100), params(3)))
        .expect("ok");
    let (o, _) = step(&mut s, 7);
    assert_eq!(shape(&o), vec![("a", 0, 5, false), ("b", 0, 3, true)]);
}

#[test]
fn running_first_then_waiting_in_one_mixed_batch_under_budget() {
    let mut s = scheduler(Setup {
        budget: 10,
        ..Default::default()
    });
    s.add_request(request("a", prompt(6, 0), params(10)))
        .expect("ok");
    step(&mut s, 7);
    s.add_request(request("b", prompt(20, 100), params(10)))
        .expect("ok");
    s.add_request(request("c", prompt(3, 200), params(10)))
        .expect("ok");
    let (o, _) = step(&mut s, 7);
    // Decode of a (1 token) + 9-token chunk of b; c gets nothing (budget exhausted).
    assert_eq!(shape(&o), vec![("a", 6, 1, true), ("b", 0, 9, false)]);
    assert_eq!(o.total_num_scheduled_tokens, 10);
    let (o, _) = step(&mut s, 7);
    assert_eq!(shape(&o), vec![("a", 7, 1, true), ("b", 9, 9, false)]);
    let (o, _) = step(&mut s, 7);
    assert_eq!(
        shape(&o),
        vec![("a", 8, 1, true), ("b", 18, 2, true), ("c", 0, 3, true)]
    );
}

#[test]
fn max_num_seqs_limits_running() {
    let mut s = scheduler(Setup {
        max_seqs: 2,
        ..Default::default()
    });
    for id in ["a", "b", "c"] {
        s.add_request(request(id, prompt(3, 0), params(3)))
            .expect("ok");
    }
    let (o, _) = step(&mut s, 7);
    assert_eq!(o.scheduled.len(), 2);
    assert_eq!(s.num_running(), 2);
    assert_eq!(s.num_waiting(), 1);
}

#[test]
fn fcfs_blocked_head_is_not_overtaken() {
    // 10 blocks of 4 tokens. a holds 6 blocks; b needs 5 > 4 free; c (1 block) must wait too.
    let mut s = scheduler(Setup {
        num_blocks: 10,
        max_model_len: 40,
        ..Default::default()
    });
    s.add_request(request("a", prompt(24, 0), params(2)))
        .expect("ok");
    step(&mut s, 7);
    s.add_request(request("b", prompt(20, 100), params(2)))
        .expect("ok");
    s.add_request(request("c", prompt(2, 200), params(2)))
        .expect("ok");
    let (o, _) = step(&mut s, 7);
    assert_eq!(shape(&o), vec![("a", 24, 1, true)]);
    assert_eq!(s.waiting_ids().collect::<Vec<_>>(), vec!["b", "c"]);
    // a finishes (max_tokens 2) and frees its blocks: b then c get in.
    let (o, _) = step(&mut s, 7);
    assert_eq!(shape(&o), vec![("b", 0, 20, true), ("c", 0, 2, true)]);
}

#[test]
fn preemption_takes_the_last_running_and_recomputes_it() {
    // 5 blocks of 4: a and b use 2 blocks each after prefill (8 tokens, 1 free).
    let mut s = scheduler(Setup {
        num_blocks: 5,
        max_model_len: 20,
        caching: false,
        ..Default::default()
    });
    s.add_request(request("a", prompt(8, 0), params(10)))
        .expect("ok");
    s.add_request(request("b", prompt(8, 100), params(10)))
        .expect("ok");
    step(&mut s, 7);
    // Both need a 3rd block: a gets the last free one, then b must be preempted for... itself.
    let (o, _) = step(&mut s, 7);
    assert_eq!(shape(&o), vec![("a", 8, 1, true)]);
    assert_eq!(o.preempted_req_ids, vec!["b".to_string()]);
    let b = s.get_request("b").expect("b is waiting");
    assert_eq!(
        (b.status(), b.num_computed_tokens(), b.num_preemptions()),
        (RequestStatus::Preempted, 0, 1)
    );
    assert_eq!(s.waiting_ids().next(), Some("b"));
    assert_eq!(s.stats().num_preemptions_total, 1);
    // a keeps decoding: b can come back only when there is room for all its 9 tokens.
    for _ in 0..3 {
        let (o, _) = step(&mut s, 7);
        assert_eq!(shape(&o)[0].0, "a");
    }
    s.abort_requests(&["a"]);
    let (o, _) = step(&mut s, 7);
    assert_eq!(o.finished_req_ids, vec!["a".to_string()]);
    // Recompute: prompt + the one generated token, sampling at the end.
    assert_eq!(shape(&o), vec![("b", 0, 9, true)]);
    let mut expected = prompt(8, 100);
    expected.push(7);
    assert_eq!(o.scheduled[0].token_ids, expected);
}

#[test]
fn preemption_victim_is_a_later_request_not_the_head() {
    // 6 blocks, three 8-token requests fill them. a (head) needs a block: c (last) is
    // preempted, which frees enough for b too. c goes to the queue front, ahead of d.
    let mut s = scheduler(Setup {
        num_blocks: 6,
        max_model_len: 24,
        caching: false,
        ..Default::default()
    });
    for (id, base) in [("a", 0), ("b", 100), ("c", 200)] {
        s.add_request(request(id, prompt(8, base), params(10)))
            .expect("ok");
    }
    step(&mut s, 7);
    assert_eq!(s.num_running(), 3);
    s.add_request(request("d", prompt(2, 300), params(10)))
        .expect("ok");
    let (o, _) = step(&mut s, 7);
    assert_eq!(o.preempted_req_ids, vec!["c".to_string()]);
    assert_eq!(
        shape(&o),
        vec![("a", 8, 1, true), ("b", 8, 1, true)],
        "no admission in a preempting step"
    );
    assert_eq!(s.waiting_ids().collect::<Vec<_>>(), vec!["c", "d"]);
    assert_eq!(s.running_ids(), &["a".to_string(), "b".to_string()]);
}
