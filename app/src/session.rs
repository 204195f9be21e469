//! Who is signed in, and signing in and out.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// What a visitor is told where signing in is needed: by the server functions, and by the
/// pages' resources before they call one (`shell::signed_in`).
pub const SIGN_IN_FIRST: &str = "Please sign in first.";

/// What a signed-in non-administrator is told where an administrator is needed.
pub const ADMINS_ONLY: &str = "Only Herald administrators can do this.";

/// The signed-in user as the page shows them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub user_ref: String,
    pub display_name: String,
    pub is_admin: bool,
    pub unread: i64,
    /// The event-log position when the page was rendered; the live stream starts after it.
    pub event_head: i64,
}

/// The signed-in user, or `None` for a visitor.
#[server(endpoint = "whoami", output = crate::codec::JsonText)]
pub async fn whoami() -> Result<Option<Me>, ServerFnError> {
    use crate::server::{current_user, fail, hub};
    let hub = hub()?;
    let Some(user) = current_user().await? else { return Ok(None) };
    let profile = herald_core::directory::get_user(&hub.db, &user).await.map_err(fail)?;
    let status = herald_core::notifications::status(&hub.db, &user).await.map_err(fail)?;
    Ok(Some(Me {
        display_name: profile.and_then(|p| p.display_name).unwrap_or_else(|| user.name().to_string()),
        is_admin: hub.is_admin(&user).await.map_err(fail)?,
        unread: status.unread,
        event_head: hub.bus.head(),
        user_ref: user.to_string(),
    }))
}

/// Signs in with a user name (or ref) and password, then goes to `next` (a local path only).
#[server(endpoint = "signin", output = crate::codec::JsonText)]
pub async fn sign_in(username: String, password: String, next: Option<String>) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, set_session_cookie};
    use herald_model::{EntityKind, EntityRef};
    let hub = hub()?;
    if !hub.auth.password_login {
        return Err(ServerFnError::new(
            "Password sign-in is turned off on this Herald; sign in through your company's single sign-on.",
        ));
    }
    let wrong = || ServerFnError::new("Wrong user name or password.");
    let name = username.trim().to_string();
    let address = crate::server::client_address();
    let now = herald_core::time::now_ms();
    if let Err(wait_ms) = hub.sign_in_throttle.check(&name, address, now) {
        if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
            response.set_status(http::StatusCode::TOO_MANY_REQUESTS);
            if let Ok(v) = http::HeaderValue::from_str(&(wait_ms / 1000 + 1).to_string()) {
                response.insert_header(http::header::RETRY_AFTER, v);
            }
        }
        return Err(ServerFnError::new(format!(
            "Too many failed sign-ins. Try again in {} minutes.",
            (wait_ms + 59_999) / 60_000
        )));
    }
    let checked = match EntityRef::parse_with_default(&name, Some(EntityKind::User)) {
        Ok(user) => herald_core::auth::check_password(&hub.db, &user, &password).await.map_err(fail)?,
        Err(_) => None,
    };
    let Some(user) = checked else {
        hub.sign_in_throttle.failed(&name, address, now);
        return Err(wrong());
    };
    hub.sign_in_throttle.succeeded(&name);
    // A new session id at every sign-in, and the one the browser came with ends: a session id
    // planted or seen before sign-in is worth nothing after it.
    if let Some(old) = crate::server::request_credentials()?.session {
        herald_core::auth::delete_session(&hub.db, &old).await.map_err(fail)?;
    }
    let secret = herald_core::auth::create_session(&hub.db, &user, hub.auth.session_ttl_ms).await.map_err(fail)?;
    set_session_cookie(&secret, hub.auth.session_ttl_ms / 1000, hub.auth.secure_cookie);
    leptos_axum::redirect(&local_path(next.as_deref()));
    Ok(())
}

/// Signs out: ends the session and clears the cookie.
#[server(endpoint = "signout", output = crate::codec::JsonText)]
pub async fn sign_out() -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, request_credentials, set_session_cookie};
    let hub = hub()?;
    if let Some(secret) = request_credentials()?.session {
        herald_core::auth::delete_session(&hub.db, &secret).await.map_err(fail)?;
    }
    set_session_cookie("", 0, hub.auth.secure_cookie);
    leptos_axum::redirect("/signin");
    Ok(())
}

/// `next` if it is a path on this site, else `/`: never redirect to another host.
pub fn local_path(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs, so `/\t/evil.example` would become
        // `//evil.example`: no control characters at all.
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(local_path(Some("/settings?x=1")), "/settings?x=1");
        assert_eq!(local_path(Some("//evil.example")), "/");
        assert_eq!(local_path(Some("https://evil.example")), "/");
        assert_eq!(local_path(Some("/\\evil.example")), "/");
        assert_eq!(local_path(Some("/\t/evil.example")), "/");
        assert_eq!(local_path(Some("/\n/evil.example")), "/");
        assert_eq!(local_path(None), "/");
    }
}
