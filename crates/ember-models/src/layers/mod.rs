//! The building blocks of the decoder, each generic over the burn backend.

mod attention;
mod linear;
mod mlp;
mod norm;
mod rope;

pub use attention::AttentionBlock;
pub use linear::Linear;
pub use mlp::GatedMlp;
pub use norm::RmsNorm;
pub use rope::{RopeTables, RotaryEmbedding};
