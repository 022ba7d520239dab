//! [`ServerConfig`]: what the HTTP layer needs to know besides the engine (address, API key,
//! served names, chat template override, limits). Built by `ember serve` from vLLM-named flags.

/// Server settings. Each default is `ember serve`'s (vLLM's).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Interface to bind; default `0.0.0.0` (all interfaces).
    pub host: String,
    /// TCP port; default 8000.
    pub port: u16,
    /// When set, every `/v1/*` request must send `Authorization: Bearer <key>`.
    pub api_key: Option<String>,
    /// Names the model answers to; the first is the one reported in responses. Never empty:
    /// defaults to the model argument as given (vLLM's behaviour).
    pub served_model_names: Vec<String>,
    /// The model argument (folder or hub id), reported as `root` in `/v1/models`.
    pub model_path: String,
    /// A chat template that replaces the tokenizer's (`--chat-template`, already read from its
    /// file when a path was given).
    pub chat_template: Option<String>,
    /// Largest `logprobs` / `top_logprobs` / `prompt_logprobs` a request may ask for; default 20.
    pub max_logprobs: usize,
    /// Render logprob tokens as `token_id:N` for every request (`--return-tokens-as-token-ids`).
    pub return_tokens_as_token_ids: bool,
    /// Run one tiny request before reporting ready, so the first user request does not pay for
    /// kernel compilation; default on.
    pub warm_up: bool,
}

impl ServerConfig {
    /// Defaults for a model argument.
    pub fn new(model_path: impl Into<String>) -> Self {
        let model_path = model_path.into();
        Self {
            host: "0.0.0.0".into(),
            port: 8000,
            api_key: None,
            served_model_names: vec![model_path.clone()],
            model_path,
            chat_template: None,
            max_logprobs: 20,
            return_tokens_as_token_ids: false,
            warm_up: true,
        }
    }

    /// The name reported in responses.
    pub fn model_name(&self) -> &str {
        self.served_model_names.first().map(String::as_str).unwrap_or(&self.model_path)
    }

    /// Whether `name` is one of the served names.
    pub fn serves(&self, name: &str) -> bool {
        self.served_model_names.iter().any(|n| n == name)
    }
}
