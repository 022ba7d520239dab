//! Start-up and shutdown: bind the listener first (so `/health` answers 503 while loading),
//! load the engine on a blocking thread, compile the chat template, warm the kernels up with
//! one tiny request (a generation, or an embedding on embedding models), then mark the server
//! ready. Ctrl-C or SIGTERM stops accepting
//! connections and gives in-flight requests a few seconds to finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use ember_engine::{AsyncEngine, EngineArgs, EngineError, EngineInfo, PromptInput, SamplingParams, Task, UsageContext};
use tokio::net::TcpListener;
use tokio::sync::{Notify, oneshot};

use crate::chat_template::ChatTemplate;
use crate::config::ServerConfig;
use crate::router::router;
use crate::state::{AppState, Ready};

/// How long in-flight requests may run after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound (port in use, bad host).
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// `host:port`.
        addr: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The engine could not be built.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// `--chat-template` does not compile.
    #[error("{0}")]
    ChatTemplate(String),
    /// The HTTP server failed.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
}

/// Progress callbacks for the command line (spinner, log lines).
#[derive(Default)]
pub struct ServeHooks {
    /// Called once listening, before the model loads.
    pub on_listening: Option<Box<dyn FnOnce(SocketAddr) + Send>>,
    /// Called once the engine is loaded and warmed up, before requests are served.
    pub on_ready: Option<Box<dyn FnOnce(&EngineInfo, SocketAddr) + Send>>,
}

/// Runs the server until Ctrl-C / SIGTERM, or until loading fails. The engine is built in the
/// server usage context ([`UsageContext::OpenAiApiServer`], whatever `engine_args` says, as
/// vLLM's api_server does): unset scheduler limits get the serving defaults.
pub async fn run(config: ServerConfig, mut engine_args: EngineArgs, mut hooks: ServeHooks) -> Result<(), ServeError> {
    engine_args.usage_context = UsageContext::OpenAiApiServer;
    let addr = format!("{}:{}", config.host, config.port);
    let listener = TcpListener::bind(&addr).await.map_err(|source| ServeError::Bind { addr: addr.clone(), source })?;
    let local = listener.local_addr()?;
    if let Some(hook) = hooks.on_listening.take() {
        hook(local);
    }
    let state = Arc::new(AppState::new(config));

    let (failed_tx, failed_rx) = oneshot::channel::<ServeError>();
    let loader_state = Arc::clone(&state);
    let on_ready = hooks.on_ready.take();
    tokio::spawn(async move {
        match load(&loader_state, engine_args).await {
            Ok(()) => {
                if let (Some(hook), Ok(ready)) = (on_ready, loader_state.ready()) {
                    hook(ready.engine.info(), local);
                }
            }
            Err(e) => {
                let _ = failed_tx.send(e);
            }
        }
    });

    let stop = Arc::new(Notify::new());
    let stop_signal = Arc::clone(&stop);
    let (load_error_tx, load_error_rx) = oneshot::channel::<ServeError>();
    let shutdown = async move {
        tokio::select! {
            _ = shutdown_signal() => tracing::info!("shutting down"),
            Ok(e) = failed_rx => { let _ = load_error_tx.send(e); }
        }
        stop_signal.notify_one();
    };
    // TCP_NODELAY on every connection: streamed chunks are small writes, and with Nagle's
    // algorithm a keep-alive client's delayed ACK held each one back by ~40 ms (TTFT and ITL
    // inflated for every client that reuses connections, as the openai SDK does).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
    });
    let server = axum::serve(listener, router(state)).with_graceful_shutdown(shutdown);
    tokio::select! {
        result = server => result?,
        _ = async { stop.notified().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => {
            tracing::warn!("requests still running after {}s; closing them", SHUTDOWN_GRACE.as_secs());
        }
    }
    match load_error_rx.await {
        Ok(e) => Err(e),
        Err(_) => Ok(()),
    }
}

/// Loads the engine, compiles the chat template, warms up, and marks the state ready.
async fn load(state: &AppState, engine_args: EngineArgs) -> Result<(), ServeError> {
    let engine = tokio::task::spawn_blocking(move || AsyncEngine::start(engine_args))
        .await
        .map_err(|e| EngineError::InvalidArgs(format!("the loader thread failed: {e}")))??;
    let chat_template = chat_template(state, &engine)?;
    if state.config.warm_up {
        warm_up(&engine).await;
        state.metrics.set_baseline(engine.snapshot());
    }
    state.set_ready(Ready { engine, chat_template });
    Ok(())
}

/// `--chat-template` (an error if it does not compile), else the tokenizer's (a warning if it
/// does not compile: the server then answers chat requests with a 400 saying so).
fn chat_template(state: &AppState, engine: &AsyncEngine) -> Result<Option<ChatTemplate>, ServeError> {
    let tokenizer = engine.tokenizer();
    let config = tokenizer.config();
    let build = |source: String| ChatTemplate::new(source, config.bos_token.clone(), config.eos_token.clone());
    if let Some(source) = &state.config.chat_template {
        return build(source.clone()).map(Some).map_err(|e| ServeError::ChatTemplate(format!("--chat-template: {e}")));
    }
    match tokenizer.chat_template().map(|t| build(t.to_string())) {
        None => {
            tracing::warn!("the model has no chat template: /v1/chat/completions needs --chat-template");
            Ok(None)
        }
        Some(Ok(t)) => Ok(Some(t)),
        Some(Err(e)) => {
            tracing::warn!("the model's chat template cannot be used ({e}); pass --chat-template to serve chat requests");
            Ok(None)
        }
    }
}

/// One tiny request through prefill and decode (embedding models: one embedding), so kernels
/// compile before the first user.
async fn warm_up(engine: &AsyncEngine) {
    if engine.info().task == Task::Embed {
        let tokens = engine.tokenizer().encode("Hello", true).ok().filter(|t| !t.is_empty()).unwrap_or_else(|| vec![0]);
        if let Err(e) = engine.embed("ember-warm-up".into(), vec![tokens], None).await {
            tracing::warn!("warm-up embedding failed: {e}");
        }
        return;
    }
    let params = SamplingParams { max_tokens: Some(2), ignore_eos: true, ..SamplingParams::greedy() };
    let token = engine.tokenizer().bos_token_id().unwrap_or(0);
    let mut stream = engine.generate("ember-warm-up".into(), PromptInput::Tokens(vec![token]), params);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            tracing::warn!("warm-up request failed: {e}");
            return;
        }
    }
    // The engine publishes its counters right after the step that finished the request.
    for _ in 0..100 {
        let s = engine.snapshot();
        if s.num_requests_running == 0 && s.generation_tokens_total > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
