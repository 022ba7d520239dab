//! [`ApiError`]: every way a request can fail, and the one exhaustive mapping from a failure to
//! an HTTP status and OpenAI's error body `{"error": {"message", "type", "param", "code"}}`.
//!
//! Handlers return `Result<_, ApiError>`; nothing else builds error responses, so the status of
//! a failure is decided here and only here.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ember_engine::RequestError;
use serde::Serialize;

/// A failed request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The body is not valid JSON (or not a JSON object).
    #[error("{0}")]
    MalformedJson(String),
    /// A field is missing, has the wrong type or an out-of-range value.
    #[error("{message}")]
    InvalidField {
        /// The offending field (OpenAI's `param`), when known.
        param: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The request is well formed but cannot be served (prompt too long, template error...).
    #[error("{0}")]
    BadRequest(String),
    /// A feature the request asks for is not supported by this server.
    #[error("{0}")]
    Unsupported(String),
    /// The `model` field names no served model.
    #[error("The model `{0}` does not exist.")]
    ModelNotFound(String),
    /// Missing or wrong API key.
    #[error("Unauthorized: missing or invalid API key")]
    Unauthorized,
    /// No route for this path.
    #[error("Not found: {0}")]
    RouteNotFound(String),
    /// The route exists but not for this HTTP method.
    #[error("Method not allowed")]
    MethodNotAllowed,
    /// The model is still loading.
    #[error("The model is still loading; retry when /health returns 200")]
    Loading,
    /// The engine failed (a bug or a device error), or a handler panicked.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// An out-of-range or wrongly typed field.
    pub fn field(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField { param: Some(param.into()), message: message.into() }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) | Self::InvalidField { .. } | Self::BadRequest(_) | Self::Unsupported(_) => {
                StatusCode::BAD_REQUEST
            }
            Self::ModelNotFound(_) | Self::RouteNotFound(_) => StatusCode::NOT_FOUND,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Loading => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// OpenAI's `type` (vLLM's spelling: the HTTP error's class name).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MalformedJson(_) | Self::InvalidField { .. } | Self::BadRequest(_) | Self::Unsupported(_) => {
                "BadRequestError"
            }
            Self::ModelNotFound(_) | Self::RouteNotFound(_) => "NotFoundError",
            Self::Unauthorized => "AuthenticationError",
            Self::MethodNotAllowed => "MethodNotAllowedError",
            Self::Loading => "ServiceUnavailableError",
            Self::Internal(_) => "InternalServerError",
        }
    }

    /// OpenAI's `param`: the request field at fault, when one is.
    pub fn param(&self) -> Option<&str> {
        match self {
            Self::InvalidField { param, .. } => param.as_deref(),
            Self::ModelNotFound(_) => Some("model"),
            _ => None,
        }
    }

    /// The error body (also sent as an SSE event when a stream fails after it started).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorInfo {
                message: self.to_string(),
                kind: self.kind(),
                param: self.param().map(str::to_string),
                code: self.status().as_u16(),
            },
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(e: RequestError) -> Self {
        match e {
            RequestError::Invalid(m) => Self::BadRequest(m),
            RequestError::Internal(m) => Self::Internal(m),
        }
    }
}

/// `{"error": {...}}`.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorInfo,
}

/// OpenAI's error object.
#[derive(Debug, Clone, Serialize)]
pub struct ErrorInfo {
    /// Human-readable message.
    pub message: String,
    /// Error class, e.g. `BadRequestError`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The request field at fault, or null.
    pub param: Option<String>,
    /// The HTTP status code.
    pub code: u16,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if matches!(self, Self::Internal(_)) {
            tracing::error!("internal error: {self}");
        }
        (self.status(), Json(self.body())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_types() {
        let cases = [
            (ApiError::MalformedJson("x".into()), 400, "BadRequestError"),
            (ApiError::field("temperature", "bad"), 400, "BadRequestError"),
            (ApiError::ModelNotFound("m".into()), 404, "NotFoundError"),
            (ApiError::Unauthorized, 401, "AuthenticationError"),
            (ApiError::Loading, 503, "ServiceUnavailableError"),
            (ApiError::Internal("boom".into()), 500, "InternalServerError"),
        ];
        for (e, status, kind) in cases {
            assert_eq!(e.status().as_u16(), status, "{e:?}");
            assert_eq!(e.body().error.kind, kind);
            assert_eq!(e.body().error.code, status);
        }
        let body = serde_json::to_value(ApiError::field("top_p", "must be in (0, 1]").body()).unwrap();
        assert_eq!(body["error"]["param"], "top_p");
        assert_eq!(body["error"]["type"], "BadRequestError");
        assert_eq!(ApiError::ModelNotFound("x".into()).to_string(), "The model `x` does not exist.");
    }
}
