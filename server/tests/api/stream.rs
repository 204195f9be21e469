use std::time::Duration;

use serde_json::json;

use crate::both;
use crate::helpers::{Backend, SseClient, everyone, spawn_app, spawn_app_with, spawn_peer, to};

const WAIT: Duration = Duration::from_secs(5);
const QUIET: Duration = Duration::from_millis(700);

both!(a_stream_needs_a_user, |app| async {
    let r = app.call("GET", "/api/notifications/stream", None, None).await;
    assert_eq!(r.status, 401);
    let service = app.service_token("external:ci").await;
    assert_eq!(SseClient::connect(&app.base, &service, None, "").await.err(), Some(403));
});

both!(each_user_gets_their_own_events_and_broadcasts, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let carol = app.user_token("carol").await;
    let mut a = SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    let mut c = SseClient::connect(&app.base, &carol, None, "").await.unwrap();
    let status = a.next(WAIT).await.unwrap();
    assert_eq!((status.event.as_str(), status.json()), ("status", json!({"unread": 0, "read": 0})));
    c.next_of("status", WAIT).await.unwrap();

    let sent =
        app.publish(&t, to(&["group:default/platform"]), json!({"title": "platform only", "severity": "high"})).await;
    let got = a.next_of("notification", WAIT).await.expect("alice gets the group notification");
    let n = got.json();
    assert_eq!(n["payload"]["title"], "platform only");
    assert!(sent.iter().any(|s| s["id"] == n["id"]), "the event carries the stored notification");
    assert!(got.id.is_some());
    assert!(c.next_of("notification", QUIET).await.is_none(), "carol is not in platform");

    app.publish(&t, everyone(), json!({"title": "for everyone"})).await;
    assert_eq!(a.next_of("notification", WAIT).await.unwrap().json()["payload"]["title"], "for everyone");
    assert_eq!(c.next_of("notification", WAIT).await.unwrap().json()["user"], serde_json::Value::Null);
});

both!(own_changes_send_an_update_and_the_new_status, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let n = app.publish(&t, to(&["user:default/alice"]), json!({"title": "x"})).await;
    let mut tab = SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    assert_eq!(tab.next_of("status", WAIT).await.unwrap().json(), json!({"unread": 1, "read": 0}));
    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [n[0]["id"]], "read": true})).await;
    let update = tab.next_of("update", WAIT).await.unwrap().json();
    assert_eq!(update["ids"], json!([n[0]["id"]]));
    assert_eq!(update["read"], true);
    assert_eq!(tab.next_of("status", WAIT).await.unwrap().json(), json!({"unread": 0, "read": 1}));
});

both!(a_reconnect_replays_exactly_what_was_missed, |app| async {
    let t = app.service_token("external:ci").await;
    let bob = app.user_token("bob").await;
    let mut tab = SseClient::connect(&app.base, &bob, None, "").await.unwrap();
    app.publish(&t, to(&["user:default/bob"]), json!({"title": "seen"})).await;
    let seen = tab.next_of("notification", WAIT).await.unwrap();
    let last = seen.id.clone().unwrap();
    drop(tab);

    for i in 0..3 {
        app.publish(&t, to(&["user:default/bob"]), json!({"title": format!("missed {i}")})).await;
    }
    app.publish(&t, to(&["user:default/carol"]), json!({"title": "not bob's"})).await;
    let mut again = SseClient::connect(&app.base, &bob, Some(&last), "").await.unwrap();
    let mut titles = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..3 {
        let e = again.next_of("notification", WAIT).await.unwrap();
        ids.push(e.id.clone().unwrap().parse::<i64>().unwrap());
        titles.push(e.json()["payload"]["title"].as_str().unwrap().to_string());
    }
    assert_eq!(titles, ["missed 0", "missed 1", "missed 2"]);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order: {ids:?}");
    // Live events follow the replay with nothing repeated.
    app.publish(&t, to(&["user:default/bob"]), json!({"title": "live"})).await;
    assert_eq!(again.next_of("notification", WAIT).await.unwrap().json()["payload"]["title"], "live");
    assert!(again.next_of("notification", QUIET).await.is_none());

    // `?since=` does the same on a first connect.
    let mut first = SseClient::connect(&app.base, &bob, None, &format!("?since={last}")).await.unwrap();
    assert_eq!(first.next_of("notification", WAIT).await.unwrap().json()["payload"]["title"], "missed 0");
});

