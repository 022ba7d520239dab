//! `POST /v1/completions`: prompts in every OpenAI form, `echo`, `logprobs`, `best_of`,
//! `n`, and vLLM's extras. Non-streaming responses are built here; streams in
//! [`super::completions_stream`].

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use ember_engine::{RequestOutput, Tokenizer};

use crate::error::ApiError;
use crate::extract::{JsonBody, parse};
use crate::generation::{check_prompt, finish_all, max_tokens_field, submit};
use crate::logprobs::{CompletionLogprobs, TokenRenderer, prompt_entries, prompt_logprobs_json};
use crate::protocol::common::{Usage, UsageMode, random_id, stop_reason_json, unix_now};
use crate::protocol::completion::{
    CompletionChoice, CompletionRequest, CompletionResponse, DEFAULT_COMPLETION_MAX_TOKENS, PromptItem, parse_prompts,
};
use crate::sampling::{EndpointLimits, SamplingFields, check_logprobs_limit};
use crate::state::AppState;
use crate::streaming::{single_event_stream, sse_response};

use super::completions_stream::CompletionChunks;

/// What the response needs to know about the request, shared with the stream builder.
pub struct CompletionContext {
    /// `cmpl-…`.
    pub id: String,
    /// Unix seconds.
    pub created: u64,
    /// Served model name.
    pub model: String,
    /// Choices per prompt in the response.
    pub n: usize,
    /// Prepend the prompt to the text.
    pub echo: bool,
    /// Alternatives per token in `logprobs`, when asked for.
    pub logprobs: Option<usize>,
    /// Alternatives per prompt token in `prompt_logprobs`, when asked for.
    pub prompt_logprobs: Option<usize>,
    /// Render tokens as `token_id:N`.
    pub tokens_as_ids: bool,
    /// Per prompt: its text (for `echo`) and its token count.
    pub prompts: Vec<(String, usize)>,
    /// Usage reporting in streams.
    pub usage_mode: UsageMode,
    /// The tokenizer (for logprob tokens).
    pub tokenizer: Arc<Tokenizer>,
}

impl CompletionContext {
    /// The logprob token renderer.
    pub fn renderer(&self) -> TokenRenderer<'_> {
        TokenRenderer { tokenizer: &self.tokenizer, as_ids: self.tokens_as_ids }
    }
}

/// The handler.
pub async fn create_completion(State(state): State<Arc<AppState>>, JsonBody(body): JsonBody) -> Result<Response, ApiError> {
    let req: CompletionRequest = parse(&body)?;
    let fields: SamplingFields = parse(&body)?;
    state.check_model(req.model.as_deref())?;
    let ready = state.ready()?;
    if req.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::Unsupported("suffix is not supported: fill-in-the-middle completions are not implemented yet".into()));
    }
    let engine = &ready.engine;
    let tokenizer = Arc::clone(engine.tokenizer());
    let info = engine.info();
    let defaults = engine.generation_defaults();
    let max_logprobs = state.config.max_logprobs;
    let logprobs = req.logprobs.map(|k| usize::try_from(k).map_err(|_| ApiError::field("logprobs", "logprobs must be non-negative"))).transpose()?;
    check_logprobs_limit("logprobs", logprobs, max_logprobs)?;
    let n = fields.n()?;
    let best_of = fields.best_of.filter(|&b| b as usize != n);
    let echo = req.echo.unwrap_or(false);

    // max_tokens: absent = 16, null = up to the context; the model's max_new_tokens caps defaults.
    let explicit = body.get("max_tokens").is_some_and(|v| !v.is_null());
    let requested = if explicit { max_tokens_field("max_tokens", req.max_tokens)? } else { None };
    let default = if body.get("max_tokens").is_none() { Some(DEFAULT_COMPLETION_MAX_TOKENS) } else { None };
    let default = match (default, defaults.max_new_tokens) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };

    let add_special = req.add_special_tokens.unwrap_or(true);
    let mut engine_prompts = Vec::new();
    let mut prompts = Vec::new();
    for item in parse_prompts(&req.prompt)? {
        let (text, ids) = match item {
            PromptItem::Text(text) => {
                let ids = tokenizer.encode(&text, add_special).map_err(|e| ApiError::BadRequest(e.to_string()))?;
                (text, ids)
            }
            PromptItem::Tokens(ids) => (tokenizer.decode(&ids, false).unwrap_or_default(), ids),
        };
        let max_tokens = check_prompt(&ids, info, requested, default)?;
        let limits = EndpointLimits { max_tokens, logprobs, max_logprobs, vocab_size: info.vocab_size };
        let mut params = fields.to_params(defaults, &limits)?;
        if echo && logprobs.is_some() {
            params.prompt_logprobs = params.prompt_logprobs.max(logprobs);
        }
        if let Some(best_of) = best_of {
            // Generate best_of samples, keep the n most likely (needs their cumulative logprob).
            params.n = best_of as usize;
            params.best_of = None;
            params.logprobs = params.logprobs.or(Some(0));
        }
        prompts.push((text, ids.len()));
        engine_prompts.push((ids, params));
    }

    let ctx = CompletionContext {
        id: random_id("cmpl"),
        created: unix_now(),
        model: state.config.model_name().to_string(),
        n,
        echo,
        logprobs,
        prompt_logprobs: fields.prompt_logprobs.and_then(|k| usize::try_from(k).ok()),
        tokens_as_ids: fields.tokens_as_ids(state.config.return_tokens_as_token_ids),
        prompts,
        usage_mode: UsageMode::from_options(req.stream_options),
        tokenizer,
    };
    let generations = submit(engine, &state.metrics, &ctx.id, engine_prompts);
    let stream = req.stream.unwrap_or(false);
    if stream && best_of.is_none() {
        return Ok(sse_response(generations, CompletionChunks::new(ctx)));
    }
    let outputs = finish_all(generations).await?;
    let response = build_response(&ctx, outputs, best_of.is_some())?;
    if stream {
        // Like vLLM: best_of != n is not streamed; the whole response comes as one event.
        let json = serde_json::to_string(&response).map_err(|e| ApiError::Internal(e.to_string()))?;
        return Ok(single_event_stream(json));
    }
    Ok(Json(response).into_response())
}

