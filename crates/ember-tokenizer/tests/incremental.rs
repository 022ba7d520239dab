//! IncrementalDetokenizer on real byte-level and sentencepiece-style tokenizers:
//! split UTF-8, leading spaces, special tokens, flushing, and a property test
//! that streamed deltas always add up to the one-shot decode.

mod common;

use common::{SAMPLE, byte_level, sentencepiece};
use ember_tokenizer::{IncrementalDetokenizer, TokenId, Tokenizer};
use proptest::prelude::*;

/// Streams `ids` in chunks of `chunk`; returns the deltas (push results, then finish).
fn stream(
    tok: &Tokenizer,
    prompt: &[TokenId],
    ids: &[TokenId],
    chunk: usize,
    skip: bool,
) -> Vec<String> {
    let mut detok = IncrementalDetokenizer::new(prompt, skip);
    let mut deltas: Vec<String> = ids
        .chunks(chunk.max(1))
        .map(|c| detok.push(tok, c).unwrap())
        .collect();
    deltas.push(detok.finish(tok).unwrap());
    assert_eq!(detok.output_text(), deltas.concat());
    assert_eq!(detok.output_token_ids(), ids);
    deltas
}

#[test]
fn multibyte_characters_split_across_tokens_are_held_back_not_broken() {
    for tok in [byte_level(), sentencepiece()] {
        let ids = tok.encode(SAMPLE, false).unwrap();
        let deltas = stream(&tok, &[], &ids, 1, true);
        assert!(deltas.iter().all(|d| !d.contains('\u{FFFD}')), "{deltas:?}");
        assert!(
            deltas.iter().any(String::is_empty),
            "some token must complete no character"
        );
        assert_eq!(deltas.concat(), SAMPLE);
    }
}

#[test]
fn emoji_split_in_two_tokens_appears_whole_with_the_second() {
    let tok = byte_level();
    let ids = tok.encode("a🙂", false).unwrap();
    assert_eq!(ids.len(), 3, "fixture splits 🙂 into two partial tokens");
    let mut detok = IncrementalDetokenizer::new(&[], true);
    assert_eq!(detok.push(&tok, &ids[..1]).unwrap(), "a");
    assert_eq!(detok.push(&tok, &ids[1..2]).unwrap(), "");
    assert_eq!(detok.push(&tok, &ids[2..]).unwrap(), "🙂");
    assert_eq!(detok.finish(&tok).unwrap(), "");
}

#[test]
fn leading_spaces_survive_the_window() {
    let tok = sentencepiece();
    let ids = tok.encode("Hello world the", false).unwrap();
    assert_eq!(
        stream(&tok, &[], &ids, 1, true),
        ["Hello", " world", " the", ""]
    );

    // After a prompt, the first token keeps its space (context decides).
    let prompt = tok.encode("Hi", true).unwrap();
    let out = tok.encode("Hello world", false).unwrap();
    assert_eq!(
        stream(&tok, &prompt, &out, 1, true).concat(),
        " Hello world"
    );

    let bl = byte_level();
    let prompt = bl.encode("Say:", true).unwrap();
    let out = bl.encode("  two  spaces", false).unwrap();
    assert_eq!(
        stream(&bl, &prompt, &out, 1, true).concat(),
        "  two  spaces"
    );
}

#[test]
fn special_tokens_are_skipped_or_kept() {
    let tok = byte_level();
    let eot = tok.token_to_id("<|eot_id|>").unwrap();
    let mut ids = tok.encode("Hello", false).unwrap();
    ids.push(eot);
    ids.extend(tok.encode(" world", false).unwrap());
    assert_eq!(stream(&tok, &[], &ids, 1, true).concat(), "Hello world");
    assert_eq!(
        stream(&tok, &[], &ids, 1, false).concat(),
        "Hello<|eot_id|> world"
    );
}

#[test]
fn finish_flushes_an_incomplete_tail() {
    let tok = byte_level();
    let ids = tok.encode("ok🙂", false).unwrap();
    let truncated = &ids[..ids.len() - 1];
    let mut detok = IncrementalDetokenizer::new(&[], true);
    assert_eq!(detok.push(&tok, truncated).unwrap(), "ok");
    let tail = detok.finish(&tok).unwrap();
    assert_eq!(tail, "\u{FFFD}");
    assert_eq!(detok.output_text(), tok.decode(truncated, true).unwrap());
    assert_eq!(
        detok.finish(&tok).unwrap(),
        "",
        "a second finish is a no-op"
    );
}

fn check_random(
    tok: &Tokenizer,
    ids: &[TokenId],
    chunk: usize,
    skip: bool,
) -> Result<(), TestCaseError> {
    let deltas = stream(tok, &[], ids, chunk, skip);
    prop_assert_eq!(deltas.concat(), tok.decode(ids, skip).unwrap());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn deltas_add_up_to_the_full_decode_byte_level(
        ids in proptest::collection::vec(0u32..300, 0..40),
        chunk in 1usize..5,
        skip in any::<bool>(),
    ) {
        let tok = byte_level();
        let ids: Vec<TokenId> = ids.into_iter().map(|i| i % tok.vocab_size() as u32).collect();
        check_random(&tok, &ids, chunk, skip)?;
    }

    #[test]
    fn deltas_add_up_to_the_full_decode_sentencepiece(
        pieces in proptest::collection::vec((any::<char>(), 0u32..60, any::<bool>()), 0..30),
        chunk in 1usize..5,
        skip in any::<bool>(),
    ) {
        // Byte-fallback tokens only ever come as whole UTF-8 characters here:
        // the ByteFallback decoder replaces a whole run of bytes when any of it
        // is invalid, so arbitrary byte ids cannot stream prefix-consistently.
        let tok = sentencepiece();
        let mut ids = Vec::new();
        for (c, piece, as_bytes) in pieces {
            if as_bytes {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    ids.push(tok.token_to_id(&format!("<0x{b:02X}>")).unwrap());
                }
            } else {
                // Specials (0..3) or vocabulary pieces (after the 256 byte tokens).
                ids.push(if piece < 3 { piece } else { 259 + piece % (tok.vocab_size() as u32 - 259) });
            }
        }
        check_random(&tok, &ids, chunk, skip)?;
    }

    #[test]
    fn arbitrary_ids_never_fail_sentencepiece(
        ids in proptest::collection::vec(0u32..400, 0..40),
        chunk in 1usize..5,
    ) {
        let tok = sentencepiece();
        let ids: Vec<TokenId> = ids.into_iter().map(|i| i % tok.vocab_size() as u32).collect();
        let streamed = stream(&tok, &[], &ids, chunk, true).concat();
        let full = tok.decode(&ids, true).unwrap();
        if !full.contains(char::REPLACEMENT_CHARACTER) {
            prop_assert_eq!(streamed, full);
        }
    }

    #[test]
    fn deltas_after_a_prompt_match_the_output_text(
        words in proptest::collection::vec(
            prop::sample::select(vec!["Hello", " world", " café", " 世界", " 🙂", "  ", "\n", "é", "ï", " the"]),
            1..12),
        chunk in 1usize..4,
    ) {
        let text = words.concat();
        let tok = byte_level();
        let prompt = tok.encode("Prompt 🙂:", true).unwrap();
        let out = tok.encode(&text, false).unwrap();
        let deltas = stream(&tok, &prompt, &out, chunk, true);
        let clean = deltas.iter().all(|d| !d.contains(char::REPLACEMENT_CHARACTER));
        prop_assert!(clean, "replacement char in {:?}", deltas);
        prop_assert_eq!(deltas.concat(), text);
    }
}
