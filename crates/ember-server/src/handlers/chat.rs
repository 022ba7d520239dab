//! `POST /v1/chat/completions`: messages rendered with the chat template (tokenized without
//! adding special tokens again: templates put BOS themselves), `add_generation_prompt`,
//! `continue_final_message`, `chat_template_kwargs`, `logprobs`/`top_logprobs`, `echo`, and
//! the sampling fields. Streams are built in [`super::chat_stream`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ember_engine::{RequestOutput, Tokenizer};
use serde_json::Value;

use crate::chat_template::RenderOptions;
use crate::error::ApiError;
use crate::extract::{JsonBody, parse};
use crate::generation::{check_prompt, finish_all, max_tokens_field, submit};
use crate::logprobs::{ChatLogprobs, TokenRenderer, prompt_logprobs_json};
use crate::protocol::chat::{ChatChoice, ChatMessage, ChatRequest, ChatResponse, parse_messages};
use crate::protocol::common::{Usage, UsageMode, random_id, stop_reason_json, unix_now};
use crate::sampling::{EndpointLimits, SamplingFields, check_logprobs_limit};
use crate::state::{AppState, Ready};
use crate::streaming::sse_response;

use super::chat_stream::ChatChunks;

/// What the response needs to know about the request, shared with the stream builder.
pub struct ChatContext {
    /// `chatcmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Served model name.
    pub model: String,
    /// Choices.
    pub n: usize,
    /// The reply's role.
    pub role: String,
    /// Text prepended to the reply (`echo`).
    pub echo_prefix: Option<String>,
    /// Alternatives per token, when logprobs were asked for.
    pub top_logprobs: Option<usize>,
    /// Render tokens as `token_id:N`.
    pub tokens_as_ids: bool,
    /// Prompt tokens.
    pub prompt_tokens: usize,
    /// Usage reporting in streams.
    pub usage_mode: UsageMode,
    /// The tokenizer (for logprob tokens).
    pub tokenizer: Arc<Tokenizer>,
}

impl ChatContext {
    /// The logprob token renderer.
    pub fn renderer(&self) -> TokenRenderer<'_> {
        TokenRenderer { tokenizer: &self.tokenizer, as_ids: self.tokens_as_ids }
    }
}

/// Renders the conversation of a chat-shaped request (also used by `/tokenize`).
pub fn render_chat(
    ready: &Ready,
    messages: &[Value],
    add_generation_prompt: Option<bool>,
    continue_final_message: Option<bool>,
    extra: RenderOptions,
) -> Result<String, ApiError> {
    let messages = parse_messages(messages)?;
    let template = ready.chat_template.as_ref().ok_or_else(|| {
        ApiError::BadRequest(
            "this model has no chat template (tokenizer_config.json has none); start the server with --chat-template FILE".into(),
        )
    })?;
    let continue_final = continue_final_message.unwrap_or(false);
    if continue_final && add_generation_prompt == Some(true) {
        return Err(ApiError::BadRequest("Cannot set both `continue_final_message` and `add_generation_prompt` to true.".into()));
    }
    let options = RenderOptions {
        add_generation_prompt: add_generation_prompt.unwrap_or(!continue_final),
        continue_final_message: continue_final,
        ..extra
    };
    template.render(&messages, &options)
}

