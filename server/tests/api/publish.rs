use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::both;
use crate::helpers::{everyone, to};

const PUBLISH: &str = "/api/notifications/notifications";

both!(each_invalid_request_gets_a_clear_400, |app| async {
    let t = app.service_token("external:ci").await;
    let long = "x".repeat(256);
    let cases = [
        (json!({"payload": {"title": "x"}}), "recipients"),
        (json!({"recipients": {"type": "broadcast"}}), "payload"),
        (json!({"recipients": {"type": "broadcast"}, "payload": {}}), "title"),
        (json!({"recipients": {"type": "broadcast"}, "payload": {"title": "  "}}), "title"),
        (json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "severity": "urgent"}}), "severity"),
        (
            json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "link": "javascript:alert(1)"}}),
            "link",
        ),
        (json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "link": "data:text/html,hi"}}), "link"),
        (json!({"recipients": {"type": "broadcast"}, "payload": {"title": long}}), "title"),
        (json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "topic": long}}), "topic"),
        (json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "scope": long}}), "scope"),
        (json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "icon": long}}), "icon"),
        (
            json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "description": "d".repeat(10 * 1024 + 1)}}),
            "description",
        ),
        (
            json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "metadata": {"k": "m".repeat(16 * 1024)}}}),
            "metadata",
        ),
        (
            json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "metadata": "not an object"}}),
            "metadata",
        ),
        (json!({"recipients": {"type": "entity", "entityRef": []}, "payload": {"title": "x"}}), "entityRef"),
        (json!({"recipients": {"type": "entity", "entityRef": "alice"}, "payload": {"title": "x"}}), "entity ref"),
        (
            json!({"recipients": {"type": "entity", "entityRef": "component:default/x"}, "payload": {"title": "x"}}),
            "kind",
        ),
        (json!({"recipients": {"type": "team"}, "payload": {"title": "x"}}), "recipients"),
    ];
    for (body, expected) in cases {
        let r = app.post(PUBLISH, &t, body.clone()).await;
        assert_eq!(r.status, 400, "{body} -> {:?}", r.body);
        assert_eq!(r.body["error"]["name"], "InputError");
        assert!(r.message().contains(expected), "message for {body} should mention {expected}: {}", r.message());
    }
    let r = app
        .send(
            app.client
                .post(format!("{}{PUBLISH}", app.base))
                .bearer_auth(&t)
                .header("content-type", "application/json")
                .body("{not json"),
        )
        .await;
    assert_eq!(r.status, 400);
    let r = app.send(app.client.post(format!("{}{PUBLISH}", app.base)).bearer_auth(&t).body("title=x")).await;
    assert_eq!(r.status, 415);
    let huge =
        json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x", "description": "d".repeat(300 * 1024)}});
    let r = app.post(PUBLISH, &t, huge).await;
    assert_eq!(r.status, 413);
    assert_eq!(r.body["response"]["statusCode"], 413);
    // Nothing of the refused requests was stored.
    let alice = app.user_token("alice").await;
    assert_eq!(app.get("/api/notifications/notifications", &alice).await.body["totalCount"], 0);
});

