//! The intended streaming loop: detokenize incrementally, check stop strings
//! on each delta, and only send text that cannot still become a stop string.

mod common;

use common::byte_level;
use ember_tokenizer::{IncrementalDetokenizer, StopMatch, StopStringMatcher, TokenId, Tokenizer};

/// Runs the loop one token at a time; returns (chunks sent, final text, stop).
fn serve(
    tok: &Tokenizer,
    ids: &[TokenId],
    stops: &[&str],
    include: bool,
) -> (Vec<String>, String, Option<StopMatch>) {
    let mut detok = IncrementalDetokenizer::new(&[], true);
    let mut matcher =
        StopStringMatcher::new(stops.iter().map(|s| s.to_string()).collect(), include);
    let (mut text, mut sent, mut chunks) = (String::new(), 0usize, Vec::new());
    let mut send = |text: &str, upto: usize, sent: &mut usize| {
        if upto > *sent {
            chunks.push(text[*sent..upto].to_string());
            *sent = upto;
        }
    };
    for id in ids {
        let delta = detok.push(tok, &[*id]).unwrap();
        text.push_str(&delta);
        if let Some(hit) = matcher.check(&text, delta.len()) {
            text.truncate(hit.truncate_to);
            send(&text, text.len(), &mut sent);
            return (chunks, text, Some(hit));
        }
        let upto = matcher.streamable_len(&text);
        send(&text, upto, &mut sent);
    }
    text.push_str(&detok.finish(tok).unwrap());
    send(&text, text.len(), &mut sent);
    (chunks, text, None)
}

#[test]
fn stop_string_split_across_tokens_is_never_sent() {
    let tok = byte_level();
    let ids = tok.encode("Hello world! STOP and more", false).unwrap();
    let (chunks, text, hit) = serve(&tok, &ids, &["STOP"], false);
    assert_eq!(text, "Hello world! ");
    assert_eq!(hit.unwrap().stop, "STOP");
    assert!(chunks.iter().all(|c| !c.contains('S')), "{chunks:?}");
    assert_eq!(chunks.concat(), text);

    let (chunks, text, _) = serve(&tok, &ids, &["STOP"], true);
    assert_eq!(text, "Hello world! STOP");
    assert_eq!(chunks.concat(), text);
}

#[test]
fn held_back_prefix_is_released_when_it_does_not_become_a_stop() {
    let tok = byte_level();
    let ids = tok.encode("a </b> c </s", false).unwrap();
    let (chunks, text, hit) = serve(&tok, &ids, &["</s>"], false);
    assert_eq!(hit, None);
    assert_eq!(text, "a </b> c </s");
    assert_eq!(chunks.concat(), text);
    assert_eq!(
        chunks.last().unwrap(),
        "</s",
        "the possible prefix waits for the end"
    );

    let ids = tok.encode("世界 🙂 end", false).unwrap();
    let (_, text, hit) = serve(&tok, &ids, &["🙂"], false);
    assert_eq!(
        (text.as_str(), hit.map(|h| h.truncate_to)),
        ("世界 ", Some("世界 ".len()))
    );
}
