//! The building blocks of the decoder (and the encoders' LayerNorm), each generic over the burn
//! backend.

mod attention;
mod layer_input;
mod layer_norm;
mod linear;
mod mlp;
mod norm;
mod rope;

pub use attention::AttentionBlock;
pub use layer_input::LayerInput;
pub use layer_norm::LayerNorm;
pub use linear::Linear;
pub use mlp::{GatedMlp, activate};
pub use norm::RmsNorm;
pub use rope::RotaryEmbedding;
