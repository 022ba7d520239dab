//! `POST /tokenize` and `POST /detokenize` (vLLM's utility endpoints): text or chat messages
//! to token ids with the served model's tokenizer and chat template, and back.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;

use super::chat::render_chat;
use crate::chat_template::RenderOptions;
use crate::error::ApiError;
use crate::extract::{JsonBody, parse};
use crate::protocol::tokenize::{DetokenizeRequest, DetokenizeResponse, TokenizeRequest, TokenizeResponse};
use crate::state::AppState;

/// `/tokenize`.
pub async fn tokenize(State(state): State<Arc<AppState>>, JsonBody(body): JsonBody) -> Result<Json<TokenizeResponse>, ApiError> {
    let req: TokenizeRequest = parse(&body)?;
    state.check_model(req.model.as_deref())?;
    let ready = state.ready()?;
    let tokenizer = ready.engine.tokenizer();
    let (text, add_special) = match (&req.prompt, &req.messages) {
        (Some(prompt), None) => (prompt.clone(), req.add_special_tokens.unwrap_or(true)),
        (None, Some(messages)) => {
            let extra = RenderOptions { kwargs: req.chat_template_kwargs.clone().unwrap_or_default(), ..Default::default() };
            let text = render_chat(ready, messages, req.add_generation_prompt, req.continue_final_message, extra)?;
            (text, req.add_special_tokens.unwrap_or(false))
        }
        (Some(_), Some(_)) => return Err(ApiError::BadRequest("give either `prompt` or `messages`, not both".into())),
        (None, None) => return Err(ApiError::field("prompt", "`prompt` (or `messages`) is required")),
    };
    let tokens = tokenizer.encode(&text, add_special).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let token_strs = req
        .return_token_strs
        .unwrap_or(false)
        .then(|| tokens.iter().map(|&t| tokenizer.id_to_token(t).unwrap_or_default()).collect());
    Ok(Json(TokenizeResponse { count: tokens.len(), max_model_len: ready.engine.info().max_model_len, tokens, token_strs }))
}

/// `/detokenize`.
pub async fn detokenize(State(state): State<Arc<AppState>>, JsonBody(body): JsonBody) -> Result<Json<DetokenizeResponse>, ApiError> {
    let req: DetokenizeRequest = parse(&body)?;
    state.check_model(req.model.as_deref())?;
    let ready = state.ready()?;
    let vocab_size = ready.engine.info().vocab_size.max(ready.engine.tokenizer().vocab_size());
    let ids = req
        .tokens
        .iter()
        .map(|&t| match u32::try_from(t) {
            Ok(id) if (id as usize) < vocab_size => Ok(id),
            _ => Err(ApiError::field("tokens", format!("token id {t} is out of vocabulary (size {vocab_size})"))),
        })
        .collect::<Result<Vec<u32>, _>>()?;
    let prompt = ready.engine.tokenizer().decode(&ids, false).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok(Json(DetokenizeResponse { prompt }))
}
