//! [`ChatTemplate`]: a Hugging Face chat template compiled once with minijinja, configured like
//! transformers' environment (`trim_blocks`, `lstrip_blocks`, loop controls) and with its
//! extensions: `raise_exception`, `strftime_now`, a `tojson` that does not HTML-escape, and
//! Python's string/dict methods (`.strip()`, `.startswith()`, `.items()`… via
//! minijinja-contrib's pycompat).
//!
//! A template that raises (Gemma's "System role not supported") or fails to render becomes a
//! 400 carrying the template's own message. `continue_final_message` cuts the rendered prompt
//! right after the last message's content, as transformers does.

use minijinja::value::{Kwargs, Serde};
use minijinja::{Environment, Error, ErrorKind, Value as JinjaValue};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::time_format::strftime_now;

/// What a request asks of the template.
#[derive(Debug, Clone, Default)]
pub struct RenderOptions {
    /// End with the assistant header.
    pub add_generation_prompt: bool,
    /// Leave the last message open.
    pub continue_final_message: bool,
    /// `tools`, passed through.
    pub tools: Option<Value>,
    /// `documents`, passed through.
    pub documents: Option<Value>,
    /// Extra variables (`chat_template_kwargs`).
    pub kwargs: Map<String, Value>,
}

/// A compiled chat template plus the special tokens it may refer to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
}

const NAME: &str = "chat_template";

impl ChatTemplate {
    /// Compiles `source`; a syntax error is reported with its line.
    pub fn new(source: String, bos_token: Option<String>, eos_token: Option<String>) -> Result<Self, String> {
        let mut env = Environment::new();
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .build()
                .map_err(|e| e.to_string())?,
        );
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", raise_exception);
        env.add_function("strftime_now", |format: String| strftime_now(&format));
        env.add_filter("tojson", tojson);
        env.add_template_owned(NAME, source).map_err(|e| format!("invalid chat template: {e:#}"))?;
        Ok(Self { env, bos_token: bos_token.unwrap_or_default(), eos_token: eos_token.unwrap_or_default() })
    }

    /// Renders the conversation (messages already checked by the protocol layer).
    pub fn render(&self, messages: &[Value], options: &RenderOptions) -> Result<String, ApiError> {
        let mut ctx = Map::new();
        ctx.insert("messages".into(), Value::Array(messages.to_vec()));
        ctx.insert("add_generation_prompt".into(), Value::Bool(options.add_generation_prompt));
        ctx.insert("bos_token".into(), Value::String(self.bos_token.clone()));
        ctx.insert("eos_token".into(), Value::String(self.eos_token.clone()));
        ctx.insert("tools".into(), options.tools.clone().unwrap_or(Value::Null));
        ctx.insert("documents".into(), options.documents.clone().unwrap_or(Value::Null));
        for (k, v) in &options.kwargs {
            ctx.insert(k.clone(), v.clone());
        }
        let template = self.env.get_template(NAME).map_err(template_error)?;
        let rendered = template.render(JinjaValue::from(Serde(Value::Object(ctx)))).map_err(template_error)?;
        if options.continue_final_message {
            return cut_after_final_message(rendered, messages);
        }
        Ok(rendered)
    }
}

/// Keeps the rendered prompt up to the end of the last message's content.
fn cut_after_final_message(rendered: String, messages: &[Value]) -> Result<String, ApiError> {
    let last = messages.last().and_then(|m| m.get("content")).and_then(Value::as_str).unwrap_or("");
    let found = [last, last.trim()]
        .into_iter()
        .filter(|needle| !needle.is_empty())
        .find_map(|needle| rendered.rfind(needle).map(|at| at + needle.len()));
    match found {
        Some(end) => Ok(rendered[..end].to_string()),
        None if last.trim().is_empty() => Ok(rendered),
        None => Err(ApiError::BadRequest(
            "continue_final_message: the final message's content does not appear in the rendered chat template".into(),
        )),
    }
}

