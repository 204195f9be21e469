//! `GET /api/notifications/stream`: Server-Sent Events that never lose an event.
//!
//! On connect the stream replays what the client missed (after `Last-Event-ID`, or `?since=`
//! on a first connect) from the event log, then follows the bus. It subscribes to the bus
//! *before* reading the log, so an event committed in between is in both, and the copy from
//! the bus is skipped by id: no gap, no duplicate.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{BufMut, Bytes, BytesMut};
use herald_core::events::{self, Event};
use herald_core::{Hub, notifications};
use herald_model::EntityRef;
use tokio::sync::{broadcast, watch};

use super::error::ApiError;
use super::extract::{QueryPairs, UserCaller};
use crate::startup::AppState;

/// How long a browser waits before reconnecting (the SSE `retry:` hint).
const RETRY: Duration = Duration::from_secs(2);
/// Events replayed per log query.
const REPLAY_BATCH: i64 = 500;
/// Room for events a stream keeps once it has sent them all (following the bus needs a few).
const IDLE_CAPACITY: usize = 8;

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
    // The stream follows the bus itself, polled by the connection that writes it: one task
    // and no queue per client, so a broadcast wakes each stream once.
    let follower = Follower {
        hub: state.hub.clone(),
        user,
        bus,
        position: start,
        ready: VecDeque::new(),
        phase: Phase::Connecting { fresh: last.is_none() },
        keep_alive: state.stream_keep_alive,
        quiet_until: tokio::time::Instant::now() + state.stream_keep_alive,
        shutting_down: state.shutting_down.clone(),
        sent: Sent::new(),
        _permit: permit,
    };
    let body = futures::stream::unfold(follower, |mut f| async move {
        let e = f.next().await?;
        Some((Ok::<_, Infallible>(e), f))
    });
    // The frames are written as they are: the body is the event stream itself, without a
    // per-client encoder, so a broadcast's bytes are shared by every stream that sends them.
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
            // Proxies such as nginx must not buffer the stream.
            (header::HeaderName::from_static("x-accel-buffering"), "no"),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

/// One client's stream: the events it missed, from the log, then the bus's.
struct Follower {
    hub: Hub,
    user: EntityRef,
    bus: broadcast::Receiver<Arc<Event>>,
    /// The last event passed on or skipped; every later one is still to come.
    position: i64,
    /// Frames to send before reading anything more.
    ready: VecDeque<Bytes>,
    phase: Phase,
    /// Quiet time after which to send a keep-alive comment.
    keep_alive: Duration,
    /// When to send a keep-alive comment if nothing else was sent by then.
    quiet_until: tokio::time::Instant,
    shutting_down: watch::Receiver<bool>,
    sent: Sent,
    _permit: StreamPermit,
}

enum Phase {
    /// Not started; `fresh` for a first connect, which has nothing to catch up on.
    Connecting { fresh: bool },
    /// Replaying the log after `position`.
    Replaying { fresh: bool },
    /// Following the bus.
    Following,
    /// Ending once `ready` is sent.
    Ended,
}

impl Follower {
    /// The next frame to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(e) = self.ready.pop_front() {
                if self.ready.is_empty() && self.ready.capacity() > IDLE_CAPACITY {
                    // A replay filled it: an idle stream must not keep that room for its life.
                    self.ready = VecDeque::new();
                }
                self.quiet_until = tokio::time::Instant::now() + self.keep_alive;
                return Some(e);
            }
            match self.phase {
                Phase::Connecting { fresh } => {
                    if *self.shutting_down.borrow_and_update() {
                        return None;
                    }
                    self.ready.push_back(connected());
                    // Boxed, as the other queries: inline, their futures would make every
                    // idle stream as large as the largest query, for the stream's whole life.
                    self.phase = match Box::pin(in_log(&self.hub, self.position)).await {
                        true => Phase::Replaying { fresh },
                        false => self.restart(fresh).await,
                    };
                }
                Phase::Replaying { fresh } => {
                    let batch = Box::pin(events::since(&self.hub.db, self.position, Some(&self.user), REPLAY_BATCH));
                    match batch.await {
                        Ok(batch) => {
                            let done = (batch.len() as i64) < REPLAY_BATCH;
                            for e in &batch {
                                self.ready.push_back(self.sent.frame(e));
                                self.position = e.id;
                            }
                            if done {
                                self.phase = self.status(self.position).await;
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "replay failed");
                            self.phase = self.restart(fresh).await;
                        }
                    }
                }
                Phase::Following => {
                    let received = tokio::select! {
                        received = self.bus.recv() => received,
                        // Ending the stream lets a graceful shutdown finish; clients reconnect
                        // elsewhere (or to the restarted server) with Last-Event-ID.
                        _ = self.shutting_down.changed() => return None,
                        _ = tokio::time::sleep_until(self.quiet_until) => {
                            self.ready.push_back(Bytes::from_static(b": heartbeat\n\n"));
                            continue;
                        }
                    };
                    self.received(received).await;
                }
                Phase::Ended => return None,
            }
        }
    }

    /// Starts over at the bus's head, where the log cannot catch the client up; a client
    /// that asked for a replay is told to refetch.
    async fn restart(&mut self, fresh: bool) -> Phase {
        self.position = self.hub.bus.head();
        if !fresh {
            self.ready.push_back(reset(self.position));
        }
        self.status(self.position).await
    }

    /// Queues the user's unread and read counts as of event `id`; the phase that follows.
    async fn status(&mut self, id: i64) -> Phase {
        match Box::pin(notifications::status(&self.hub.db, &self.user)).await {
            Ok(status) => {
                let data = serde_json::to_string(&status).unwrap_or_default();
                self.ready.push_back(frame(id, "status", &data));
                Phase::Following
            }
            Err(e) => {
                tracing::warn!(error = %e, "status for a stream failed");
                Phase::Ended
            }
        }
    }

    async fn received(&mut self, received: Result<Arc<Event>, broadcast::error::RecvError>) {
        match received {
            Ok(e) if e.id > self.position => {
                self.position = e.id;
                if e.concerns(&self.user) {
                    self.ready.push_back(self.sent.frame(&e));
                    if e.kind == "update" {
                        self.phase = self.status(e.id).await;
                    }
                }
            }
            // Already replayed from the log.
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => {
                // This client fell behind the bus: it must refetch.
                self.position = self.hub.bus.head();
                self.ready.push_back(reset(self.position));
            }
            Err(broadcast::error::RecvError::Closed) => self.phase = Phase::Ended,
        }
    }
}

