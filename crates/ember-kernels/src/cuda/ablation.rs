//! Kernel ablation, a profiling tool: `EMBER_ABLATE=norm,attention,square_gemv` makes the CUDA
//! backend skip those kernels in one-token steps (single-stream decode), returning an input of
//! the same shape instead, so that `ember bench latency` measures what each class of kernel
//! costs inside the decode step graph (the difference to a run without it), launch latencies
//! and overlaps included, which timing kernels one by one (ncu) does not show. The generated
//! tokens are wrong by design: never set it outside such a measurement (the engine logs a
//! warning when it is set). docs/perf.md, "eighth pass", has the method and the numbers.
//!
//! - `norm`: the RMSNorm (with its residual add) returns its input;
//! - `attention`: paged attention returns the query;
//! - `square_gemv`: a one-row GEMV whose weight is square (Llama's o_proj) returns its input.

use std::sync::OnceLock;

/// A kernel class that can be skipped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Ablation {
    Norm,
    Attention,
    SquareGemv,
}

impl Ablation {
    fn name(self) -> &'static str {
        match self {
            Ablation::Norm => "norm",
            Ablation::Attention => "attention",
            Ablation::SquareGemv => "square_gemv",
        }
    }
}

/// Whether `what` is skipped for a step of `rows` rows (only one-row steps are).
pub(super) fn ablated(what: Ablation, rows: usize) -> bool {
    static SET: OnceLock<Vec<String>> = OnceLock::new();
    let set = SET.get_or_init(|| {
        let set: Vec<String> = std::env::var("EMBER_ABLATE").unwrap_or_default().split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect();
        if !set.is_empty() {
            tracing::warn!(ablated = ?set, "EMBER_ABLATE is set: these kernels are skipped in one-token steps and the outputs are wrong (profiling only)");
        }
        set
    });
    rows == 1 && set.iter().any(|s| s == what.name())
}
