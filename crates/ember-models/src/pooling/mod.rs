//! Turning per-token hidden states into one embedding per input, as sentence-transformers does.
//!
//! - [`config`]: `modules.json` + the Pooling module's `config.json` (legacy
//!   `pooling_mode_*_token` flags or sentence-transformers 6's `pooling_mode`) + whether a
//!   Normalize module follows → [`PoolerConfig`]; vLLM's defaults when a folder has none.
//! - [`pooler`]: [`Pooler`], on the device: CLS / last-token rows, or mean-style weighted sums
//!   (one matmul), then L2 normalisation.
//! - [`dimensions`]: matryoshka (`matryoshka_dimensions` / `is_matryoshka` in config.json) and
//!   the `dimensions` request parameter: check, truncate, re-normalise.

pub mod config;
pub mod dimensions;
pub mod pooler;

pub use config::{PoolerConfig, PoolingType};
pub use dimensions::Matryoshka;
pub use pooler::Pooler;
