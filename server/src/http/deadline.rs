//! A deadline for request bodies: a client that trickles its body (a slow-loris upload) gets
//! `408` once the configured time has passed, however steadily it sends.
//!
//! tower-http's body timeout restarts with every frame, so a byte every few seconds would keep
//! a request alive for ever; this one counts from the start of the request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;

use super::error::ApiError;
use crate::startup::AppState;

/// The error a body stream ends with when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received in time")]
struct TooSlow;

/// Middleware: bounds the time to receive the request body by `http.body_read_timeout_secs`.
pub async fn body_deadline(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    let limit = state.body_read_timeout;
    let deadline = tokio::time::Instant::now() + limit;
    let expired = Arc::new(AtomicBool::new(false));
    let (parts, body) = req.into_parts();
    let flag = expired.clone();
    // Each frame must come before the one deadline; when it passes, the body ends in an error.
    let frames = futures::stream::unfold(Some(body.into_data_stream()), move |frames| {
        let flag = flag.clone();
        async move {
            let mut frames = frames?;
            match tokio::time::timeout_at(deadline, frames.next()).await {
                Ok(frame) => frame.map(|f| (f, Some(frames))),
                Err(_) => {
                    flag.store(true, Ordering::Release);
                    Some((Err(axum::Error::new(TooSlow)), None))
                }
            }
        }
    });
    let req = Request::from_parts(parts, Body::from_stream(frames));
    let response = next.run(req).await;
    if expired.load(Ordering::Acquire) {
        let mut response = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request body was not received within {} seconds", limit.as_secs()),
        )
        .into_response();
        // The rest of the body may still be on its way; do not read it.
        response.headers_mut().insert(axum::http::header::CONNECTION, "close".parse().expect("a valid header"));
        return response;
    }
    response
}