both!(a_position_older_than_the_log_gets_reset, |app| async {
    let t = app.service_token("external:ci").await;
    let bob = app.user_token("bob").await;
    for i in 0..3 {
        app.publish(&t, to(&["user:default/bob"]), json!({"title": format!("n{i}")})).await;
    }
    // Prune the whole log, as the replay window does with old events.
    herald_core::maintenance::clean_up(&app.db, 0, -1).await.unwrap();
    app.publish(&t, to(&["user:default/bob"]), json!({"title": "after pruning"})).await;
    let mut tab = SseClient::connect(&app.base, &bob, Some("1"), "").await.unwrap();
    let first = tab.next(WAIT).await.unwrap();
    assert_eq!(first.event, "reset");
    assert_eq!(tab.next(WAIT).await.unwrap().event, "status");
    let r = reqwest::Client::new()
        .get(format!("{}/api/notifications/stream", app.base))
        .bearer_auth(&bob)
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
});

// The stream writes its own frames, keep-alive included: a quiet stream sends a comment.
#[tokio::test]
async fn a_quiet_stream_sends_keep_alive_comments() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.stream.keep_alive_secs = 1).await;
    let alice = app.user_token("alice").await;
    let mut conn = Raw::connect(&app).await;
    conn.send(&stream_request(&alice)).await;
    assert!(!conn.read_until(&["event: status"], WAIT).await);
    assert!(!conn.got.contains(": heartbeat"), "{}", conn.got);
    assert!(!conn.read_until(&[": heartbeat"], Duration::from_secs(3)).await, "stream closed");
    assert!(conn.got.contains(": heartbeat\n\n"), "no keep-alive after a quiet second: {}", conn.got);
    app.cleanup().await;
}

// A stream that falls further behind the bus than `stream.buffer` is told to reload. On a
// runtime with one thread the bus sends a whole batch read from the log before any stream
// runs, so one publish to four users (four events in one commit) puts a stream with room for
// two behind every time.
#[tokio::test]
async fn a_stream_that_falls_behind_the_bus_gets_reset_and_goes_on() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.stream.buffer = 2).await;
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let mut tab = SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    tab.next_of("status", WAIT).await.unwrap();

    let four_users = to(&["user:default/alice", "user:default/bob", "user:default/carol", "user:default/dave"]);
    let burst = app.publish(&t, four_users, json!({"title": "burst"})).await;
    assert_eq!(burst.len(), 4);
    let reset = tab.next(WAIT).await.expect("an event after the burst");
    assert_eq!(reset.event, "reset", "the stream lagged and must say so: {reset:?}");
    let position: i64 = reset.id.clone().unwrap().parse().unwrap();

    // The stream goes on from the bus's head: the next event is the next publish's, none of
    // the burst's.
    app.publish(&t, to(&["user:default/alice"]), json!({"title": "after"})).await;
    let next = tab.next(WAIT).await.unwrap();
    assert_eq!((next.event.as_str(), next.json()["payload"]["title"].as_str()), ("notification", Some("after")));
    assert!(next.id.unwrap().parse::<i64>().unwrap() > position);

    // The reset's id is a position the log can resume from: after it comes only "after".
    let mut again = SseClient::connect(&app.base, &alice, Some(&position.to_string()), "").await.unwrap();
    let replayed = again.next_of("notification", WAIT).await.unwrap();
    assert_eq!(replayed.json()["payload"]["title"], "after");
    app.cleanup().await;
}

#[tokio::test]
async fn too_many_streams_for_one_user_get_429() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.stream.max_per_user = 2).await;
    let alice = app.user_token("alice").await;
    let _a = SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    let b = SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    assert_eq!(SseClient::connect(&app.base, &alice, None, "").await.err(), Some(429));
    let bob = app.user_token("bob").await;
    assert!(SseClient::connect(&app.base, &bob, None, "").await.is_ok(), "the cap is per user");
    drop(b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(SseClient::connect(&app.base, &alice, None, "").await.is_ok(), "a closed stream frees its place");
    app.cleanup().await;
}

#[tokio::test]
async fn past_the_instance_cap_streams_get_503_with_retry_after() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.stream.max_total = 2).await;
    let (alice, bob, carol) =
        (app.user_token("alice").await, app.user_token("bob").await, app.user_token("carol").await);
    let _a = SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    let b = SseClient::connect(&app.base, &bob, None, "").await.unwrap();
    let refused = app
        .client
        .get(format!("{}/api/notifications/stream", app.base))
        .bearer_auth(&carol)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "10");
    assert!(refused.text().await.unwrap().contains("maximum of 2 live streams"));
    drop(b);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(SseClient::connect(&app.base, &carol, None, "").await.is_ok(), "a closed stream frees its place");
    app.cleanup().await;
}

