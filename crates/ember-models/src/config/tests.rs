//! Config parsing against the committed fixtures (both config styles) and error cases.

use std::path::PathBuf;

use super::*;

fn fixture(name: &str) -> ModelConfig {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/models")
        .join(name)
        .join("config.json");
    ModelConfig::from_file(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn legacy_llama3_config_with_rope_scaling() {
    let c = fixture("llama3");
    assert_eq!(c.family, Family::Llama);
    assert_eq!((c.num_heads, c.num_kv_heads, c.head_dim), (4, 2, 16));
    assert!(matches!(c.rope.scaling, RopeScaling::Llama3 { factor, .. } if factor == 8.0));
    assert_eq!(c.rope.theta, 5e5);
    assert_eq!(c.checkpoint_dtype.as_deref(), Some("bfloat16"));
    assert!(!c.tie_word_embeddings && !c.qkv_bias);
}

#[test]
fn mistral_slides_every_layer() {
    let c = fixture("mistral");
    assert_eq!(c.layer_windows, vec![Some(16); c.num_layers]);
}

#[test]
fn qwen2_has_qkv_bias_but_no_o_bias_and_ties() {
    let c = fixture("qwen2");
    assert!(c.qkv_bias && !c.o_bias && c.tie_word_embeddings);
    assert_eq!(c.vocab_size, 512);
}

#[test]
fn qwen3_explicit_head_dim_and_qk_norm() {
    let c = fixture("qwen3");
    assert_eq!(c.head_dim, 32);
    assert!(c.spec.qk_norm);
    assert_eq!(c.layer_windows, vec![None, None]);
    assert_eq!(c.rope.theta, 1e6);
}

#[test]
fn gemma_families() {
    let g = fixture("gemma");
    assert_eq!(g.activation, Activation::GeluTanh);
    assert_eq!(g.spec.norm, NormStyle::OnePlusWeight);
    assert!(g.tie_word_embeddings && g.spec.scale_embeddings);
    let g2 = fixture("gemma2");
    assert_eq!(g2.layer_windows, vec![Some(8), None, Some(8), None]);
    assert_eq!(g2.attn_logit_softcap, Some(10.0));
    assert_eq!(g2.final_logit_softcap, Some(30.0));
    assert!((g2.attn_scale - 24f32.powf(-0.5)).abs() < 1e-7);
    assert!(g2.spec.sandwich_norms);
}

#[test]
fn missing_and_impossible_fields_are_named() {
    let mut raw: RawHfConfig = serde_json::from_str(
        r#"{"architectures":["LlamaForCausalLM"],"hidden_size":64,"num_attention_heads":4,
            "num_hidden_layers":2,"intermediate_size":128,"vocab_size":100}"#,
    )
    .unwrap();
    let err = ModelConfig::from_raw(&raw).unwrap_err().to_string();
    assert!(err.contains("max_position_embeddings"), "{err}");
    raw.max_position_embeddings = Some(64);
    raw.num_key_value_heads = Some(3);
    let err = ModelConfig::from_raw(&raw).unwrap_err().to_string();
    assert!(err.contains("num_key_value_heads"), "{err}");
    raw.num_key_value_heads = Some(2);
    raw.layer_types = Some(vec!["sliding_attention".into(), "full_attention".into()]);
    let err = ModelConfig::from_raw(&raw).unwrap_err().to_string();
    assert!(err.contains("sliding_window"), "{err}");
}