/// Whether the events after `after` are all still in the log.
async fn in_log(hub: &Hub, after: i64) -> bool {
    let head = hub.bus.head();
    match events::bounds(&hub.db).await {
        // Events after `after` were pruned: the client cannot catch up from the log.
        Ok(Some((oldest, newest))) => !(after + 1 < oldest || after > newest.max(head)),
        Ok(None) => after == head,
        Err(e) => {
            tracing::warn!(error = %e, "replay failed");
            false
        }
    }
}

/// A stream's handles on the counter of events sent, one per kind it sends from the log.
/// Looked up once when the stream opens: a broadcast increments one on every stream, and
/// looking a counter up by name and labels hashes them and takes the registry's lock.
struct Sent {
    notification: metrics::Counter,
    update: metrics::Counter,
}

impl Sent {
    fn new() -> Sent {
        Sent {
            notification: metrics::counter!("herald_sse_events_sent_total", "kind" => "notification"),
            update: metrics::counter!("herald_sse_events_sent_total", "kind" => "update"),
        }
    }

    /// Counts `e` as sent; its frame, encoded once however many streams send it.
    fn frame(&self, e: &Event) -> Bytes {
        match e.kind.as_str() {
            "notification" => self.notification.increment(1),
            "update" => self.update.increment(1),
            other => metrics::counter!("herald_sse_events_sent_total", "kind" => other.to_string()).increment(1),
        }
        e.encoded(|e| frame(e.id, &e.kind, &e.payload))
    }
}

fn reset(id: i64) -> Bytes {
    frame(id, "reset", "{}")
}

/// The first frame: says the stream is open and how soon to reconnect if it breaks.
fn connected() -> Bytes {
    Bytes::from(format!("retry: {}\n: connected\n\n", RETRY.as_millis()))
}

/// One Server-Sent Event, spaced as most encoders space it (`event: status`), since some
/// clients look for exactly that. Each line of `data` becomes a `data:` line (a client joins them
/// with newlines again), whether it ends in LF, CRLF or CR; `kind` never holds a line break.
fn frame(id: i64, kind: &str, data: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + kind.len() + 40);
    out.put_slice(b"id: ");
    out.put_slice(id.to_string().as_bytes());
    out.put_slice(b"\nevent: ");
    out.put_slice(kind.as_bytes());
    out.put_u8(b'\n');
    let lines = data.split('\n').flat_map(|l| l.strip_suffix('\r').unwrap_or(l).split('\r'));
    for line in lines {
        out.put_slice(b"data: ");
        out.put_slice(line.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_carries_the_id_the_kind_and_each_line_of_data() {
        assert_eq!(&frame(7, "status", r#"{"unread":1}"#)[..], b"id: 7\nevent: status\ndata: {\"unread\":1}\n\n");
        // LF, CRLF and a lone CR each end a line; the client joins the lines with LF.
        assert_eq!(
            &frame(8, "update", "a\nb\r\nc\rd")[..],
            b"id: 8\nevent: update\ndata: a\ndata: b\ndata: c\ndata: d\n\n"
        );
        assert_eq!(&frame(9, "reset", "")[..], b"id: 9\nevent: reset\ndata: \n\n");
    }

    #[test]
    fn an_event_is_encoded_once_however_many_streams_send_it() {
        let row = Event::new(3, None, "notification", "{}");
        let sent = Sent::new();
        let (first, second) = (sent.frame(&row), sent.frame(&row));
        assert_eq!(&first[..], b"id: 3\nevent: notification\ndata: {}\n\n");
        // The same bytes, not a copy.
        assert_eq!(first.as_ptr(), second.as_ptr());
    }
}
