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
    use tokio::io::AsyncWriteExt;
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    // Connects and never reads a byte.
    let mut stuck = tokio::net::TcpStream::connect(app.base.trim_start_matches("http://")).await.unwrap();
    stuck
        .write_all(
            format!("GET /api/notifications/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {alice}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
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
