//! Server-side helpers for server functions: the shared state, the caller, errors.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use herald_core::Hub;
use herald_core::auth::{Caller, Credentials, SESSION_COOKIE, authenticate};
use herald_model::EntityRef;

use crate::session::{ADMINS_ONLY, SIGN_IN_FIRST};
use leptos::prelude::*;

/// The instance's shared state, provided by the server as context.
pub fn hub() -> Result<Hub, ServerFnError> {
    use_context::<Hub>().ok_or_else(|| ServerFnError::new("Herald's server state is not available"))
}

/// The credentials of the request being served.
pub fn request_credentials() -> Result<Credentials, ServerFnError> {
    let hub = hub()?;
    let parts = use_context::<http::request::Parts>().ok_or_else(|| ServerFnError::new("no request in context"))?;
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    Ok(Credentials::from_headers(&parts.headers, peer, &hub.auth))
}

/// The address the request came from (the TCP peer).
pub fn client_address() -> Option<std::net::IpAddr> {
    let parts = use_context::<http::request::Parts>()?;
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())
}

/// The signed-in user (session cookie, trusted proxy, or a personal token), if any.
pub async fn current_user() -> Result<Option<EntityRef>, ServerFnError> {
    let hub = hub()?;
    match authenticate(&hub, &request_credentials()?).await.map_err(fail)? {
        Some(Caller::User { user, .. }) => Ok(Some(user)),
        _ => Ok(None),
    }
}

/// The signed-in user, or an error telling the visitor to sign in.
pub async fn require_user() -> Result<EntityRef, ServerFnError> {
    current_user().await?.ok_or_else(|| {
        set_status(http::StatusCode::UNAUTHORIZED);
        ServerFnError::new(SIGN_IN_FIRST)
    })
}

/// The signed-in user if they are an administrator; otherwise the response becomes 403 (401
/// for a visitor) and the error says why. Every admin server function starts here: the
/// check is on the server, whatever the page showed.
pub async fn require_admin() -> Result<EntityRef, ServerFnError> {
    let hub = hub()?;
    let Some(user) = current_user().await? else {
        set_status(http::StatusCode::UNAUTHORIZED);
        return Err(ServerFnError::new(SIGN_IN_FIRST));
    };
    if !hub.is_admin(&user).await.map_err(fail)? {
        set_status(http::StatusCode::FORBIDDEN);
        return Err(ServerFnError::new(ADMINS_ONLY));
    }
    Ok(user)
}

/// Turns a core error into what the browser may see: the caller's mistakes keep their
/// message; Herald's own failures are logged and reported without details.
pub fn fail(e: herald_core::Error) -> ServerFnError {
    use herald_core::Error as E;
    use http::StatusCode as S;
    let (status, message) = match e {
        E::Invalid(m) => (S::BAD_REQUEST, m),
        E::NotFound(m) => (S::NOT_FOUND, m),
        E::Conflict(m) => (S::CONFLICT, m),
        E::Unprocessable(m) => (S::UNPROCESSABLE_ENTITY, m),
        E::Unauthorized(m) => (S::UNAUTHORIZED, m),
        E::Forbidden(m) => (S::FORBIDDEN, m),
        other => match other.unavailable() {
            Some(why) => {
                tracing::warn!(error = %other, "database unavailable");
                (S::SERVICE_UNAVAILABLE, format!("Herald cannot reach its storage right now: {}.", why.message()))
            }
            None => {
                tracing::error!(error = %other, "server function failed");
                (S::INTERNAL_SERVER_ERROR, "Something went wrong on the server. Please try again.".to_string())
            }
        },
    };
    set_status(status);
    ServerFnError::new(message)
}

/// Sets the status of the response a server function or page answers with.
fn set_status(status: http::StatusCode) {
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(status);
    }
}

/// Sets (or, with an empty secret and zero age, clears) the session cookie on the response.
pub fn set_session_cookie(secret: &str, max_age_secs: i64, secure: bool) {
    let Some(response) = use_context::<leptos_axum::ResponseOptions>() else { return };
    let cookie = format!(
        "{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(value) = http::HeaderValue::from_str(&cookie) {
        response.append_header(http::header::SET_COOKIE, value);
    }
}
