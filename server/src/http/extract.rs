//! Extractors: who is calling, JSON bodies and query strings, each failing with an
//! [`ApiError`] that says what is wrong.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use herald_core::auth::{Caller, Credentials, authenticate};
use herald_model::EntityRef;
use serde::de::DeserializeOwned;

use super::error::ApiError;
use crate::startup::AppState;

async fn caller(parts: &mut Parts, state: &AppState) -> Result<Caller, ApiError> {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let creds = Credentials::from_headers(&parts.headers, peer, &state.hub.auth);
    authenticate(&state.hub, &creds).await?.ok_or_else(|| {
        ApiError::new(StatusCode::UNAUTHORIZED, "missing or invalid credentials: send a Bearer token or sign in")
    })
}

/// A signed-in user (session, trusted proxy or personal token). Service tokens get 403.
pub struct UserCaller(pub EntityRef);

impl FromRequestParts<AppState> for UserCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match caller(parts, state).await? {
            Caller::User { user, .. } => Ok(UserCaller(user)),
            Caller::Service { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "service tokens can only publish; reading inboxes needs a user's session or personal token",
            )),
        }
    }
}

/// A publisher with a service token. Users get 403: people do not publish through the API.
pub struct ServiceCaller {
    pub token_id: String,
    pub origin: String,
}

impl FromRequestParts<AppState> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match caller(parts, state).await? {
            Caller::Service { token_id, origin } => Ok(ServiceCaller { token_id, origin }),
            Caller::User { .. } => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "only service tokens can publish notifications; create one with `herald token create --service NAME`",
            )),
        }
    }
}

/// A JSON body whose rejections (syntax, shape, size, content type) are [`ApiError`]s, and
/// whose raw bytes are kept (idempotency keys hash them).
pub struct ApiJson<T> {
    pub value: T,
    pub raw: bytes::Bytes,
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "expected a JSON body with Content-Type: application/json",
            ));
        }
        let raw = bytes::Bytes::from_request(req, state).await.map_err(|e| {
            let status = e.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(status, "the request body is larger than the 256 KiB limit")
            } else {
                ApiError::new(status, e.body_text())
            }
        })?;
        // Every body Herald takes is a JSON object; serde would also fill a struct from an
        // array, so say so before it does.
        if raw.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request("the request body must be a JSON object"));
        }
        let mut de = serde_json::Deserializer::from_slice(&raw);
        let value = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| ApiError::bad_request(format!("invalid request body at '{}': {}", e.path(), e.inner())))?;
        Ok(ApiJson { value, raw })
    }
}

/// The query string as ordered pairs; keys may repeat (Backstage's `orderField` does).
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryPairs(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

impl QueryPairs {
    /// The last value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
    }

    /// A non-negative integer parameter.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::bad_request(format!("query parameter '{key}' must be a non-negative integer, not '{v}'"))
                })
            })
            .transpose()
    }

    /// A `true`/`false` parameter.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        self.get(key)
            .map(|v| match v {
                "true" => Ok(true),
                "false" => Ok(false),
                other => {
                    Err(ApiError::bad_request(format!("query parameter '{key}' must be true or false, not '{other}'")))
                }
            })
            .transpose()
    }
}