// PostgreSQL's text cannot hold a NUL character and SQLite's search index stops at one, so
// both refuse it alike, before anything is written: a publish with one must fail alone, not
// the publishes sharing its group commit.
both!(text_with_a_nul_is_refused_alike_and_fails_no_other_request, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    for field in ["title", "description", "topic", "scope", "icon", "link"] {
        let mut payload = json!({"title": "x"});
        payload[field] = json!("https://example.com/a\u{0}b");
        let r = app.post(PUBLISH, &t, json!({"recipients": {"type": "broadcast"}, "payload": payload})).await;
        assert_eq!(r.status, 400, "{field}: {:?}", r.body);
        assert!(r.message().contains(&format!("payload.{field}")) && r.message().contains("NUL"), "{}", r.message());
    }
    let requests = (0..16).map(|i| {
        let title = if i == 5 { "bad\u{0}".to_string() } else { format!("good {i}") };
        app.post(
            PUBLISH,
            &t,
            json!({"recipients": {"type": "entity", "entityRef": "user:default/alice"}, "payload": {"title": title}}),
        )
    });
    let statuses: Vec<u16> = futures::future::join_all(requests).await.iter().map(|r| r.status).collect();
    let expected: Vec<u16> = (0..16).map(|i| if i == 5 { 400 } else { 200 }).collect();
    assert_eq!(statuses, expected);
    assert_eq!(app.get(PUBLISH, &alice).await.body["totalCount"], 15);

    for query in ["topic=a%00b", "search=a%00b"] {
        let r = app.get(&format!("{PUBLISH}?{query}"), &alice).await;
        assert_eq!(r.status, 400, "{query}: {:?}", r.body);
        assert!(r.message().contains("NUL"), "{}", r.message());
    }
    let r = app
        .post(
            "/api/notifications/settings",
            &alice,
            json!({"channels": [{"id": "Web", "origins": [{"id": "external:c\u{0}i", "enabled": false}]}]}),
        )
        .await;
    assert_eq!(r.status, 400, "{:?}", r.body);
    assert!(r.message().contains("origin id") && r.message().contains("NUL"), "{}", r.message());
});

both!(links_resolve_against_the_base_url, |app| async {
    let t = app.service_token("external:ci").await;
    let n = app.publish(&t, everyone(), json!({"title": "x", "link": "/catalog/default/component/api"})).await;
    assert_eq!(n[0]["payload"]["link"], format!("{}/catalog/default/component/api", app.base));
    let n = app.publish(&t, everyone(), json!({"title": "x", "link": "https://ci.example.com/b/1"})).await;
    assert_eq!(n[0]["payload"]["link"], "https://ci.example.com/b/1");
});

both!(groups_resolve_recursively_with_exclusions_and_no_duplicates, |app| async {
    let t = app.service_token("external:ci").await;
    let users = |ns: &[serde_json::Value]| {
        let mut u: Vec<String> = ns.iter().map(|n| n["user"].as_str().unwrap().to_string()).collect();
        u.sort();
        u
    };
    let n = app
        .publish(
            &t,
            to(&["group:default/engineering", "user:default/alice", "User:Default/Dave"]),
            json!({"title": "all"}),
        )
        .await;
    assert_eq!(users(&n), ["user:default/alice", "user:default/bob", "user:default/carol", "user:default/dave"]);
    let n = app
        .publish(&t, json!({"type": "entity", "entityRef": "group:engineering", "excludeEntityRef": ["group:default/frontend", "user:default/bob"]}), json!({"title": "some"}))
        .await;
    assert_eq!(users(&n), ["user:default/alice"]);
    // A user the directory does not know yet still receives, as in Backstage.
    let n = app.publish(&t, to(&["user:default/newcomer"]), json!({"title": "welcome"})).await;
    assert_eq!(users(&n), ["user:default/newcomer"]);
    let newcomer = herald_core::auth::create_personal_token(&app.db, &"user:default/newcomer".parse().unwrap(), "t")
        .await
        .unwrap()
        .secret;
    assert_eq!(app.get("/api/notifications/notifications", &newcomer).await.body["totalCount"], 1);
    assert_eq!(n[0]["origin"], "external:ci");
    assert_eq!(n[0]["payload"]["severity"], "normal");
});

both!(a_scope_update_replaces_the_payload_and_makes_it_unread, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let first = app.publish(&t, to(&["user:default/alice"]), json!({"title": "Build 1 running", "scope": "build-1", "topic": "builds", "severity": "high", "description": "old"})).await;
    let id = first[0]["id"].as_str().unwrap().to_string();
    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [id], "read": true, "saved": true}))
        .await;
    let second =
        app.publish(&t, to(&["user:default/alice"]), json!({"title": "Build 1 passed", "scope": "build-1"})).await;
    assert_eq!(second[0]["id"], id.as_str(), "the scope keeps the id");
    let n = app.get(&format!("/api/notifications/notifications/{id}"), &alice).await.body;
    assert_eq!(n["payload"]["title"], "Build 1 passed");
    assert_eq!(n["payload"]["severity"], "normal", "fields left out are reset, not kept");
    assert!(n["payload"].get("description").is_none() && n["payload"].get("topic").is_none(), "{n}");
    assert!(n["read"].is_null(), "an update makes it unread again");
    assert!(!n["saved"].is_null(), "saved survives an update");
    assert!(n["updated"].is_string());
    assert_eq!(app.get("/api/notifications/notifications", &alice).await.body["totalCount"], 1);
    // Another origin's same scope is a different notification.
    let other = app.service_token("external:other").await;
    let third = app.publish(&other, to(&["user:default/alice"]), json!({"title": "x", "scope": "build-1"})).await;
    assert_ne!(third[0]["id"], id.as_str());
});

