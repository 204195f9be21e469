//! A page answers at one address: `GET /settings/` redirects to `/settings`.
//!
//! axum's routes do not match a trailing slash, so such a path used to reach the fallback,
//! which rendered the page anyway (the browser's router matches it) under the fallback's
//! status: a 404 for a page that is there. The API is left alone: an unknown API route gets
//! its JSON 404.

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Redirects (308) a page's path with trailing slashes to the path without them, keeping the
/// query.
pub async fn redirect(req: Request, next: Next) -> Response {
    match canonical(&req) {
        Some(target) => match HeaderValue::try_from(target) {
            Ok(location) => (StatusCode::PERMANENT_REDIRECT, [(header::LOCATION, location)]).into_response(),
            Err(_) => next.run(req).await,
        },
        None => next.run(req).await,
    }
}

/// The address to redirect to, if `req` asks for a page with a trailing slash.
fn canonical(req: &Request) -> Option<String> {
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        return None;
    }
    let path = req.uri().path();
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() == path.len() || trimmed.is_empty() || trimmed.starts_with("/api/") {
        return None;
    }
    // `//host` or `/\host` in a Location header leaves the site: such paths are not pages.
    if !trimmed.starts_with('/') || trimmed[1..].starts_with(['/', '\\']) {
        return None;
    }
    Some(match req.uri().query() {
        Some(query) => format!("{trimmed}?{query}"),
        None => trimmed.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(method: Method, uri: &str) -> Option<String> {
        canonical(&Request::builder().method(method).uri(uri).body(axum::body::Body::empty()).unwrap())
    }

    #[test]
    fn pages_with_a_trailing_slash_go_to_their_one_address() {
        assert_eq!(target(Method::GET, "/settings/").as_deref(), Some("/settings"));
        assert_eq!(target(Method::HEAD, "/admin//?status=dead").as_deref(), Some("/admin?status=dead"));
        assert_eq!(target(Method::GET, "/notifications/abc/").as_deref(), Some("/notifications/abc"));
    }

    #[test]
    fn everything_else_is_left_alone() {
        assert_eq!(target(Method::GET, "/"), None);
        assert_eq!(target(Method::GET, "/settings"), None);
        assert_eq!(target(Method::POST, "/settings/"), None, "a form post keeps its body");
        assert_eq!(target(Method::GET, "/api/notifications/notifications/"), None, "the API answers for itself");
        assert_eq!(target(Method::GET, "//evil.example/"), None, "never a redirect to another host");
        assert_eq!(target(Method::GET, "///evil.example//"), None);
    }
}