#[tokio::test]
async fn two_instances_on_one_postgres_deliver_each_others_events() {
    let app = spawn_app(Backend::Postgres).await;
    let peer = spawn_peer(&app).await;
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let mut on_peer = SseClient::connect(&peer, &alice, None, "").await.unwrap();
    on_peer.next_of("status", WAIT).await.unwrap();
    app.publish(&t, to(&["user:default/alice"]), json!({"title": "published on the first"})).await;
    let e = on_peer.next_of("notification", WAIT).await.expect("the peer instance delivers it");
    assert_eq!(e.json()["payload"]["title"], "published on the first");
    app.cleanup().await;
}

both!(a_stuck_client_slows_neither_publishers_nor_other_clients, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    // Connects and never reads a byte.
    let mut stuck = Raw::connect(&app).await;
    stuck.send(&stream_request(&alice)).await;
    let mut reader = SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    reader.next_of("status", WAIT).await.unwrap();
    let big = "x".repeat(8 * 1024);
    for i in 0..150 {
        app.publish(&t, to(&["user:default/alice"]), json!({"title": format!("n{i}"), "description": big})).await;
    }
    for i in 0..150 {
        let e = reader.next_of("notification", WAIT).await.unwrap_or_else(|| panic!("event {i} never arrived"));
        assert_eq!(e.json()["payload"]["title"], format!("n{i}"));
    }
    drop(stuck);
});

/// A raw HTTP connection, for what reqwest hides: framing, reuse, closing.
struct Raw {
    conn: tokio::net::TcpStream,
    /// Everything read so far.
    got: String,
}

impl Raw {
    async fn connect(app: &crate::helpers::TestApp) -> Raw {
        let conn = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
        Raw { conn, got: String::new() }
    }

    async fn send(&mut self, request: &str) {
        use tokio::io::AsyncWriteExt;
        self.conn.write_all(request.as_bytes()).await.unwrap();
    }

    /// Reads until what was read holds every one of `wanted` (with none, until the server
    /// closes), or `wait` passes; returns whether the server closed the connection.
    async fn read_until(&mut self, wanted: &[&str], wait: Duration) -> bool {
        use tokio::io::AsyncReadExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if !wanted.is_empty() && wanted.iter().all(|w| self.got.contains(w)) {
                return false;
            }
            let mut buf = [0u8; 4096];
            match tokio::time::timeout_at(deadline, self.conn.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(n)) => self.got.push_str(&String::from_utf8_lossy(&buf[..n])),
                Err(_) => return false,
            }
        }
    }
}

/// Sends `request` on a new connection and reads as [`Raw::read_until`]; returns what was
/// read and whether the server closed the connection.
async fn raw(app: &crate::helpers::TestApp, request: &str, wanted: &[&str], wait: Duration) -> (String, bool) {
    let mut conn = Raw::connect(app).await;
    conn.send(request).await;
    let closed = conn.read_until(wanted, wait).await;
    (conn.got, closed)
}

fn stream_request(token: &str) -> String {
    format!("GET /api/notifications/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n")
}

