//! One module per endpoint family. Each handler parses its body into protocol types, checks
//! the `model` field, asks [`crate::state::AppState::ready`] for the engine (503 while
//! loading) and returns `Result<_, ApiError>`.

pub mod chat;
pub mod chat_stream;
pub mod completions;
pub mod completions_stream;
pub mod embeddings;
pub mod info;
pub mod tokenize;
