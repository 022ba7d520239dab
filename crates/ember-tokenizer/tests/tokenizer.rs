//! Tokenizer: loading, encode/decode, special tokens and the config files.

mod common;

use common::{BYTE_LEVEL_SPECIALS, SAMPLE, byte_level, sentencepiece, write_byte_level};
use ember_tokenizer::Tokenizer;

#[test]
fn byte_level_round_trips_and_exposes_configs() {
    let tok = byte_level();
    let bos = tok.token_to_id(BYTE_LEVEL_SPECIALS[0]).unwrap();
    let eot = tok.token_to_id("<|eot_id|>").unwrap();
    let end = tok.token_to_id("<|end_of_text|>").unwrap();

    let ids = tok.encode(SAMPLE, true).unwrap();
    assert_eq!(ids[0], bos);
    assert_eq!(tok.decode(&ids, true).unwrap(), SAMPLE);
    assert_eq!(
        tok.decode(&ids, false).unwrap(),
        format!("{}{SAMPLE}", BYTE_LEVEL_SPECIALS[0])
    );
    let plain = tok.encode(SAMPLE, false).unwrap();
    assert_eq!(plain, ids[1..]);
    // Merges were applied.
    assert_eq!(tok.encode("Hello world", false).unwrap().len(), 2);

    assert_eq!(tok.vocab_size(), eot as usize + 2); // + the non-special <tool>
    assert_eq!(tok.id_to_token(eot).as_deref(), Some("<|eot_id|>"));
    assert_eq!(tok.id_to_token(u32::MAX), None);
    assert!(tok.is_special(bos) && tok.is_special(eot));
    let tool = tok.token_to_id("<tool>").unwrap();
    assert!(!tok.is_special(tool) && !tok.is_special(0));

    // generation_config ids first, then tokenizer_config's eos (already present).
    assert_eq!(tok.eos_token_ids(), vec![end, eot]);
    assert_eq!(tok.bos_token_id(), Some(bos));
    assert_eq!(tok.generation_config().temperature, Some(0.6));
    assert_eq!(tok.generation_config().do_sample, Some(true));
    assert!(tok.chat_template().unwrap().contains("messages"));
    assert_eq!(tok.config().model_max_length, Some(131072));
}

#[test]
fn special_tokens_are_skipped_only_when_asked_and_only_if_special() {
    let tok = byte_level();
    let eot = tok.token_to_id("<|eot_id|>").unwrap();
    let tool = tok.token_to_id("<tool>").unwrap();
    let mut ids = tok.encode("Hello", false).unwrap();
    ids.extend([tool, eot]);
    assert_eq!(tok.decode(&ids, true).unwrap(), "Hello<tool>");
    assert_eq!(tok.decode(&ids, false).unwrap(), "Hello<tool><|eot_id|>");
    // Special tokens in input text are recognised as single ids.
    assert_eq!(tok.encode("a<|eot_id|>", false).unwrap().last(), Some(&eot));
}

#[test]
fn sentencepiece_style_adds_bos_and_strips_the_leading_space() {
    let tok = sentencepiece();
    let ids = tok.encode("Hello world", true).unwrap();
    // add_bos_token: true with no post-processor: BOS is prepended once.
    assert_eq!(ids[0], tok.token_to_id("<s>").unwrap());
    assert_eq!(ids.iter().filter(|&&i| i == ids[0]).count(), 1);
    assert_eq!(tok.decode(&ids, true).unwrap(), "Hello world");
    assert_eq!(tok.encode("Hello world", false).unwrap().len(), 2);
    // Characters outside the vocab fall back to bytes and still round-trip.
    let ids = tok.encode(SAMPLE, false).unwrap();
    assert_eq!(tok.decode(&ids, false).unwrap(), SAMPLE);
    assert_eq!(tok.eos_token_ids(), vec![2]);
    assert_eq!(tok.config().model_max_length, None);
    assert_eq!(tok.chat_template(), None);
}

#[test]
fn missing_and_malformed_files_are_errors_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let [t, c, g] = write_byte_level(dir.path());

    let missing = dir.path().join("absent.json");
    let msg = Tokenizer::from_files(&missing, None, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("absent.json"), "{msg}");

    let broken = dir.path().join("broken_tokenizer.json");
    std::fs::write(&broken, "{\"model\": 3}").unwrap();
    let msg = Tokenizer::from_files(&broken, None, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("broken_tokenizer.json"), "{msg}");

    std::fs::write(&c, r#"{"eos_token": ["x"]}"#).unwrap();
    let msg = Tokenizer::from_files(&t, Some(&c), None)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("tokenizer_config.json") && msg.contains("'eos_token'"),
        "{msg}"
    );

    std::fs::write(&g, "{\n  \"eos_token_id\": \"x\"\n}").unwrap();
    let msg = Tokenizer::from_files(&t, None, Some(&g))
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("generation_config.json") && msg.contains("line"),
        "{msg}"
    );

    let msg = Tokenizer::from_files(&t, Some(&missing), None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("absent.json"), "{msg}");
}
