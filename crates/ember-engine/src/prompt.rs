//! A prompt as callers give it: text to tokenize, or token ids as they are.

use ember_core::TokenId;

/// A request's prompt.
#[derive(Debug, Clone, PartialEq)]
pub enum PromptInput {
    /// Text, tokenized with the model's tokenizer (special tokens such as BOS added).
    Text(String),
    /// Token ids, used verbatim.
    Tokens(Vec<TokenId>),
}

impl From<&str> for PromptInput {
    fn from(text: &str) -> Self {
        Self::Text(text.to_string())
    }
}

impl From<String> for PromptInput {
    fn from(text: String) -> Self {
        Self::Text(text)
    }
}

impl From<Vec<TokenId>> for PromptInput {
    fn from(tokens: Vec<TokenId>) -> Self {
        Self::Tokens(tokens)
    }
}
