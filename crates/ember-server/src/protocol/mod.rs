//! The OpenAI / vLLM wire types: requests as they arrive (every field optional where OpenAI's
//! is, so that `null` and absence both mean "default") and responses as they leave.

pub mod chat;
pub mod common;
pub mod completion;
pub mod embeddings;
pub mod models;
pub mod tokenize;
