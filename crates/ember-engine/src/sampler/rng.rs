//! Per-request random generators. Each request owns a ChaCha generator seeded from its `seed`
//! (or, when it has none, from the engine's generator, itself seeded by `--seed`); one uniform
//! number is drawn per sampled token, so a seeded request's tokens do not depend on the batch.

use std::collections::HashMap;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Generators of the requests alive in the runner.
pub(crate) struct RequestGenerators {
    engine: ChaCha8Rng,
    per_request: HashMap<String, ChaCha8Rng>,
}

impl RequestGenerators {
    /// `seed` seeds the generator used for requests without their own seed.
    pub(crate) fn new(seed: u64) -> Self {
        Self { engine: ChaCha8Rng::seed_from_u64(seed), per_request: HashMap::new() }
    }

    /// Draws a uniform number in (0, 1) for `request_id`.
    pub(crate) fn uniform(&mut self, request_id: &str, seed: Option<u64>) -> f32 {
        let engine = &mut self.engine;
        let rng = self
            .per_request
            .entry(request_id.to_string())
            .or_insert_with(|| ChaCha8Rng::seed_from_u64(seed.unwrap_or_else(|| engine.next_u64())));
        // 24 random bits, centred in their bucket: never exactly 0 or 1.
        ((rng.next_u32() >> 8) as f32 + 0.5) / (1u32 << 24) as f32
    }

    /// Forgets finished requests.
    pub(crate) fn remove(&mut self, request_id: &str) {
        self.per_request.remove(request_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_streams_ignore_other_requests() {
        let mut a = RequestGenerators::new(0);
        let mut b = RequestGenerators::new(99);
        let first: Vec<f32> = (0..4).map(|_| a.uniform("r", Some(7))).collect();
        b.uniform("other", None);
        let second: Vec<f32> = (0..4).map(|_| b.uniform("r", Some(7))).collect();
        assert_eq!(first, second);
        assert!(first.iter().all(|u| *u > 0.0 && *u < 1.0));
    }
}