/// `raise_exception(msg)`: the template's own error, reported verbatim.
fn raise_exception(message: String) -> Result<JinjaValue, Error> {
    Err(Error::new(ErrorKind::InvalidOperation, message))
}

/// transformers' `tojson`: plain JSON (no HTML escaping), optional `indent`.
fn tojson(value: &JinjaValue, kwargs: Kwargs) -> Result<JinjaValue, Error> {
    let indent: Option<usize> = kwargs.get("indent")?;
    let _: Option<bool> = kwargs.get("ensure_ascii")?;
    let _: Option<bool> = kwargs.get("sort_keys")?;
    kwargs.assert_all_used()?;
    let json = serde_json::to_value(value).map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    let text = match indent {
        None => serde_json::to_string(&json),
        Some(n) => {
            let spaces = " ".repeat(n);
            let formatter = serde_json::ser::PrettyFormatter::with_indent(spaces.as_bytes());
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
            serde::Serialize::serialize(&json, &mut ser).map(|_| String::from_utf8_lossy(&out).into_owned())
        }
    }
    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    Ok(JinjaValue::from_safe_string(text))
}

/// A render error as a 400: `raise_exception`'s message as is, others with their location.
fn template_error(e: Error) -> ApiError {
    let message = match (e.kind(), e.detail()) {
        (ErrorKind::InvalidOperation, Some(detail)) => detail.to_string(),
        _ => format!("chat template error: {e}"),
    };
    ApiError::BadRequest(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIXTURE: &str = "{{ bos_token }}{% for message in messages %}{% if message['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('Unsupported role: ' + message['role']) }}{% endif %}{{ '<|' + message['role'] + '|>\\n' + message['content'] + '<|end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}";

    fn template(src: &str) -> ChatTemplate {
        ChatTemplate::new(src.to_string(), Some("<s>".into()), Some("</s>".into())).unwrap()
    }

    #[test]
    fn renders_like_transformers() {
        let t = template(FIXTURE);
        let msgs = [json!({"role": "system", "content": "S"}), json!({"role": "user", "content": "Hi"})];
        let opts = RenderOptions { add_generation_prompt: true, ..Default::default() };
        assert_eq!(t.render(&msgs, &opts).unwrap(), "<s><|system|>\nS<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n");
        let cont = [json!({"role": "user", "content": "Hi"}), json!({"role": "assistant", "content": "Hel"})];
        let opts = RenderOptions { continue_final_message: true, ..Default::default() };
        assert_eq!(t.render(&cont, &opts).unwrap(), "<s><|user|>\nHi<|end|>\n<|assistant|>\nHel");
        let err = t.render(&[json!({"role": "tool", "content": "x"})], &RenderOptions::default()).unwrap_err();
        assert_eq!(err.to_string(), "Unsupported role: tool");
        assert_eq!(err.status().as_u16(), 400);
    }

    #[test]
    fn hf_extensions() {
        let t = template(
            "{% for m in messages %}{% if m.role == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}\
             {{ m.content.strip().upper() }}{% if m.content.startswith(' a') %}!{% endif %}{% endfor %}\
             |{{ {'k': '<v>'} | tojson }}|{{ extra }}|{{ strftime_now('%Y') | length }}",
        );
        let mut opts = RenderOptions::default();
        opts.kwargs.insert("extra".into(), json!(7));
        assert_eq!(t.render(&[json!({"role": "user", "content": " ab "})], &opts).unwrap(), "AB!|{\"k\":\"<v>\"}|7|4");
        let e = t.render(&[json!({"role": "system", "content": "x"})], &opts).unwrap_err();
        assert_eq!(e.to_string(), "System role not supported");
        assert!(ChatTemplate::new("{% for %}".into(), None, None).is_err());
        let loops = template("{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}{{ m.content }}{% endfor %}");
        assert_eq!(loops.render(&[json!({"role": "user", "content": "a"}), json!({"role": "user", "content": "b"})], &opts).unwrap(), "a");
    }
}
