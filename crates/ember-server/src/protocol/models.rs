//! `/v1/models` and `/version` response shapes.

use serde::Serialize;

/// `/v1/models`.
#[derive(Debug, Clone, Serialize)]
pub struct ModelList {
    /// Always `list`.
    pub object: &'static str,
    /// One card per served name.
    pub data: Vec<ModelCard>,
}

/// One served model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelCard {
    /// The served name (what requests put in `model`).
    pub id: String,
    /// Always `model`.
    pub object: &'static str,
    /// Unix seconds (server start).
    pub created: u64,
    /// `ember`.
    pub owned_by: &'static str,
    /// The model folder or hub id.
    pub root: String,
    /// No fine-tune parent.
    pub parent: Option<String>,
    /// The context length (vLLM extension).
    pub max_model_len: usize,
}

/// `/version`.
#[derive(Debug, Clone, Serialize)]
pub struct Version {
    /// Ember's version.
    pub version: &'static str,
}
