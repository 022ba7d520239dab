//! [`JsonBody`]: the request-body extractor. It accepts any content type (clients often omit
//! it), turns malformed JSON into an OpenAI 400 instead of axum's plain-text rejection, and
//! hands handlers a `serde_json::Value` object that [`parse`] turns into typed requests with
//! errors naming the offending field.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::ApiError;

/// A JSON object request body.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::MalformedJson(format!("cannot read the request body: {e}")))?;
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::MalformedJson(format!("the request body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::MalformedJson("the request body must be a JSON object".into()));
        }
        Ok(Self(value))
    }
}

/// Deserializes a typed request from a body, naming the field at fault on error
/// (`temperature: invalid type: string "hot", expected f32`).
pub fn parse<T: DeserializeOwned>(body: &Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(body).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." || path.is_empty() {
            // serde reports missing fields at the root: "missing field `messages`".
            let param = inner.split('`').nth(1).map(str::to_string);
            ApiError::InvalidField { param, message: inner }
        } else {
            ApiError::InvalidField { message: format!("{path}: {inner}"), param: Some(path) }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Req {
        messages: Vec<String>,
        temperature: Option<f32>,
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse::<Req>(&serde_json::json!({"messages": [], "temperature": "hot"})).unwrap_err();
        assert_eq!(e.param(), Some("temperature"));
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = parse::<Req>(&serde_json::json!({"temperature": 1})).unwrap_err();
        assert_eq!(e.param(), Some("messages"));
        assert!(e.to_string().contains("missing field"), "{e}");
    }
}
