//! `GET /open/{id}`: follows a notification's link from the inbox. Going through Herald lets
//! opening mark the notification read (a personal preference, on by default) with or
//! without JavaScript, and keeps the inbox's links working for middle-clicks and new tabs.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use herald_core::auth::{Caller, Credentials, authenticate};
use herald_core::notifications::{StateChange, get, update};

use super::error::ApiError;
use crate::startup::AppState;

/// Redirects to the notification's link (its detail page when it has none), marking it read
/// first if the user wants that. A signed-out visitor is sent to sign in and back here.
pub async fn open(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let hub = &state.hub;
    let creds = Credentials::from_headers(&headers, Some(peer.ip()), &hub.auth);
    let Some(Caller::User { user, .. }) = authenticate(hub, &creds).await? else {
        let next = encode(&format!("/open/{id}"));
        return Ok(Redirect::to(&format!("/signin?next={next}")).into_response());
    };
    let n = match get(&hub.db, &user, &id).await {
        Ok(n) => n,
        // Not the caller's (or gone): the detail page says so, in the site's own words.
        Err(herald_core::Error::NotFound(_)) => {
            return Ok(Redirect::to(&format!("/notifications/{}", encode(&id))).into_response());
        }
        Err(e) => return Err(e.into()),
    };
    if n.read.is_none() && herald_core::preferences::get(&hub.db, &user).await?.mark_read_on_open {
        update(&hub.db, &user, std::slice::from_ref(&n.id), StateChange { read: Some(true), ..StateChange::default() })
            .await?;
    }
    let target = n.payload.link.clone().unwrap_or_else(|| format!("/notifications/{}", n.id));
    Ok(Redirect::to(&target).into_response())
}

/// Percent-encodes a query or path value.
fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
