//! Fan-out of an `n > 1` request into `n` child requests that share one prompt computation.
//!
//! Child `i` gets id `"{i}_{parent_id}"` (vLLM's convention), `n = 1`, and, when the parent is
//! seeded, seed `seed + i` so that children differ but stay reproducible. Child 0 is the
//! *leader*: a normal request. Children `1..n` carry `fork_of = Some(leader id)`: the scheduler
//! keeps them waiting until the leader has computed its prompt, then they take references on
//! the leader's prompt blocks instead of recomputing them (copy-on-write protects the shared
//! partially filled block). Prompt logprobs, when asked for, come from the leader only.

use std::sync::Arc;

use crate::ids::{RequestId, TokenId};
use crate::request::Request;
use crate::sampling_params::SamplingParams;

/// The id of child `index` of `parent_id`: `"{index}_{parent_id}"`.
pub fn child_request_id(index: usize, parent_id: &str) -> RequestId {
    format!("{index}_{parent_id}")
}

/// Splits a child id back into `(index, parent_id)`; `None` if it is not of that form.
pub fn parse_child_request_id(child_id: &str) -> Option<(usize, &str)> {
    let (index, parent) = child_id.split_once('_')?;
    Some((index.parse().ok()?, parent))
}

/// Builds the `params.n` child requests of one parent request (a single child, the leader, when
/// `n <= 1`). Add them to the scheduler in the returned order.
pub fn fan_out(
    parent_id: &str,
    prompt_token_ids: Vec<TokenId>,
    params: &SamplingParams,
    eos_token_ids: Vec<TokenId>,
) -> Vec<Request> {
    let n = params.n.max(1);
    let leader_id = child_request_id(0, parent_id);
    let shared = Arc::new(SamplingParams {
        n: 1,
        ..params.clone()
    });
    (0..n)
        .map(|i| {
            let child_params = match params.seed {
                Some(seed) => Arc::new(SamplingParams {
                    seed: Some(seed.wrapping_add(i as u64)),
                    ..(*shared).clone()
                }),
                None => Arc::clone(&shared),
            };
            let child = Request::new(
                child_request_id(i, parent_id),
                prompt_token_ids.clone(),
                child_params,
                eos_token_ids.clone(),
            );
            if i == 0 {
                child
            } else {
                child.with_fork_of(leader_id.clone())
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_seeds_and_leader() {
        let params = SamplingParams {
            n: 3,
            seed: Some(10),
            ..Default::default()
        };
        let children = fan_out("req-1", vec![1, 2], &params, vec![0]);
        let ids: Vec<&str> = children.iter().map(|c| c.request_id()).collect();
        assert_eq!(ids, vec!["0_req-1", "1_req-1", "2_req-1"]);
        assert_eq!(children[0].fork_of(), None);
        assert_eq!(children[1].fork_of(), Some("0_req-1"));
        assert_eq!(children[2].fork_of(), Some("0_req-1"));
        let seeds: Vec<_> = children.iter().map(|c| c.sampling_params().seed).collect();
        assert_eq!(seeds, vec![Some(10), Some(11), Some(12)]);
        assert!(children.iter().all(|c| c.sampling_params().n == 1));
        assert_eq!(parse_child_request_id("2_req_x"), Some((2, "req_x")));
        assert_eq!(parse_child_request_id("abc"), None);
    }

    #[test]
    fn single_child_for_n_one() {
        let children = fan_out("p", vec![1], &SamplingParams::default(), vec![]);
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].fork_of(), None);
    }
}
