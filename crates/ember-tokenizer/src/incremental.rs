//! [`IncrementalDetokenizer`]: streaming text deltas from generated token ids,
//! with vLLM's prefix/read-offset scheme.
//!
//! Each new token is decoded inside a small window starting at `prefix_offset`
//! (tokens already emitted, kept as context so decoders that drop or add a
//! leading space depending on the previous token behave as in a full decode).
//! The delta is the window's text minus the text of its already-read part.
//! While the window's text ends in U+FFFD (a multi-byte character split across
//! byte tokens) nothing is emitted and the offsets stay put.

use crate::TokenId;
use crate::error::Result;
use crate::tokenizer::Tokenizer;

/// How many prompt tokens are kept as decoding context for the first output token.
const PROMPT_CONTEXT: usize = 5;
const REPLACEMENT: char = '\u{FFFD}';

/// Turns generated ids into text deltas that are safe to stream.
///
/// Concatenating every [`push`](Self::push) result and the final
/// [`finish`](Self::finish) equals decoding the whole output at once (for a
/// prompt-free start; with a prompt, the first token may keep a leading space
/// that a standalone decode would strip).
#[derive(Debug, Clone)]
pub struct IncrementalDetokenizer {
    /// The last few prompt ids, then every output id.
    ids: Vec<TokenId>,
    /// How many of `ids` are prompt context.
    prompt_len: usize,
    /// Start of the decoding window.
    prefix_offset: usize,
    /// End of the part of the window whose text was already emitted.
    read_offset: usize,
    skip_special_tokens: bool,
    output: String,
}

impl IncrementalDetokenizer {
    /// Starts a stream after `prompt_token_ids` (only their tail is kept, as context).
    pub fn new(prompt_token_ids: &[TokenId], skip_special_tokens: bool) -> Self {
        let tail = &prompt_token_ids[prompt_token_ids.len().saturating_sub(PROMPT_CONTEXT)..];
        Self {
            ids: tail.to_vec(),
            prompt_len: tail.len(),
            prefix_offset: 0,
            read_offset: tail.len(),
            skip_special_tokens,
            output: String::new(),
        }
    }

    /// Appends generated ids and returns the newly decodable text (possibly
    /// empty while a character is incomplete).
    pub fn push(&mut self, tokenizer: &Tokenizer, new_ids: &[TokenId]) -> Result<String> {
        let mut delta = String::new();
        for &id in new_ids {
            self.ids.push(id);
            if let Some(text) = self.step(tokenizer, false)? {
                delta.push_str(&text);
            }
        }
        Ok(delta)
    }

    /// Emits whatever is still held back (e.g. an incomplete character at the
    /// end of generation, rendered as U+FFFD). Call once the sequence is done.
    pub fn finish(&mut self, tokenizer: &Tokenizer) -> Result<String> {
        Ok(self.step(tokenizer, true)?.unwrap_or_default())
    }

    /// All text emitted so far (including the final flush).
    pub fn output_text(&self) -> &str {
        &self.output
    }

    /// All generated ids pushed so far.
    pub fn output_token_ids(&self) -> &[TokenId] {
        &self.ids[self.prompt_len..]
    }

    /// Decodes the current window; emits and advances unless the text is
    /// incomplete (trailing U+FFFD or no growth). `flush` emits regardless.
    fn step(&mut self, tokenizer: &Tokenizer, flush: bool) -> Result<Option<String>> {
        if self.read_offset >= self.ids.len() {
            return Ok(None);
        }
        let skip = self.skip_special_tokens;
        let prefix_text =
            tokenizer.decode(&self.ids[self.prefix_offset..self.read_offset], skip)?;
        let new_text = tokenizer.decode(&self.ids[self.prefix_offset..], skip)?;
        let incomplete = new_text.len() <= prefix_text.len() || new_text.ends_with(REPLACEMENT);
        if incomplete && !flush {
            return Ok(None);
        }
        let delta = text_after(&new_text, &prefix_text).to_string();
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        self.output.push_str(&delta);
        Ok(Some(delta))
    }
}

/// The part of `new_text` after `prefix_text`. Normally `prefix_text` is a
/// prefix; if the decoder rewrote it (e.g. a U+FFFD completed into a real
/// character), everything after their longest common prefix is new.
fn text_after<'a>(new_text: &'a str, prefix_text: &str) -> &'a str {
    if let Some(rest) = new_text.strip_prefix(prefix_text) {
        return rest;
    }
    let common = new_text
        .char_indices()
        .zip(prefix_text.chars())
        .find(|((_, a), b)| a != b)
        .map_or_else(|| new_text.len().min(prefix_text.len()), |((i, _), _)| i);
    // `common` is a char boundary of new_text by construction.
    new_text.get(common..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::text_after;

    #[test]
    fn text_after_handles_rewritten_prefixes() {
        assert_eq!(text_after("hello world", "hello"), " world");
        assert_eq!(text_after("caf\u{e9}!", "caf\u{FFFD}"), "\u{e9}!");
        assert_eq!(text_after("ab", "abc"), "");
        assert_eq!(text_after("", ""), "");
    }
}
