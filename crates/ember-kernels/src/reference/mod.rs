//! Reference implementations in plain burn tensor ops: correct on every backend, used as the
//! default bodies of [`crate::PagedAttentionBackend`], [`crate::LayerOpsBackend`] and
//! [`crate::SamplingBackend`], and as the
//! oracle of kernel parity tests.

mod cache_ops;
pub mod layer_ops;
mod paged_attention;
pub mod sampling;

pub use cache_ops::{copy_blocks, reshape_and_cache};
pub use paged_attention::paged_attention;