/// The non-streaming response.
fn build_response(ctx: &CompletionContext, outputs: Vec<RequestOutput>, best_of: bool) -> Result<CompletionResponse, ApiError> {
    let mut choices = Vec::new();
    let mut usage = Usage::default();
    for (prompt_index, mut out) in outputs.into_iter().enumerate() {
        let (prompt_text, prompt_len) = ctx.prompts.get(prompt_index).cloned().unwrap_or_default();
        usage.prompt_tokens += prompt_len;
        if best_of {
            keep_most_likely(&mut out, ctx.n);
        }
        for c in &out.outputs {
            if c.finish_reason == Some("abort") {
                return Err(ApiError::Internal("the request was aborted".into()));
            }
            usage.completion_tokens += c.token_ids.len();
            let logprobs = ctx.logprobs.map(|k| {
                let mut lp = CompletionLogprobs::default();
                let mut offset = 0;
                if ctx.echo {
                    lp.extend(&prompt_entries(&out), k, ctx.renderer(), &mut offset);
                }
                let generated: Vec<_> = c.logprobs.iter().flatten().map(|p| (p.token.token_id, Some(p))).collect();
                lp.extend(&generated, k, ctx.renderer(), &mut offset);
                lp
            });
            let text = if ctx.echo { format!("{prompt_text}{}", c.text) } else { c.text.clone() };
            choices.push(CompletionChoice {
                index: prompt_index * ctx.n + c.index,
                text,
                logprobs,
                finish_reason: c.finish_reason,
                stop_reason: stop_reason_json(c.stop_reason.as_ref()),
                prompt_logprobs: ctx
                    .prompt_logprobs
                    .map(|k| prompt_logprobs_json(out.prompt_logprobs.as_deref().unwrap_or(&[]), k, ctx.renderer())),
            });
        }
    }
    usage.total_tokens = usage.prompt_tokens + usage.completion_tokens;
    Ok(CompletionResponse {
        id: ctx.id.clone(),
        object: "text_completion",
        created: ctx.created,
        model: ctx.model.clone(),
        choices,
        usage: Some(Some(usage)),
    })
}

/// `best_of`: keeps the `n` samples with the highest cumulative logprob, renumbered.
fn keep_most_likely(out: &mut RequestOutput, n: usize) {
    out.outputs.sort_by(|a, b| {
        let (a, b) = (a.cumulative_logprob.unwrap_or(f64::MIN), b.cumulative_logprob.unwrap_or(f64::MIN));
        b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal)
    });
    out.outputs.truncate(n);
    for (i, c) in out.outputs.iter_mut().enumerate() {
        c.index = i;
    }
}
