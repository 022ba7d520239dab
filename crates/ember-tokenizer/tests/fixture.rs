//! The repo's byte-level BPE fixture (`tests/fixtures/models/llama3`) loads with
//! its configs, round-trips text and streams consistently.

mod common;

use std::path::PathBuf;

use common::SAMPLE;
use ember_tokenizer::{IncrementalDetokenizer, TokenId, Tokenizer};
use proptest::prelude::*;

fn llama3() -> Tokenizer {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/models/llama3");
    Tokenizer::from_files(
        &dir.join("tokenizer.json"),
        Some(&dir.join("tokenizer_config.json")),
        Some(&dir.join("generation_config.json")),
    )
    .unwrap()
}

#[test]
fn fixture_configs_and_round_trip() {
    let tok = llama3();
    let cfg = tok.config().clone();
    let eos = tok.eos_token_ids();
    let from_generation = &tok.generation_config().eos_token_id;
    assert!(!eos.is_empty() && eos.starts_with(from_generation));
    if let Some(id) = cfg.eos_token.as_deref().and_then(|t| tok.token_to_id(t)) {
        assert!(eos.contains(&id));
    }
    assert!(tok.chat_template().is_some());
    let ids = tok.encode(SAMPLE, true).unwrap();
    if let Some(bos) = tok
        .bos_token_id()
        .filter(|_| cfg.add_bos_token == Some(true))
    {
        assert_eq!(ids[0], bos);
        assert_ne!(ids.get(1), Some(&bos), "BOS added once");
    }
    assert_eq!(tok.decode(&ids, true).unwrap(), SAMPLE);
    for id in 0..tok.vocab_size() as TokenId {
        let _ = tok.id_to_token(id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn fixture_streaming_matches_full_decode(
        ids in proptest::collection::vec(any::<u32>(), 0..48),
        skip in any::<bool>(),
    ) {
        let tok = llama3();
        let ids: Vec<TokenId> = ids.into_iter().map(|i| i % tok.vocab_size() as u32).collect();
        let mut detok = IncrementalDetokenizer::new(&[], skip);
        let mut streamed = String::new();
        for id in &ids {
            streamed.push_str(&detok.push(&tok, &[*id]).unwrap());
        }
        streamed.push_str(&detok.finish(&tok).unwrap());
        prop_assert_eq!(streamed, tok.decode(&ids, skip).unwrap());
    }
}
