//! [`StepProfile`]: where the wall time of engine steps goes, for performance work. Off unless
//! `EMBER_PROFILE_STEPS=N` is set; then every N steps it prints to stderr, separately for pure
//! decode steps and for steps with prefill tokens, the mean milliseconds of:
//!
//! - `host`: the engine between two steps (scheduling, detokenising, output processing);
//! - `prepare`: building the step's inputs and attention metadata, and uploading them;
//! - `forward`: enqueueing the forward pass (host time: launches are asynchronous, so this is
//!   the launch cost, not the device's work);
//! - `sample`: enqueueing the LM head and the sampler;
//! - `wait`: the read-back of the sampled ids, i.e. the device work still queued when the host
//!   finished enqueueing (0 would mean the step is bound by launches, not by the device).
//!
//! With `EMBER_PROFILE_SYNC=1` the runner also waits for the device at the end of each phase,
//! so `forward` and `sample` become their device time (launches included) at the cost of the
//! overlap between host and device.
//!
//! [`ProfilerRange`]: with `EMBER_PROFILE_DECODE_SEQS=N`, the first decode step of at least N
//! sequences runs inside the device profiler's recording range (`ncu --profile-from-start
//! off` then profiles exactly that step's kernels), with the device idle before and after;
//! `EMBER_PROFILE_MIXED_TOKENS=N` does the same for the first step with prefill tokens and at
//! least N tokens in all.

use std::time::Instant;

/// Phases of one step, in order.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Phase {
    Prepare,
    Forward,
    Sample,
    Wait,
}

const NAMES: [&str; 5] = ["host", "prepare", "forward", "sample", "wait"];

#[derive(Default)]
struct Totals {
    steps: u32,
    tokens: u64,
    ms: [f64; 5],
}

/// Accumulates per-phase wall time when enabled.
pub(crate) struct StepProfile {
    /// Wait for the device at each phase's end (`EMBER_PROFILE_SYNC=1`).
    pub(crate) sync: bool,
    every: u32,
    last_end: Option<Instant>,
    mark: Instant,
    current: [f64; 5],
    /// Tokens and sequences of the step last queued.
    counts: Option<(usize, usize)>,
    decode: Totals,
    mixed: Totals,
}

impl StepProfile {
    pub(crate) fn from_env() -> Option<Self> {
        let every = std::env::var("EMBER_PROFILE_STEPS").ok()?.parse::<u32>().ok().filter(|&n| n > 0)?;
        let sync = std::env::var("EMBER_PROFILE_SYNC").is_ok_and(|v| v == "1");
        Some(Self { sync, every, last_end: None, mark: Instant::now(), current: [0.0; 5], counts: None, decode: Totals::default(), mixed: Totals::default() })
    }

    /// A step starts: the time since the previous one ended is the engine's host work.
    pub(crate) fn start(&mut self) {
        let now = Instant::now();
        self.current = [0.0; 5];
        if let Some(end) = self.last_end {
            self.current[0] = ms(now - end);
        }
        self.mark = now;
    }

    /// `phase` just finished.
    pub(crate) fn done(&mut self, phase: Phase) {
        let now = Instant::now();
        self.current[phase as usize + 1] += ms(now - self.mark);
        self.mark = now;
    }

    /// The step just queued has `tokens` over `seqs` sequences (none: it was empty).
    pub(crate) fn scheduled(&mut self, counts: Option<(usize, usize)>) {
        self.counts = counts;
    }

    /// The step's output was collected. With async scheduling the next step was queued
    /// before this one's wait: its `prepare`, `forward` and `sample` are then the next
    /// step's, and the totals still add up to the wall time between two outputs.
    pub(crate) fn end(&mut self) {
        self.last_end = Some(Instant::now());
        let Some((tokens, seqs)) = self.counts else { return };
        let totals = if tokens == seqs { &mut self.decode } else { &mut self.mixed };
        totals.steps += 1;
        totals.tokens += tokens as u64;
        for (sum, v) in totals.ms.iter_mut().zip(self.current) {
            *sum += v;
        }
        if totals.steps == self.every {
            let label = if tokens == seqs { "decode" } else { "prefill/mixed" };
            let n = f64::from(totals.steps);
            let parts: Vec<String> = NAMES.iter().zip(totals.ms).map(|(name, v)| format!("{name} {:.2}", v / n)).collect();
            let total: f64 = totals.ms.iter().sum::<f64>() / n;
            eprintln!(
                "[ember step profile] {label}: {} steps, {:.1} tokens/step, ms/step: {} = {total:.2}",
                totals.steps,
                totals.tokens as f64 / n,
                parts.join(", "),
            );
            *totals = Totals::default();
        }
    }
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The one step a device profiler records (`EMBER_PROFILE_DECODE_SEQS`, or
/// `EMBER_PROFILE_MIXED_TOKENS` for a step with prefill tokens).
pub(crate) struct ProfilerRange {
    min_seqs: Option<usize>,
    min_mixed_tokens: Option<usize>,
    done: bool,
}

impl ProfilerRange {
    pub(crate) fn from_env() -> Option<Self> {
        let read = |name: &str| std::env::var(name).ok()?.parse::<usize>().ok().filter(|&n| n > 0);
        let (min_seqs, min_mixed_tokens) = (read("EMBER_PROFILE_DECODE_SEQS"), read("EMBER_PROFILE_MIXED_TOKENS"));
        (min_seqs.is_some() || min_mixed_tokens.is_some()).then_some(Self { min_seqs, min_mixed_tokens, done: false })
    }

    /// Whether a step of `tokens` over `seqs` sequences is the one to record (once): a decode
    /// step of at least `min_seqs` sequences, or a step with prefill tokens of at least
    /// `min_mixed_tokens` tokens.
    pub(crate) fn take(&mut self, tokens: usize, seqs: usize) -> bool {
        let decode = tokens == seqs && self.min_seqs.is_some_and(|n| seqs >= n);
        let mixed = tokens != seqs && self.min_mixed_tokens.is_some_and(|n| tokens >= n);
        let hit = !self.done && (decode || mixed);
        self.done |= hit;
        hit
    }
}
