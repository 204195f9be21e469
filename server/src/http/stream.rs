//! `GET /api/notifications/stream`: Server-Sent Events that never lose an event.
//!
//! On connect the stream replays what the client missed (after `Last-Event-ID`, or `?since=`
//! on a first connect) from the event log, then follows the bus. It subscribes to the bus
//! *before* reading the log, so an event committed in between is in both, and the copy from
//! the bus is skipped by id: no gap, no duplicate.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use herald_core::events::{self, Event};
use herald_core::{Hub, notifications};
use herald_model::EntityRef;
use tokio::sync::{broadcast, mpsc};

use super::error::ApiError;
use super::extract::{QueryPairs, UserCaller};
use crate::startup::AppState;

/// How long a browser waits before reconnecting (the SSE `retry:` hint).
const RETRY: Duration = Duration::from_secs(2);
/// Events queued for one client; a client that does not read them falls behind the bus and
/// gets a `reset`.
const CLIENT_QUEUE: usize = 64;
/// Events replayed per log query.
const REPLAY_BATCH: i64 = 500;

/// Counts open streams per user to enforce the configured cap.
#[derive(Debug, Default)]
pub struct StreamCounter {
    open: Mutex<Open>,
}

/// Open streams per user, and in all.
#[derive(Debug, Default)]
struct Open {
    per_user: HashMap<String, usize>,
    total: usize,
}

/// Why a stream was refused.
enum Refusal {
    /// This user has their maximum open.
    User,
    /// The instance has its maximum open.
    Total,
}

/// One open stream; dropping it frees the place.
pub struct StreamPermit {
    counter: Arc<StreamCounter>,
    user: String,
}

impl StreamCounter {
    fn acquire(self: &Arc<Self>, user: &EntityRef, per_user: usize, total: usize) -> Result<StreamPermit, Refusal> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if open.total >= total {
            return Err(Refusal::Total);
        }
        let n = open.per_user.entry(user.to_string()).or_default();
        if *n >= per_user {
            return Err(Refusal::User);
        }
        *n += 1;
        open.total += 1;
        metrics::gauge!("herald_sse_streams_open").increment(1.0);
        Ok(StreamPermit { counter: self.clone(), user: user.to_string() })
    }
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        metrics::gauge!("herald_sse_streams_open").decrement(1.0);
        let mut open = self.counter.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total -= 1;
        if let Some(n) = open.per_user.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.per_user.remove(&self.user);
            }
        }
    }
}

/// The live stream of the caller's events (Server-Sent Events).
///
/// Events: `notification` (the notification JSON), `update` (`{ids, read, saved, archived}`),
/// `status` (`{unread, read}`, on connect and after the caller's own changes) and `reset`
/// (refetch: the position is no longer in the log). Each carries its `id:`; reconnect with
/// `Last-Event-ID` (or `?since=` on a first connect) to replay what was missed.
#[utoipa::path(get, path = "/stream", tag = "live",
    params(
        ("Last-Event-ID" = Option<i64>, Header, description = "Replay the events after this one"),
        ("since" = Option<i64>, Query, description = "Like Last-Event-ID, for a first connect"),
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = String),
        (status = 401, body = super::error::ErrorBody),
        (status = 429, description = "Too many open streams for this user", body = super::error::ErrorBody),
        (status = 503, description = "The instance has its maximum of open streams; retry after Retry-After", body = super::error::ErrorBody),
    ),
    security(("bearer" = []), ("session" = [])))]
pub async fn stream(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    headers: HeaderMap,
    q: QueryPairs,
) -> Result<Response, ApiError> {
    let last = match headers.get("last-event-id").and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty()) {
        Some(v) => {
            Some(v.trim().parse::<i64>().map_err(|_| ApiError::bad_request("Last-Event-ID must be an event id"))?)
        }
        None => q.int("since")?,
    };
    let (max, total) = (state.stream_limit, state.stream_total);
    let permit = match state.streams.acquire(&user, max, total) {
        Ok(p) => p,
        Err(Refusal::User) => {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("{user} already has {max} open streams; close a tab or retry later"),
            ));
        }
        Err(Refusal::Total) => {
            let mut refused = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("this Herald is serving its maximum of {total} live streams; retry shortly"),
            )
            .into_response();
            refused.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from(10u32));
            return Ok(refused);
        }
    };
    // A first connect starts at the bus's position *before* subscribing, and is replayed from
    // there like a reconnect: an event broadcast in between is then in the log replay, and
    // skipped by id when the bus delivers it too. Subscribe before reading the log: see the
    // module comment.
    let start = last.unwrap_or_else(|| state.hub.bus.head());
    let bus = state.hub.bus.subscribe();
    let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
    tokio::spawn(follow(state.hub.clone(), user, start, last.is_none(), bus, tx, permit, state.shutting_down.clone()));
    let body =
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (Ok::<_, Infallible>(e), rx)) });
    let sse = Sse::new(body).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"));
    // Proxies such as nginx must not buffer the stream.
    Ok(([("x-accel-buffering", "no"), ("cache-control", "no-cache")], sse).into_response())
}

