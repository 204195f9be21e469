//! Cross-site request forgery: a state-changing request that carries the session cookie
//! must come from one of Herald's own pages. SameSite=Lax cookies already keep most
//! cross-site posts out; this checks `Origin` (or, without it, `Referer`) as well, so a
//! form on another site — or a sibling subdomain, which Lax counts as same-site — cannot
//! act as a signed-in user. Requests with a bearer token carry no ambient credentials and
//! are not affected.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::startup::AppState;

/// Refuses cookie-authenticated state changes from other origins with 403.
pub async fn check(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || !has_session_cookie(req.headers()) || req.headers().contains_key(header::AUTHORIZATION) {
        return next.run(req).await;
    }
    let base = &state.hub.publish.base_url;
    let from = req
        .headers()
        .get(header::ORIGIN)
        .or_else(|| req.headers().get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    match from {
        // No Origin and no Referer: not a browser acting on another page's behalf.
        None => next.run(req).await,
        Some(from) if same_origin(&from, base, req.headers()) => next.run(req).await,
        Some(from) => {
            tracing::warn!(origin = %from.origin().ascii_serialization(), path = %req.uri().path(), "cross-origin request refused");
            (
                StatusCode::FORBIDDEN,
                axum::Json(serde_json::json!({
                    "error": {"name": "ForbiddenError", "message": "this request came from another site; Herald only accepts changes from its own pages"},
                })),
            )
                .into_response()
        }
    }
}

fn has_session_cookie(headers: &HeaderMap) -> bool {
    let prefix = format!("{}=", herald_core::auth::SESSION_COOKIE);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(';').any(|c| c.trim().starts_with(&prefix)))
}

/// Whether `from` is Herald's own origin: the configured base URL, or the host the request
/// was addressed to (Herald reached directly, e.g. on its listen address).
fn same_origin(from: &url::Url, base: &url::Url, headers: &HeaderMap) -> bool {
    if from.origin() == base.origin() {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let from_host = match from.port() {
        Some(p) => format!("{}:{p}", from.host_str().unwrap_or_default()),
        None => from.host_str().unwrap_or_default().to_string(),
    };
    host.is_some_and(|h| h.eq_ignore_ascii_case(&from_host))
}
