//! Abuse: cross-site requests and password guessing.

use serde_json::json;

use crate::both;
use crate::helpers::{TestApp, to};

/// Gives the catalog's users passwords (the catalog has none).
async fn passwords(app: &TestApp) {
    for user in ["alice", "bob"] {
        let r: herald_model::EntityRef = format!("user:default/{user}").parse().unwrap();
        herald_core::directory::set_password(&app.db, &r, app.password).await.unwrap();
    }
}

async fn sign_in(app: &TestApp, user: &str, password: &str) -> reqwest::Response {
    app.client
        .post(format!("{}/api/signin", app.base))
        .form(&[("username", user), ("password", password)])
        .send()
        .await
        .unwrap()
}

both!(state_changes_with_the_session_cookie_must_come_from_herald_itself, |app| async {
    let ci = app.service_token("external:ci").await;
    let stored = app.publish(&ci, to(&["user:default/alice"]), json!({"title": "Do not touch"})).await;
    let id = stored[0]["id"].as_str().unwrap();
    passwords(&app).await;
    let ok = sign_in(&app, "alice", app.password).await;
    let cookie = ok.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let change = |origin: Option<&str>| {
        let mut req = app
            .client
            .post(format!("{}/api/notifications/state-form", app.base))
            .header("cookie", &cookie)
            .form(&[("id", id), ("field", "saved"), ("value", "true")]);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let evil = change(Some("https://evil.example")).await.unwrap();
    assert_eq!(evil.status(), 403);
    assert!(evil.text().await.unwrap().contains("another site"));
    let alice = app.user_token("alice").await;
    let n = app.get(&format!("/api/notifications/notifications/{id}"), &alice).await.body;
    assert!(n["saved"].is_null(), "nothing changed");
    let referer = app
        .client
        .post(format!("{}/api/notifications/notifications/update", app.base))
        .header("cookie", &cookie)
        .header("referer", "https://evil.example/page")
        .json(&json!({"ids": [id], "saved": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(referer.status(), 403, "the REST API is covered too; Referer counts without Origin");

    let own = change(Some(&app.base)).await.unwrap();
    assert!(own.status().is_success() || own.status().is_redirection(), "{}", own.status());
    assert!(app.get(&format!("/api/notifications/notifications/{id}"), &alice).await.body["saved"].is_string());
    // A bearer token is not an ambient credential: no origin check.
    let api = app
        .client
        .post(format!("{}/api/notifications/notifications/update", app.base))
        .bearer_auth(&alice)
        .header("origin", "https://evil.example")
        .json(&json!({"ids": [id], "read": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 200);
});

both!(password_guessing_is_throttled_without_telling_who_exists, |app| async {
    passwords(&app).await;
    for _ in 0..5 {
        let r = sign_in(&app, "alice", "wrong-password").await;
        assert!(r.headers().get("set-cookie").is_none());
    }
    let locked = sign_in(&app, "alice", app.password).await;
    assert_eq!(locked.status(), 429, "even the right password waits");
    assert!(locked.headers().get("set-cookie").is_none());
    let wait: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait > 60 && wait <= 15 * 60, "{wait}");
    assert!(locked.text().await.unwrap().contains("Too many failed sign-ins"));
    for _ in 0..5 {
        sign_in(&app, "mallory", "wrong-password").await;
    }
    assert_eq!(sign_in(&app, "mallory", "x").await.status(), 429, "unknown names are throttled alike");
    let bob = sign_in(&app, "bob", app.password).await;
    let status = bob.status();
    assert!(bob.headers().get("set-cookie").is_some(), "others still sign in: {status} {}", bob.text().await.unwrap());
});

mod rate_limits {
    use super::*;
    use crate::helpers::{Backend, spawn_app_with};

    async fn run(backend: Backend) {
        let app = spawn_app_with(backend, |s| {
            s.limits.publish_per_minute = 60;
            s.limits.publish_burst = 3;
            s.limits.user_per_minute = 60;
            s.limits.user_burst = 5;
        })
        .await;
        let (noisy, quiet) = (app.service_token("external:noisy").await, app.service_token("external:quiet").await);
        let send = |token: &str| {
            app.client
                .post(format!("{}/api/notifications/notifications", app.base))
                .bearer_auth(token)
                .json(&json!({"recipients": {"type": "entity", "entityRef": "user:default/alice"}, "payload": {"title": "t"}}))
                .send()
        };
        for left in [2, 1, 0] {
            let r = send(&noisy).await.unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["ratelimit-limit"], "3");
            assert_eq!(r.headers()["ratelimit-remaining"], left.to_string().as_str());
        }
        let limited = send(&noisy).await.unwrap();
        assert_eq!(limited.status(), 429);
        let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        assert_eq!(limited.headers()["ratelimit-remaining"], "0");
        let body: serde_json::Value = limited.json().await.unwrap();
        assert_eq!(body["error"]["name"], "TooManyRequestsError");
        assert_eq!(send(&quiet).await.unwrap().status(), 200, "another publisher is not slowed");

        let alice = app.user_token("alice").await;
        for _ in 0..5 {
            assert_eq!(app.get("/api/notifications/status", &alice).await.status, 200);
        }
        assert_eq!(app.get("/api/notifications/status", &alice).await.status, 429, "readers have a bucket too");
        let bob = app.user_token("bob").await;
        assert_eq!(app.get("/api/notifications/status", &bob).await.status, 200);
        app.cleanup().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        run(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        run(Backend::Postgres).await;
    }
}

/// Who is calling, for the authorization matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Anonymous,
    /// carol, who owns the notification.
    Owner,
    /// bob, another user.
    Other,
    /// alice, an administrator (not the owner).
    Admin,
    Service,
    RevokedToken,
    ExpiredSession,
}

both!(every_route_answers_each_role_as_it_should_and_nothing_leaks, |app| async {
    use Role::*;
    let ci = app.service_token("external:ci").await;
    let stored = app.publish(&ci, to(&["user:default/carol"]), json!({"title": "carol's secret"})).await;
    let id = stored[0]["id"].as_str().unwrap().to_string();
    let revoked = app.user_token("carol").await;
    let info = herald_core::auth::list_tokens(
        &app.db,
        herald_core::auth::TokenKind::Personal,
        Some(&"user:default/carol".parse().unwrap()),
    )
    .await
    .unwrap();
    herald_core::auth::revoke_token(&app.db, &info[0].id, None).await.unwrap();
    let expired =
        herald_core::auth::create_session(&app.db, &"user:default/carol".parse().unwrap(), -1000).await.unwrap();
    let tokens = [
        (Owner, Some(app.user_token("carol").await)),
        (Other, Some(app.user_token("bob").await)),
        (Admin, Some(app.user_token("alice").await)),
        (Service, Some(ci.clone())),
        (RevokedToken, Some(revoked)),
        (Anonymous, None),
        (ExpiredSession, None),
    ];
    let one = format!("/api/notifications/notifications/{id}");
    let publish =
        json!({"recipients": {"type": "entity", "entityRef": "user:default/carol"}, "payload": {"title": "x"}});
    let update = json!({"ids": [id], "saved": true});
    let settings = json!({"channels": [{"id": "Web", "origins": [{"id": "external:ci", "enabled": false}]}]});
    // (method, path, body, expected status per role in the order of `tokens`)
    let matrix: Vec<(&str, &str, Option<serde_json::Value>, [u16; 7])> = vec![
        ("GET", "/api/notifications/notifications", None, [200, 200, 200, 403, 401, 401, 401]),
        ("GET", &one, None, [200, 404, 404, 403, 401, 401, 401]),
        ("POST", "/api/notifications/notifications/update", Some(update.clone()), [200, 200, 200, 403, 401, 401, 401]),
        ("GET", "/api/notifications/status", None, [200, 200, 200, 403, 401, 401, 401]),
        ("GET", "/api/notifications/topics", None, [200, 200, 200, 403, 401, 401, 401]),
        ("GET", "/api/notifications/settings", None, [200, 200, 200, 403, 401, 401, 401]),
        ("POST", "/api/notifications/settings", Some(settings.clone()), [200, 200, 200, 403, 401, 401, 401]),
        ("POST", "/api/notifications/notifications", Some(publish.clone()), [403, 403, 403, 200, 401, 401, 401]),
        ("GET", "/api/deliveries", None, [403, 403, 200, 403, 401, 401, 401]),
        ("POST", "/api/deliveries/retry", Some(json!({})), [403, 403, 200, 403, 401, 401, 401]),
    ];
    for (method, path, body, expected) in &matrix {
        for ((role, token), want) in tokens.iter().zip(expected) {
            let mut req = app.client.request(method.parse().unwrap(), format!("{}{path}", app.base));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if *role == ExpiredSession {
                req = req.header("cookie", format!("{}={expired}", herald_core::auth::SESSION_COOKIE));
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let r = app.send(req).await;
            assert_eq!(r.status, *want, "{method} {path} as {role:?}: {}", r.body);
            if *role == Other && *path == "/api/notifications/notifications" {
                assert!(!r.body.to_string().contains("carol's secret"), "another user's list leaks nothing");
            }
            if *role == Other && *path == "/api/notifications/notifications/update" {
                assert_eq!(r.body, json!([]), "another user's ids are ignored");
            }
        }
    }
    // Only the owner changed anything; the stream follows the same rules.
    let owner = tokens[0].1.clone().unwrap();
    let n = app.get(&one, &owner).await.body;
    assert!(n["saved"].is_string(), "the owner saved it");
    for (role, token) in &tokens {
        let mut req =
            app.client.get(format!("{}/api/notifications/stream", app.base)).header("accept", "text/event-stream");
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let status = req.send().await.unwrap().status().as_u16();
        let want = match role {
            Owner | Other | Admin => 200,
            Service => 403,
            _ => 401,
        };
        assert_eq!(status, want, "stream as {role:?}");
    }
});

both!(json_bodies_must_be_objects, |app| async {
    let alice = app.user_token("alice").await;
    for path in ["/api/notifications/settings", "/api/notifications/notifications/update"] {
        let r = app.post(path, &alice, json!([])).await;
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert_eq!(r.body["error"]["message"], "the request body must be a JSON object");
    }
});
