//! Async scheduling: step N+1 scheduled before step N's output is applied.

use super::*;

/// Schedules the next step while `in_flight` is unapplied, then applies `in_flight` with
/// `token`; returns the new step (now in flight) and the applied step's outputs.
fn pipelined_step(s: &mut Scheduler, in_flight: &SchedulerOutput, token: TokenId) -> (SchedulerOutput, Vec<EngineCoreOutput>) {
    let next = s.schedule();
    let results = s.update_from_output(in_flight, &runner_output(in_flight, token));
    (next, results)
}

#[test]
fn the_next_decode_takes_the_pending_token_as_input() {
    let mut s = scheduler(Setup::default());
    s.add_request(request("a", prompt(6, 0), params(3))).unwrap();
    let first = s.schedule(); // the prompt, samples
    assert_eq!(shape(&first), vec![("a", 0, 6, true)]);
    assert!(!first.scheduled[0].input_token_pending);

    let (second, results) = pipelined_step(&mut s, &first, 50);
    // Scheduled while the prompt was in flight: position 6, whose token is not known yet.
    assert_eq!(shape(&second), vec![("a", 6, 1, true)]);
    assert!(second.scheduled[0].input_token_pending);
    assert_eq!(second.scheduled[0].token_ids, vec![0]);
    assert_eq!(results[0].new_token_ids, vec![50]);

    let (third, results) = pipelined_step(&mut s, &second, 51);
    assert_eq!(shape(&third), vec![("a", 7, 1, true)]);
    assert_eq!(results[0].new_token_ids, vec![51]);
    let r = s.get_request("a").unwrap();
    assert_eq!((r.num_computed_tokens(), r.num_output_tokens()), (7, 2));

    // Its third token (max_tokens 3) is in flight: nothing more to schedule.
    let (fourth, results) = pipelined_step(&mut s, &third, 52);
    assert!(fourth.is_empty(), "a request finishing by length is not scheduled past it");
    assert_eq!(results[0].finish_reason, Some(FinishReason::Length));
    assert!(!s.has_unfinished_requests());
}

#[test]
fn a_request_stopped_in_flight_drops_its_next_token() {
    let mut s = scheduler(Setup::default());
    s.add_request(request("a", prompt(4, 0), params(10))).unwrap();
    let first = s.schedule();
    let (second, _) = pipelined_step(&mut s, &first, 50);
    // The second step samples EOS while the third is already scheduled.
    let (third, results) = pipelined_step(&mut s, &second, EOS);
    assert_eq!(results[0].finish_reason, Some(FinishReason::Stop));
    assert_eq!(third.scheduled.len(), 1, "scheduled before the stop was known");
    let dropped = s.update_from_output(&third, &runner_output(&third, 60));
    assert!(dropped.is_empty(), "the finished request's extra token is dropped");
    assert_eq!(s.kv_cache_usage(), 0.0);
}

#[test]
fn resolving_after_a_drain_fills_tokens_and_drops_finished_requests() {
    let mut s = scheduler(Setup::default());
    s.add_request(request("a", prompt(4, 0), params(10))).unwrap();
    s.add_request(request("b", prompt(4, 100), params(10))).unwrap();
    let first = s.schedule();
    let mut second = s.schedule(); // both decode, inputs pending
    assert!(second.scheduled.iter().all(|r| r.input_token_pending));
    // Apply the first step: "a" samples 50, "b" samples EOS.
    let outputs = ModelRunnerOutput {
        outputs: vec![
            RequestRunnerOutput { sampled_token_id: Some(50), ..Default::default() },
            RequestRunnerOutput { sampled_token_id: Some(EOS), ..Default::default() },
        ],
    };
    s.update_from_output(&first, &outputs);
    assert!(s.resolve_pending_inputs(&mut second), "b finished: its entry goes");
    assert_eq!(shape(&second), vec![("a", 4, 1, true)]);
    assert_eq!(second.scheduled[0].token_ids, vec![50]);
    assert!(!second.scheduled[0].input_token_pending);
    assert_eq!(second.total_num_scheduled_tokens, 1);
    let results = s.update_from_output(&second, &runner_output(&second, 51));
    assert_eq!(results[0].new_token_ids, vec![51]);
    let r = s.get_request("a").unwrap();
    assert_eq!((r.num_computed_tokens(), r.num_scheduled_through(), r.num_tokens_with_pending()), (5, 5, 6));
}

#[test]
fn chunked_prefill_continues_behind_the_chunk_in_flight() {
    let mut s = scheduler(Setup { budget: 8, ..Setup::default() });
    s.add_request(request("a", prompt(20, 0), params(2))).unwrap();
    let first = s.schedule();
    assert_eq!(shape(&first), vec![("a", 0, 8, false)]);
    let (second, results) = pipelined_step(&mut s, &first, 50);
    assert!(results.is_empty());
    assert_eq!(shape(&second), vec![("a", 8, 8, false)]);
    let (third, _) = pipelined_step(&mut s, &second, 50);
    assert_eq!(shape(&third), vec![("a", 16, 4, true)]);
    assert!(!third.scheduled[0].input_token_pending, "prompt tokens are known");
    let (fourth, _) = pipelined_step(&mut s, &third, 50);
    assert_eq!(shape(&fourth), vec![("a", 20, 1, true)]);
    assert!(fourth.scheduled[0].input_token_pending);
}

#[test]
fn preemption_while_in_flight_resets_the_request() {
    // Two requests that fit only while short: 6 blocks of 4 tokens.
    let mut s = scheduler(Setup { num_blocks: 6, max_model_len: 24, ..Setup::default() });
    s.add_request(request("a", prompt(8, 0), params(12))).unwrap();
    s.add_request(request("b", prompt(8, 100), params(12))).unwrap();
    let mut in_flight = s.schedule();
    let mut preempted = false;
    for _ in 0..12 {
        let (next, _) = pipelined_step(&mut s, &in_flight, 50);
        preempted |= !next.preempted_req_ids.is_empty();
        for id in &next.preempted_req_ids {
            let r = s.get_request(id).unwrap();
            assert_eq!((r.num_computed_tokens(), r.num_scheduled_through(), r.num_tokens_with_pending()), (0, 0, r.num_tokens()));
        }
        in_flight = next;
        if !s.has_unfinished_requests() {
            break;
        }
    }
    assert!(preempted, "the pool should have forced a preemption");
}
