//! Per-layer attention parameters: head geometry, softmax scale, soft-capping and sliding window.

/// Static parameters of one attention layer.
///
/// These are data, not code: the model families differ only in these values
/// (e.g. Gemma2 sets `logit_softcap` and alternates `sliding_window` between layers).
#[derive(Debug, Clone, PartialEq)]
pub struct AttentionParams {
    /// Number of query heads.
    pub num_heads: usize,
    /// Number of key/value heads (`num_heads` must be a multiple: grouped-query attention).
    pub num_kv_heads: usize,
    /// Size of each head.
    pub head_dim: usize,
    /// Multiplier applied to `q·k` before soft-capping and softmax (usually `head_dim^-0.5`).
    pub scale: f32,
    /// Gemma2's attention logit soft-capping: `scores = cap * tanh(scores / cap)`.
    pub logit_softcap: Option<f32>,
    /// Sliding window in tokens: a query at position `p` sees keys at positions `j` with
    /// `p - j < window` (as transformers' sliding-window causal mask). `None` = full causal.
    pub sliding_window: Option<usize>,
}

impl AttentionParams {
    /// Query heads per key/value head.
    pub fn num_queries_per_kv(&self) -> usize {
        self.num_heads / self.num_kv_heads
    }
}
