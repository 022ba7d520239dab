//! `POST /v1/embeddings`: tokenize the inputs, check them (vLLM refuses inputs longer than
//! the model's maximum input length with a 400 instead of truncating them, and so do we),
//! embed them on the engine thread in one request, answer floats or base64.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use ember_engine::{EMBEDDINGS_UNSUPPORTED, EmbeddingInfo, EngineInfo};

use crate::error::ApiError;
use crate::extract::{JsonBody, parse};
use crate::protocol::common::{random_id, unix_now};
use crate::protocol::embeddings::{
    EmbeddingData, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EncodingFormat,
};
use crate::state::AppState;

/// The handler.
pub async fn create_embedding(
    State(state): State<Arc<AppState>>,
    JsonBody(body): JsonBody,
) -> Result<Json<EmbeddingResponse>, ApiError> {
    let request: EmbeddingRequest = parse(&body)?;
    state.check_model(request.model.as_deref())?;
    let ready = state.ready()?;
    let engine = &ready.engine;
    let info = engine.info();
    let Some(embedding) = &info.embedding else {
        return Err(ApiError::BadRequest(EMBEDDINGS_UNSUPPORTED.into()));
    };
    let format = EncodingFormat::parse(request.encoding_format.as_deref())?;
    let dimensions = dimensions(request.dimensions, embedding)?;
    let inputs = match EmbeddingInput::parse(request.input.as_ref())? {
        EmbeddingInput::Tokens(lists) => lists,
        EmbeddingInput::Texts(texts) => texts
            .iter()
            .map(|t| engine.tokenizer().encode(t, true))
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::field("input", e.to_string()))?,
    };
    check_inputs(&inputs, info)?;
    let prompt_tokens = inputs.iter().map(Vec::len).sum();
    let id = random_id("embd");
    let vectors = engine.embed(id.clone(), inputs, dimensions).await?;
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| EmbeddingData { object: "embedding", index, embedding: format.encode(v) })
        .collect();
    Ok(Json(EmbeddingResponse {
        id,
        object: "list",
        created: unix_now(),
        model: state.config.model_name().to_string(),
        data,
        usage: EmbeddingUsage { prompt_tokens, total_tokens: prompt_tokens },
    }))
}

fn dimensions(requested: Option<i64>, embedding: &EmbeddingInfo) -> Result<Option<usize>, ApiError> {
    let Some(d) = requested else { return Ok(None) };
    let d = usize::try_from(d).ok().filter(|&d| d > 0).ok_or_else(|| {
        ApiError::field("dimensions", format!("dimensions must be a positive integer, got {d}"))
    })?;
    embedding.check_dimensions(d).map_err(|m| ApiError::field("dimensions", m))?;
    Ok(Some(d))
}

/// Lengths and vocabulary, answered with `param: input` (the engine checks again).
fn check_inputs(inputs: &[Vec<u32>], info: &EngineInfo) -> Result<(), ApiError> {
    for (i, ids) in inputs.iter().enumerate() {
        if ids.is_empty() {
            return Err(ApiError::field("input", format!("input {i} has no tokens")));
        }
        if ids.len() > info.max_model_len {
            return Err(ApiError::field(
                "input",
                format!(
                    "This model's maximum context length is {} tokens. However, you requested {} tokens in the input \
                     for embedding generation. Please reduce the length of the input.",
                    info.max_model_len,
                    ids.len()
                ),
            ));
        }
        if let Some(bad) = ids.iter().find(|&&t| t as usize >= info.vocab_size) {
            return Err(ApiError::field(
                "input",
                format!("input {i}: token id {bad} is out of vocabulary (size {})", info.vocab_size),
            ));
        }
    }
    Ok(())
}