/// Why a stream ended early.
enum Stop {
    /// The client went away.
    Gone,
    /// The client's position is no longer in the log.
    Reset,
}

async fn follow(
    hub: Hub,
    user: EntityRef,
    start: i64,
    fresh: bool,
    mut bus: broadcast::Receiver<Arc<Event>>,
    tx: mpsc::Sender<SseEvent>,
    _permit: StreamPermit,
    mut shutting_down: tokio::sync::watch::Receiver<bool>,
) {
    let send = |e: SseEvent| {
        let tx = tx.clone();
        async move { tx.send(e).await.map_err(|_| Stop::Gone) }
    };
    let stopping = *shutting_down.borrow_and_update();
    if stopping || send(SseEvent::default().retry(RETRY).comment("connected")).await.is_err() {
        return;
    }
    // The replay and status queries are boxed: inline, their futures would make every idle
    // stream's task as large as the largest query, for the stream's whole life.
    let mut position = match Box::pin(replay(&hub, &user, start, &tx)).await {
        Ok(p) => p,
        Err(Stop::Gone) => return,
        // A first connect has nothing to catch up on: it simply starts at the head.
        Err(Stop::Reset) if fresh => hub.bus.head(),
        Err(Stop::Reset) => {
            let head = hub.bus.head();
            if send(reset(head)).await.is_err() {
                return;
            }
            head
        }
    };
    if Box::pin(send_status(&hub, &user, position, &tx)).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            received = bus.recv() => match received {
                Ok(e) => {
                    if e.id <= position {
                        continue;
                    }
                    position = e.id;
                    if !e.concerns(&user) {
                        continue;
                    }
                    if send(to_sse(&e)).await.is_err() {
                        return;
                    }
                    if e.kind == "update" && Box::pin(send_status(&hub, &user, e.id, &tx)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // This client fell behind the bus: it must refetch.
                    position = hub.bus.head();
                    if send(reset(position)).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return,
            },
            _ = tx.closed() => return,
            // Ending the stream lets a graceful shutdown finish; clients reconnect elsewhere
            // (or to the restarted server) with Last-Event-ID.
            _ = shutting_down.changed() => return,
        }
    }
}

/// Sends the user's events after `after`; returns the new position.
async fn replay(hub: &Hub, user: &EntityRef, after: i64, tx: &mpsc::Sender<SseEvent>) -> Result<i64, Stop> {
    let head = hub.bus.head();
    match events::bounds(&hub.db).await {
        // Events after `after` were pruned: the client cannot catch up from the log.
        Ok(Some((oldest, newest))) if after + 1 < oldest || after > newest.max(head) => return Err(Stop::Reset),
        Ok(None) if after != head => return Err(Stop::Reset),
        Err(e) => {
            tracing::warn!(error = %e, "replay failed");
            return Err(Stop::Reset);
        }
        _ => {}
    }
    let mut position = after;
    loop {
        let batch = events::since(&hub.db, position, Some(user), REPLAY_BATCH).await.map_err(|e| {
            tracing::warn!(error = %e, "replay failed");
            Stop::Reset
        })?;
        let done = (batch.len() as i64) < REPLAY_BATCH;
        for e in &batch {
            tx.send(to_sse(e)).await.map_err(|_| Stop::Gone)?;
            position = e.id;
        }
        if done {
            return Ok(position);
        }
    }
}

async fn send_status(hub: &Hub, user: &EntityRef, id: i64, tx: &mpsc::Sender<SseEvent>) -> Result<(), Stop> {
    let status = notifications::status(&hub.db, user).await.map_err(|e| {
        tracing::warn!(error = %e, "status for a stream failed");
        Stop::Gone
    })?;
    let data = serde_json::to_string(&status).unwrap_or_default();
    tx.send(SseEvent::default().id(id.to_string()).event("status").data(data)).await.map_err(|_| Stop::Gone)
}

fn to_sse(e: &Event) -> SseEvent {
    metrics::counter!("herald_sse_events_sent_total", "kind" => e.kind.clone()).increment(1);
    SseEvent::default().id(e.id.to_string()).event(e.kind.as_str()).data(e.payload.as_str())
}

fn reset(id: i64) -> SseEvent {
    SseEvent::default().id(id.to_string()).event("reset").data("{}")
}
