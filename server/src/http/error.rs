//! The HTTP layer's one error type, answered in Backstage's error shape:
//! `{error: {name, message}, request: {method, url}, response: {statusCode}}`.

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The JSON body of every API error (Backstage's shape), for the API description.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"name": "InputError", "message": "payload.title is required and must not be empty"},
    "request": {"method": "POST", "url": "/api/notifications/notifications"}, "response": {"statusCode": 400}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
    pub request: RequestDetail,
    pub response: ResponseDetail,
}

/// What went wrong.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Backstage's error class, e.g. `InputError`, `NotFoundError`.
    pub name: String,
    pub message: String,
}

/// The request that failed.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct RequestDetail {
    pub method: String,
    pub url: String,
}

/// The status answered.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ResponseDetail {
    #[serde(rename = "statusCode")]
    pub status_code: u16,
}

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    /// An error with a status and a message for the client.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }

    /// 400: the request is wrong; the message says how.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 500: Herald failed. Opaque on purpose: what went wrong is logged, never answered.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// Backstage's error class name for a status.
    fn name(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST | StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                "InputError"
            }
            StatusCode::UNAUTHORIZED => "AuthenticationError",
            StatusCode::FORBIDDEN => "NotAllowedError",
            StatusCode::NOT_FOUND => "NotFoundError",
            StatusCode::CONFLICT => "ConflictError",
            StatusCode::REQUEST_TIMEOUT => "RequestTimeoutError",
            StatusCode::UNPROCESSABLE_ENTITY => "UnprocessableEntityError",
            StatusCode::TOO_MANY_REQUESTS => "TooManyRequestsError",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailableError",
            _ => "Error",
        }
    }
}

impl From<herald_core::Error> for ApiError {
    fn from(e: herald_core::Error) -> Self {
        use herald_core::Error as E;
        match e {
            E::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, m),
            E::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, m),
            E::Conflict(m) => ApiError::new(StatusCode::CONFLICT, m),
            E::Unprocessable(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, m),
            E::Unauthorized(m) => ApiError::new(StatusCode::UNAUTHORIZED, m),
            E::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, m),
            other => match other.unavailable() {
                Some(why) => {
                    tracing::warn!(error = %other, "database unavailable");
                    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, why.message())
                }
                None => {
                    // Logged in full here, answered opaquely: internals never reach clients.
                    tracing::error!(error = %other, "request failed");
                    ApiError::internal()
                }
            },
        }
    }
}

/// Marks a response as an API error whose body [`error_shape`] completes with the request.
#[derive(Clone, Debug)]
struct ErrorMarker(ApiError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(body(&self, "", ""))).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            // A passing condition: tell clients when to try again (handlers may set their own).
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
        }
        response.extensions_mut().insert(ErrorMarker(self));
        response
    }
}

fn body(e: &ApiError, method: &str, url: &str) -> serde_json::Value {
    json!({
        "error": { "name": e.name(), "message": e.message },
        "request": { "method": method, "url": url },
        "response": { "statusCode": e.status.as_u16() },
    })
}

/// The answer to a request whose handler panicked (`CatchPanicLayer`): the panic is logged and
/// the client gets a 500 in the usual shape, where the connection would otherwise simply be
/// dropped with no answer at all.
pub fn panicked(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request's handler panicked");
    ApiError::internal().into_response()
}

/// Middleware that fills the request's method and URL into API error bodies, and turns
/// axum's plain-text rejections (unknown route, wrong method) into the same JSON shape.
pub async fn error_shape(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    // Inside a nested router the URI is stripped of the mount path; report what was asked.
    let url =
        req.extensions().get::<axum::extract::OriginalUri>().map_or_else(|| req.uri().to_string(), |o| o.0.to_string());
    let response = next.run(req).await;
    if let Some(ErrorMarker(e)) = response.extensions().get::<ErrorMarker>().cloned() {
        let mut fixed = (e.status, Json(body(&e, &method, &url))).into_response();
        for (name, value) in response.headers() {
            if name != axum::http::header::CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
                fixed.headers_mut().insert(name.clone(), value.clone());
            }
        }
        return fixed;
    }
    let status = response.status();
    let is_json = response.headers().get(axum::http::header::CONTENT_TYPE).is_some_and(|v| {
        v.as_bytes().starts_with(b"application/json") || v.as_bytes().starts_with(b"text/event-stream")
    });
    if (status.is_client_error() || status.is_server_error()) && !is_json {
        let message = match status {
            StatusCode::NOT_FOUND => "no such API route".to_string(),
            StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on this route"),
            StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_string(),
            other => other.canonical_reason().unwrap_or("error").to_string(),
        };
        let e = ApiError::new(status, message);
        return (status, Json(body(&e, &method, &url))).into_response();
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::{Body, to_bytes};
    use axum::routing::get;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    #[tokio::test]
    async fn a_handler_that_panics_is_answered_with_a_500_in_the_error_shape() {
        async fn broken() -> &'static str {
            panic!("a bug")
        }
        let app = Router::new()
            .route("/api/broken", get(broken))
            .layer(CatchPanicLayer::custom(panicked))
            .layer(axum::middleware::from_fn(error_shape));
        let request = Request::builder().uri("/api/broken").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body: serde_json::Value =
            serde_json::from_slice(&to_bytes(response.into_body(), 4096).await.unwrap()).unwrap();
        assert_eq!(body["error"]["message"], "internal server error", "{body}");
        assert_eq!(body["request"]["url"], "/api/broken", "{body}");
    }
}
