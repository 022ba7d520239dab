//! Test fixtures: two small but real `tokenizer.json` files written to a temp
//! dir, so tests depend on nothing outside the repo.
//!
//! * `byte_level` — GPT-2/Llama-3 style byte-level BPE: 256 byte tokens plus
//!   merges, some of which end in the middle of a UTF-8 character.
//! * `sentencepiece` — Llama-2 style: Metaspace (`▁`) BPE with byte fallback
//!   and a decoder that strips the leading space of the text.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ember_tokenizer::Tokenizer;
use serde_json::{Value, json};

pub const BYTE_LEVEL_SPECIALS: [&str; 3] = ["<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>"];
pub const SAMPLE: &str = "Hello world! naïve café — 世界 🙂\n  two  spaces";

/// GPT-2's reversible byte -> printable char map.
pub fn byte_to_char(b: u8) -> char {
    let printable = |b: u8| {
        (b'!'..=b'~').contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    if printable(b) {
        return char::from(b);
    }
    let shift = (0..b).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + shift).unwrap()
}

fn bl(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| byte_to_char(b)).collect()
}

/// Merges as byte strings; each side must already be in the vocab.
const BYTE_MERGES: &[(&[u8], &[u8])] = &[
    (b"H", b"e"),
    (b"l", b"l"),
    (b"He", b"ll"),
    (b"Hell", b"o"),
    (b" ", b"w"),
    (b"o", b"r"),
    (b" w", b"or"),
    (b"l", b"d"),
    (b" wor", b"ld"),
    (b" ", b" "),
    (b" ", b"t"),
    (b"a", b"f"),
    (b" ", b"c"),
    (b" c", b"af"),
    (b"\xC3", b"\xA9"), // é, complete
    (b"\xF0", b"\x9F"), // first half of 🙂: ends mid-character
    (b"\x99", b"\x82"), // second half of 🙂: starts mid-character
    (b"\xB8", b"\x96"), // tail of 世
    (b" ", b"\xE4"),
    (b" \xE4", b"\xB8\x96"), // " 世" made of a partial piece
];

fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

fn template_bos(bos: &str, id: u32) -> Value {
    json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": bos, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {bos: {"id": bos, "ids": [id], "tokens": [bos]}}
    })
}

fn added(id: u32, content: &str, special: bool) -> Value {
    json!({"id": id, "content": content, "single_word": false, "lstrip": false,
           "rstrip": false, "normalized": false, "special": special})
}

/// Writes the byte-level fixture (tokenizer.json, tokenizer_config.json,
/// generation_config.json) into `dir` and returns their paths.
pub fn write_byte_level(dir: &Path) -> [PathBuf; 3] {
    let mut vocab: BTreeMap<String, u32> = (0..=255u8).map(|b| (bl(&[b]), b as u32)).collect();
    let mut merges = Vec::new();
    for (a, b) in BYTE_MERGES {
        let (a, b) = (bl(a), bl(b));
        assert!(
            vocab.contains_key(&a) && vocab.contains_key(&b),
            "fixture merge {a} {b}"
        );
        let next = vocab.len() as u32;
        vocab.entry(format!("{a}{b}")).or_insert(next);
        merges.push(json!([a, b]));
    }
    let first_special = vocab.len() as u32;
    let mut added_tokens: Vec<Value> = BYTE_LEVEL_SPECIALS
        .iter()
        .enumerate()
        .map(|(i, s)| added(first_special + i as u32, s, true))
        .collect();
    // An added but non-special token: kept even with skip_special_tokens.
    added_tokens.push(added(first_special + 3, "<tool>", false));
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": added_tokens,
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": template_bos(BYTE_LEVEL_SPECIALS[0], first_special),
        "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    let config = json!({
        "bos_token": BYTE_LEVEL_SPECIALS[0],
        "eos_token": {"content": BYTE_LEVEL_SPECIALS[2], "special": true},
        "chat_template": "{% for m in messages %}{{ m.content }}{% endfor %}",
        "model_max_length": 131072
    });
    let generation = json!({
        "bos_token_id": first_special,
        "eos_token_id": [first_special + 1, first_special + 2],
        "temperature": 0.6, "top_p": 0.9, "do_sample": true
    });
    [
        write_json(dir, "tokenizer.json", &tokenizer),
        write_json(dir, "tokenizer_config.json", &config),
        write_json(dir, "generation_config.json", &generation),
    ]
}

/// Writes the sentencepiece-style fixture (tokenizer.json and a
/// tokenizer_config.json with `add_bos_token: true`) into `dir`.
pub fn write_sentencepiece(dir: &Path) -> [PathBuf; 2] {
    let mut vocab: BTreeMap<String, u32> = BTreeMap::new();
    for (i, s) in ["<unk>", "<s>", "</s>"].iter().enumerate() {
        vocab.insert(s.to_string(), i as u32);
    }
    for b in 0..=255u32 {
        vocab.insert(format!("<0x{b:02X}>"), 3 + b);
    }
    let chars = "▁abcdefghijklmnopqrstuvwxyzHW!.é";
    for c in chars.chars() {
        let next = vocab.len() as u32;
        vocab.insert(c.to_string(), next);
    }
    let merge_list = [
        ("▁", "H"),
        ("e", "l"),
        ("▁H", "el"),
        ("l", "o"),
        ("▁Hel", "lo"),
        ("▁", "w"),
        ("o", "r"),
        ("▁w", "or"),
        ("l", "d"),
        ("▁wor", "ld"),
        ("▁", "t"),
        ("h", "e"),
        ("▁t", "he"),
        ("▁", "▁"),
    ];
    let mut merges = Vec::new();
    for (a, b) in merge_list {
        let next = vocab.len() as u32;
        vocab.entry(format!("{a}{b}")).or_insert(next);
        merges.push(json!([a, b]));
    }
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null,
        "added_tokens": [added(0, "<unk>", true), added(1, "<s>", true), added(2, "</s>", true)],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
                  "ignore_merges": false, "vocab": vocab, "merges": merges}
    });
    let config = json!({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true,
                        "model_max_length": 1e30});
    [
        write_json(dir, "tokenizer.json", &tokenizer),
        write_json(dir, "tokenizer_config.json", &config),
    ]
}

/// Loads the byte-level fixture from a fresh temp dir.
pub fn byte_level() -> Tokenizer {
    let dir = tempfile::tempdir().unwrap();
    let [t, c, g] = write_byte_level(dir.path());
    Tokenizer::from_files(&t, Some(&c), Some(&g)).unwrap()
}

/// Loads the sentencepiece-style fixture from a fresh temp dir.
pub fn sentencepiece() -> Tokenizer {
    let dir = tempfile::tempdir().unwrap();
    let [t, c] = write_sentencepiece(dir.path());
    Tokenizer::from_files(&t, Some(&c), None).unwrap()
}