/// The handler.
pub async fn create_chat_completion(State(state): State<Arc<AppState>>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let req: ChatRequest = parse(&body)?;
    let fields: SamplingFields = parse(&body)?;
    state.check_model(req.model.as_deref())?;
    let ready = state.ready()?;
    if req.chat_template.as_deref().is_some_and(|t| !t.is_empty()) {
        return Err(ApiError::Unsupported(
            "a chat_template in the request is not accepted; start the server with --chat-template instead".into(),
        ));
    }
    match req.tool_choice.as_ref() {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s == "none" => {}
        Some(other) => {
            return Err(ApiError::Unsupported(format!("tool_choice {other} is not supported yet (no tool-call parsing)")));
        }
    }
    let engine = &ready.engine;
    let info = engine.info();
    let defaults = engine.generation_defaults();
    let max_logprobs = state.config.max_logprobs;

    let extra = RenderOptions {
        tools: req.tools.clone(),
        documents: req.documents.clone(),
        kwargs: req.chat_template_kwargs.clone().unwrap_or_default(),
        ..Default::default()
    };
    let prompt = render_chat(ready, &req.messages, req.add_generation_prompt, req.continue_final_message, extra)?;
    let tokenizer = Arc::clone(engine.tokenizer());
    let ids = tokenizer
        .encode(&prompt, req.add_special_tokens.unwrap_or(false))
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;

    let top_logprobs = match (req.logprobs.unwrap_or(false), req.top_logprobs) {
        (true, k) => Some(usize::try_from(k.unwrap_or(0)).map_err(|_| ApiError::field("top_logprobs", "top_logprobs must be non-negative"))?),
        (false, None) => None,
        (false, Some(_)) => return Err(ApiError::field("top_logprobs", "when using `top_logprobs`, `logprobs` must be set to true")),
    };
    check_logprobs_limit("top_logprobs", top_logprobs, max_logprobs)?;
    let (name, value) = match req.max_completion_tokens {
        Some(v) => ("max_completion_tokens", Some(v)),
        None => ("max_tokens", req.max_tokens),
    };
    let max_tokens = check_prompt(&ids, info, max_tokens_field(name, value)?, defaults.max_new_tokens)?;
    let limits = EndpointLimits { max_tokens, logprobs: top_logprobs, max_logprobs, vocab_size: info.vocab_size };
    let params = fields.to_params(defaults, &limits)?;

    let add_generation_prompt = req.add_generation_prompt.unwrap_or(!req.continue_final_message.unwrap_or(false));
    let last = req.messages.last();
    let last_role = last.and_then(|m| m.get("role")).and_then(Value::as_str).unwrap_or("assistant");
    let role = if add_generation_prompt { "assistant" } else { last_role }.to_string();
    let echo_prefix = (req.echo.unwrap_or(false) && last_role == role)
        .then(|| last.and_then(|m| m.get("content")).and_then(Value::as_str).unwrap_or("").to_string());
    let ctx = ChatContext {
        id: random_id("chatcmpl"),
        created: unix_now(),
        model: state.config.model_name().to_string(),
        n: params.n,
        role,
        echo_prefix,
        top_logprobs,
        tokens_as_ids: fields.tokens_as_ids(state.config.return_tokens_as_token_ids),
        prompt_tokens: ids.len(),
        usage_mode: UsageMode::from_options(req.stream_options),
        tokenizer,
    };
    let prompt_logprobs = params.prompt_logprobs;
    let generations = submit(engine, &state.metrics, &ctx.id, vec![(ids, params)]);
    if req.stream.unwrap_or(false) {
        return Ok(sse_response(generations, ChatChunks::new(ctx)));
    }
    let mut outputs = finish_all(generations).await?;
    let out = outputs.pop().ok_or_else(|| ApiError::Internal("no output".into()))?;
    Ok(Json(build_response(&ctx, &out, prompt_logprobs)?).into_response())
}

fn build_response(ctx: &ChatContext, out: &RequestOutput, prompt_logprobs: Option<usize>) -> Result<ChatResponse, ApiError> {
    let mut completion_tokens = 0;
    let mut choices = Vec::new();
    for c in &out.outputs {
        if c.finish_reason == Some("abort") {
            return Err(ApiError::Internal("the request was aborted".into()));
        }
        completion_tokens += c.token_ids.len();
        let logprobs = ctx.top_logprobs.map(|k| {
            let mut lp = ChatLogprobs::default();
            lp.extend(c.logprobs.as_deref().unwrap_or(&[]), k, ctx.renderer());
            lp
        });
        let content = match &ctx.echo_prefix {
            Some(prefix) => format!("{prefix}{}", c.text),
            None => c.text.clone(),
        };
        choices.push(ChatChoice {
            index: c.index,
            message: ChatMessage { role: ctx.role.clone(), content: Some(content), tool_calls: Vec::new() },
            logprobs,
            finish_reason: c.finish_reason,
            stop_reason: stop_reason_json(c.stop_reason.as_ref()),
        });
    }
    Ok(ChatResponse {
        id: ctx.id.clone(),
        object: "chat.completion",
        created: ctx.created,
        model: ctx.model.clone(),
        choices,
        usage: Usage::new(ctx.prompt_tokens, completion_tokens),
        prompt_logprobs: prompt_logprobs
            .map(|k| prompt_logprobs_json(out.prompt_logprobs.as_deref().unwrap_or(&[]), k, ctx.renderer())),
    })
}
