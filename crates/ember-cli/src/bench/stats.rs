//! Statistics shared by the benchmarks: mean, median, population standard deviation and
//! percentiles with linear interpolation between the closest ranks (numpy's default, which
//! is what vLLM's benchmarks report), plus the Poisson arrival schedule of `bench serve`.
//!
//! Empty samples give 0 everywhere, as vLLM reports a metric that has no sample (e.g. TPOT
//! when every request produced a single token).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Arithmetic mean; 0 for an empty sample.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

/// Population standard deviation (numpy's `std`, `ddof = 0`); 0 for an empty sample.
pub fn std_dev(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let m = mean(values);
    (values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / values.len() as f64).sqrt()
}

/// The 50th percentile.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

/// The `p`-th percentile (`p` in `[0, 100]`): the sorted sample at fractional rank
/// `p / 100 * (n - 1)`, interpolated linearly between its two neighbours.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = p.clamp(0.0, 100.0) / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

/// How a percentile is labelled: `99` → "99", `99.9` → "99.9" (vLLM's `P99`, `P99.9`).
pub fn percentile_label(p: f64) -> String {
    if p.fract() == 0.0 { format!("{p:.0}") } else { format!("{p}") }
}

/// Mean, median, standard deviation and the requested percentiles of one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Arithmetic mean.
    pub mean: f64,
    /// 50th percentile.
    pub median: f64,
    /// Population standard deviation.
    pub std: f64,
    /// `(p, value)` per requested percentile, in the order asked.
    pub percentiles: Vec<(f64, f64)>,
}

impl Summary {
    /// Summarises `values` with the percentiles `ps`.
    pub fn of(values: &[f64], ps: &[f64]) -> Self {
        Self {
            mean: mean(values),
            median: median(values),
            std: std_dev(values),
            percentiles: ps.iter().map(|&p| (p, percentile(values, p))).collect(),
        }
    }
}

/// Start offsets in seconds, from the benchmark's start, of `n` requests arriving as a Poisson
/// process of `rate` requests per second: the first at 0, then exponential gaps of mean
/// `1 / rate` drawn from a generator seeded with `seed`. An infinite (or non-positive) rate
/// sends everything at once.
pub fn poisson_arrivals(n: usize, rate: f64, seed: u64) -> Vec<f64> {
    if !rate.is_finite() || rate <= 0.0 {
        return vec![0.0; n];
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut t = 0.0;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(t);
        // Uniform in (0, 1]: 53 random bits, shifted off zero; inverse CDF of Exp(rate).
        let u = ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
        t += -u.ln() / rate;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn percentiles_interpolate_like_numpy() {
        // numpy.percentile([1, 2, 3, 4], [0, 25, 50, 90, 99, 100]) = 1, 1.75, 2.5, 3.7, 3.97, 4
        let v = [4.0, 1.0, 3.0, 2.0];
        let expected = [(0.0, 1.0), (25.0, 1.75), (50.0, 2.5), (90.0, 3.7), (99.0, 3.97), (100.0, 4.0)];
        for (p, want) in expected {
            assert!(close(percentile(&v, p), want), "p{p}: {} vs {want}", percentile(&v, p));
        }
        // numpy.percentile([10, 20, 30, 40, 1000], 99) = 961.6; median 30.
        let w = [10.0, 1000.0, 20.0, 40.0, 30.0];
        assert!(close(percentile(&w, 99.0), 961.6));
        assert!(close(median(&w), 30.0));
        assert!(close(percentile(&[7.0], 99.0), 7.0));
    }

    #[test]
    fn mean_std_and_empty_samples() {
        let v = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        assert!(close(mean(&v), 5.0));
        assert!(close(std_dev(&v), 2.0)); // numpy.std (ddof=0)
        assert_eq!(Summary::of(&[], &[99.0]), Summary { mean: 0.0, median: 0.0, std: 0.0, percentiles: vec![(99.0, 0.0)] });
        let s = Summary::of(&[1.0, 2.0, 3.0], &[50.0, 99.9]);
        assert!(close(s.median, 2.0) && close(s.percentiles[1].1, 2.998));
    }

    #[test]
    fn percentile_labels() {
        assert_eq!(percentile_label(99.0), "99");
        assert_eq!(percentile_label(99.9), "99.9");
        assert_eq!(percentile_label(50.0), "50");
    }

    #[test]
    fn infinite_rate_sends_everything_at_once() {
        assert_eq!(poisson_arrivals(3, f64::INFINITY, 0), vec![0.0; 3]);
        assert_eq!(poisson_arrivals(2, 0.0, 0), vec![0.0; 2]);
    }

    #[test]
    fn poisson_schedule_is_seeded_increasing_with_exponential_gaps() {
        let a = poisson_arrivals(20_000, 4.0, 7);
        assert_eq!(a, poisson_arrivals(20_000, 4.0, 7));
        assert_ne!(a, poisson_arrivals(20_000, 4.0, 8));
        assert_eq!(a[0], 0.0);
        let gaps: Vec<f64> = a.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.iter().all(|&g| g > 0.0));
        // Exp(4): mean 0.25, standard deviation 0.25, P(gap > 0.5) = e^-2 ≈ 0.1353.
        // With 20k gaps the standard errors are ~0.0018 (mean) and ~0.0024 (tail share).
        assert!((mean(&gaps) - 0.25).abs() < 0.01, "mean gap {}", mean(&gaps));
        assert!((std_dev(&gaps) - 0.25).abs() < 0.015, "std {}", std_dev(&gaps));
        let tail = gaps.iter().filter(|&&g| g > 0.5).count() as f64 / gaps.len() as f64;
        assert!((tail - (-2.0f64).exp()).abs() < 0.012, "tail share {tail}");
    }
}