both!(publishes_sharing_a_transaction_see_each_others_rows, |app| async {
    // Publishes that arrive together are written in one transaction, whose inserts are held
    // back and written many rows to a statement (core::db::deferred). A scope update must
    // still find the notification an earlier publish of its batch created, and every
    // acknowledged notification must have its event in the log.
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    // The writer is held while the publishes arrive (SQLite's one connection; PostgreSQL's
    // event-log lock), so that they queue up and go in batches.
    let held = app.db.begin_inbox().await.unwrap();
    let publishes = (0..120).map(|i| {
        // Two scopes: the first publish to reach the writer goes alone, and may create one of
        // them before the batch; the other is then created within the batch.
        let payload = if i % 3 == 0 {
            json!({"title": format!("Build {i}"), "scope": format!("build-{}", i % 2)})
        } else {
            json!({"title": format!("Notification {i}"), "topic": "batch"})
        };
        app.publish(&t, to(&["user:default/alice"]), payload)
    });
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        drop(held);
    };
    let (stored, ()) = futures::future::join(futures::future::join_all(publishes), release).await;
    let stored: Vec<Value> = stored.into_iter().map(|mut s| s.remove(0)).collect();
    for scope in ["build-0", "build-1"] {
        let scoped: BTreeSet<&str> =
            stored.iter().filter(|n| n["payload"]["scope"] == scope).map(|n| n["id"].as_str().unwrap()).collect();
        assert_eq!(scoped.len(), 1, "every publish to {scope} updates the same notification: {scoped:?}");
    }
    let page = app.get("/api/notifications/notifications?limit=200", &alice).await.body;
    assert_eq!(page["totalCount"], 82, "80 notifications and the two scoped ones");
    let listed: BTreeSet<&str> =
        page["notifications"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    let acknowledged: BTreeSet<&str> = stored.iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(listed, acknowledged);
    let logged: Vec<String> = herald_core::with_pool!(app.db.reader(), |c| sqlx::query_scalar(
        "SELECT payload FROM events WHERE kind = 'notification' ORDER BY id"
    )
    .fetch_all(c)
    .await)
    .unwrap();
    assert_eq!(logged.len(), 120, "one event per publish");
    let logged: BTreeSet<String> =
        logged.iter().map(|p| serde_json::from_str::<Value>(p).unwrap()["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(logged, acknowledged.iter().map(|id| id.to_string()).collect());
});

both!(a_re_sent_broadcast_returns_its_stored_id, |app| async {
    let t = app.service_token("plugin:announcements").await;
    let bob = app.user_token("bob").await;
    let first = app.publish(&t, everyone(), json!({"title": "v1", "scope": "maintenance"})).await;
    assert_eq!(first.len(), 1);
    assert!(first[0]["user"].is_null());
    let id = first[0]["id"].as_str().unwrap().to_string();
    app.post("/api/notifications/notifications/update", &bob, json!({"ids": [id], "read": true})).await;
    let second = app.publish(&t, everyone(), json!({"title": "v2", "scope": "maintenance"})).await;
    assert_eq!(second[0]["id"], id.as_str());
    let n = app.get(&format!("/api/notifications/notifications/{id}"), &bob).await.body;
    assert_eq!(n["payload"]["title"], "v2");
    assert!(n["read"].is_null());
});

both!(idempotency_keys_replay_and_refuse_other_bodies, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let body = json!({"recipients": to(&["user:default/alice"]), "payload": {"title": "once"}});
    let send = |b: serde_json::Value, key: &'static str| {
        app.send(
            app.client.post(format!("{}{PUBLISH}", app.base)).bearer_auth(&t).header("idempotency-key", key).json(&b),
        )
    };
    let a = send(body.clone(), "deploy-42").await;
    let b = send(body.clone(), "deploy-42").await;
    assert_eq!((a.status, b.status), (200, 200));
    assert_eq!(a.body, b.body, "the replay answers exactly the first response");
    assert_eq!(b.headers.get("idempotent-replayed").unwrap(), "true");
    assert_eq!(app.get("/api/notifications/notifications", &alice).await.body["totalCount"], 1);
    let c = send(json!({"recipients": to(&["user:default/alice"]), "payload": {"title": "twice"}}), "deploy-42").await;
    assert_eq!(c.status, 422);
    assert!(c.message().contains("deploy-42"));
    // The same key from another token is independent.
    let other = app.service_token("external:ci").await;
    let d = app
        .send(
            app.client
                .post(format!("{}{PUBLISH}", app.base))
                .bearer_auth(&other)
                .header("idempotency-key", "deploy-42")
                .json(&body),
        )
        .await;
    assert_eq!(d.status, 200);
    assert_eq!(app.get("/api/notifications/notifications", &alice).await.body["totalCount"], 2);
});