// A connection whose first request is the stream is served without hyper (`serve::live`):
// the same router answers, and the response must be HTTP/1.1 as hyper would write it.
both!(a_stream_on_its_own_connection_is_chunked_http_1_1, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let request = stream_request(&alice);
    let publisher = {
        let base = app.base.clone();
        let t = t.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            reqwest::Client::new()
                .post(format!("{base}/api/notifications/notifications"))
                .bearer_auth(&t)
                .json(&json!({"recipients": to(&["user:default/alice"]), "payload": {"title": "over the lean path"}}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    let (got, closed) = raw(&app, &request, &["event: notification", "over the lean path"], WAIT).await;
    assert_eq!(publisher.await.unwrap(), 200);
    assert!(!closed, "the stream stays open: {got}");
    let (head, body) = got.split_once("\r\n\r\n").expect("a response head");
    let head = head.to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 200 ok\r\n"), "{head}");
    for line in ["content-type: text/event-stream", "transfer-encoding: chunked", "connection: close", "date: "] {
        assert!(head.contains(line), "{line} in {head}");
    }
    assert!(!head.contains("content-length"), "{head}");
    // Chunked framing: a hexadecimal size line before each piece of the stream.
    let first = body.lines().next().unwrap();
    assert!(u64::from_str_radix(first.trim(), 16).is_ok_and(|n| n > 0), "a chunk size first: {body}");
    assert!(body.contains("event: status"), "{body}");
});

both!(refusals_on_the_lean_stream_path_are_json_errors, |app| async {
    let alice = app.user_token("alice").await;
    // No credentials: the router's 401, with a length, and the connection closed after it.
    let (got, closed) = raw(&app, "GET /api/notifications/stream HTTP/1.1\r\nHost: x\r\n\r\n", &[], WAIT).await;
    let (head, body) = got.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 401"), "{head}");
    assert!(head.to_ascii_lowercase().contains(&format!("content-length: {}", body.len())), "{head}");
    assert!(serde_json::from_str::<serde_json::Value>(body).unwrap()["error"]["message"].is_string(), "{body}");
    assert!(closed);
    // A stream request has no body.
    let with_body = format!(
        "GET /api/notifications/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\nContent-Length: 2\r\n\r\n{{}}"
    );
    let (got, closed) = raw(&app, &with_body, &[], WAIT).await;
    assert!(got.starts_with("HTTP/1.1 400"), "{got}");
    assert!(got.contains("no body") && closed, "{got}");
    // A bad Last-Event-ID is the handler's 400, as through hyper.
    let bad = format!(
        "GET /api/notifications/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\nLast-Event-ID: x\r\n\r\n"
    );
    let (got, _) = raw(&app, &bad, &[], WAIT).await;
    assert!(got.starts_with("HTTP/1.1 400") && got.contains("Last-Event-ID"), "{got}");
    // HTTP/1.0 has no chunked encoding: the stream ends with the connection instead.
    let old = format!("GET /api/notifications/stream HTTP/1.0\r\nAuthorization: Bearer {alice}\r\n\r\n");
    let (got, closed) = raw(&app, &old, &["event: status"], WAIT).await;
    assert!(got.starts_with("HTTP/1.1 200") && !closed, "{got}");
    assert!(!got.to_ascii_lowercase().contains("transfer-encoding"), "{got}");
    assert!(got.split_once("\r\n\r\n").unwrap().1.starts_with("retry:"), "the events come unframed: {got}");
});

// A browser may send its stream request on a connection that already served a page: that one
// stays with hyper, and must stream all the same.
both!(a_stream_after_another_request_on_the_same_connection_streams, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let mut conn = Raw::connect(&app).await;
    conn.send(&format!("GET /api/notifications/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\n\r\n"))
        .await;
    assert!(!conn.read_until(&["\"read\":0}"], WAIT).await, "the connection stays open: {}", conn.got);
    assert!(conn.got.starts_with("HTTP/1.1 200") && conn.got.contains("\"read\":0}"), "{}", conn.got);
    conn.got.clear();
    conn.send(&stream_request(&alice)).await;
    assert!(!conn.read_until(&["event: status"], WAIT).await, "{}", conn.got);
    assert!(conn.got.starts_with("HTTP/1.1 200") && conn.got.contains("event: status"), "{}", conn.got);
    assert!(!conn.got.to_ascii_lowercase().contains("connection: close"), "hyper serves it: {}", conn.got);
    app.publish(&t, to(&["user:default/alice"]), json!({"title": "through hyper"})).await;
    assert!(!conn.read_until(&["through hyper"], WAIT).await);
    assert!(conn.got.contains("through hyper"), "{}", conn.got);
});

// A graceful shutdown ends every stream, on the lean path as through hyper, so that it
// completes (clients reconnect, to the restarted server or another, with Last-Event-ID).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_ends_the_streams_of_both_paths() {
    let mut app = spawn_app(Backend::Sqlite).await;
    let alice = app.user_token("alice").await;
    let mut lean = Raw::connect(&app).await;
    lean.send(&stream_request(&alice)).await;
    assert!(!lean.read_until(&["event: status"], WAIT).await && lean.got.contains("event: status"), "{}", lean.got);
    let mut pooled = Raw::connect(&app).await;
    pooled
        .send(&format!("GET /api/notifications/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\n\r\n"))
        .await;
    assert!(!pooled.read_until(&["\"read\":0}"], WAIT).await);
    pooled.send(&stream_request(&alice)).await;
    assert!(!pooled.read_until(&["event: status"], WAIT).await && pooled.got.contains("event: status"));

    tokio::time::timeout(WAIT, app.shut_down()).await.expect("no open stream holds the shutdown up");
    assert!(lean.read_until(&[], WAIT).await, "the lean path closed its stream");
    assert!(lean.got.ends_with("0\r\n\r\n"), "with the end of a chunked body: {}", lean.got);
    assert!(pooled.read_until(&[], WAIT).await, "hyper closed its stream");
    app.cleanup().await;
}