both!(a_disabled_web_channel_means_the_notification_is_not_stored, |app| async {
    let t = app.service_token("external:ci").await;
    let bob = app.user_token("bob").await;
    let r = app
        .post("/api/notifications/settings", &bob, json!({"channels": [{"id": "Web", "origins": [{"id": "external:ci", "enabled": true, "topics": [{"id": "noise", "enabled": false}]}]}]}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let n = app.publish(&t, to(&["group:default/platform"]), json!({"title": "noisy", "topic": "noise"})).await;
    let users: Vec<&str> = n.iter().map(|x| x["user"].as_str().unwrap()).collect();
    assert_eq!(users, ["user:default/alice"]);
    let n = app.publish(&t, to(&["group:default/platform"]), json!({"title": "useful", "topic": "deploys"})).await;
    assert_eq!(n.len(), 2);
});

both!(changed_settings_apply_at_once_here_and_within_a_second_elsewhere, |app| async {
    let t = app.service_token("external:ci").await;
    let bob = app.user_token("bob").await;
    let noisy = || app.publish(&t, to(&["user:default/bob"]), json!({"title": "noisy", "topic": "noise"}));
    let noise = |enabled: bool| json!({"channels": [{"id": "Web", "origins": [{"id": "external:ci", "enabled": true, "topics": [{"id": "noise", "enabled": enabled}]}]}]});
    // Publishing reads the settings for this origin and topic, and keeps them for a second.
    assert_eq!(noisy().await.len(), 1);
    // Changed through this instance: the next publish follows them.
    assert_eq!(app.post("/api/notifications/settings", &bob, noise(false)).await.status, 200);
    assert_eq!(noisy().await.len(), 0, "turned off here: at once");
    // Changed elsewhere (another instance sharing the database keeps its own readings).
    let elsewhere = herald_core::settings::SettingsPolicy::default();
    let bob_ref: herald_model::EntityRef = "user:default/bob".parse().unwrap();
    let on = serde_json::from_value(noise(true)).unwrap();
    herald_core::settings::save_settings(&app.db, &elsewhere, &bob_ref, &on).await.unwrap();
    let changed = std::time::Instant::now();
    while noisy().await.is_empty() {
        assert!(
            changed.elapsed() < herald_core::recent::TTL + std::time::Duration::from_secs(2),
            "settings changed elsewhere still ignored {:?} later",
            changed.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
});

both!(legacy_root_routes_publish_and_list, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let r = app
        .post(
            "/api/notifications",
            &t,
            json!({"recipients": to(&["user:default/alice"]), "payload": {"title": "legacy"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let id = r.body[0]["id"].as_str().unwrap().to_string();
    assert_eq!(app.get("/api/notifications", &alice).await.body["totalCount"], 1);
    assert_eq!(app.get(&format!("/api/notifications/{id}"), &alice).await.body["id"], id.as_str());
    let r = app.post("/api/notifications/update", &alice, json!({"ids": [id], "read": true})).await;
    assert!(!r.body[0]["read"].is_null());
});
