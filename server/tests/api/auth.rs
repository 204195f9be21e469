use serde_json::json;

use crate::both;
use crate::helpers::{Backend, spawn_app_with, to};

const PUBLISH: &str = "/api/notifications/notifications";

both!(a_missing_or_bad_token_is_401, |app| async {
    for path in ["/api/notifications/notifications", "/api/notifications/status", "/api/notifications/settings"] {
        let r = app.call("GET", path, None, None).await;
        assert_eq!(r.status, 401, "{path}");
        assert_eq!(r.body["error"]["name"], "AuthenticationError");
        let r = app.call("GET", path, Some("hrld_p_0000"), None).await;
        assert_eq!(r.status, 401, "{path}");
    }
    let r = app
        .call(
            "POST",
            "/api/notifications/notifications",
            Some("nonsense"),
            Some(json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x"}})),
        )
        .await;
    assert_eq!(r.status, 401);
});

both!(service_tokens_publish_but_cannot_read, |app| async {
    let service = app.service_token("external:ci").await;
    for path in [
        "/api/notifications/notifications",
        "/api/notifications/status",
        "/api/notifications/topics",
        "/api/notifications/settings",
    ] {
        let r = app.get(path, &service).await;
        assert_eq!(r.status, 403, "{path}");
        assert_eq!(r.body["error"]["name"], "NotAllowedError");
    }
    let r = app.post("/api/notifications/notifications/update", &service, json!({"ids": [], "read": true})).await;
    assert_eq!(r.status, 403);
});

both!(users_cannot_publish_through_the_api, |app| async {
    let alice = app.user_token("alice").await;
    let r = app
        .post(
            "/api/notifications/notifications",
            &alice,
            json!({"recipients": to(&["user:default/bob"]), "payload": {"title": "hi"}}),
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.message().contains("service tokens"));
});

both!(revoked_tokens_stop_working, |app| async {
    let secret = app.service_token("external:ci").await;
    let publish =
        || app.post(PUBLISH, &secret, json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x"}}));
    // Used first, so that the instance has it among the tokens it verified a moment ago.
    assert_eq!(publish().await.status, 200);
    let tokens = herald_core::auth::list_tokens(&app.db, herald_core::auth::TokenKind::Service, None).await.unwrap();
    app.hub.revoke_token(&tokens[0].id, None).await.unwrap();
    assert_eq!(publish().await.status, 401, "revoked through the instance: refused at once");
});

both!(a_token_revoked_elsewhere_stops_working_within_the_cache_time, |app| async {
    let secret = app.service_token("external:ci").await;
    let publish =
        || app.post(PUBLISH, &secret, json!({"recipients": {"type": "broadcast"}, "payload": {"title": "x"}}));
    assert_eq!(publish().await.status, 200);
    // Revoked behind the instance's back, as `herald token revoke` or another instance does.
    let tokens = herald_core::auth::list_tokens(&app.db, herald_core::auth::TokenKind::Service, None).await.unwrap();
    herald_core::auth::revoke_token(&app.db, &tokens[0].id, None).await.unwrap();
    let revoked = std::time::Instant::now();
    loop {
        let status = publish().await.status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked.elapsed() < herald_core::auth::TOKEN_CACHE_TTL + std::time::Duration::from_secs(2),
            "a token revoked elsewhere was still accepted {:?} later",
            revoked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // An unknown or revoked token is never remembered: it stays refused.
    assert_eq!(publish().await.status, 401);
});

both!(password_sign_in_sets_a_session_cookie_that_reads_the_inbox, |app| async {
    let alice: herald_model::EntityRef = "user:default/alice".parse().unwrap();
    herald_core::directory::set_password(&app.db, &alice, app.password).await.unwrap();
    let service = app.service_token("external:ci").await;
    app.publish(&service, to(&["user:default/alice"]), json!({"title": "for alice"})).await;

    let wrong = app
        .client
        .post(format!("{}/api/signin", app.base))
        .form(&[("username", "alice"), ("password", "nope-nope")])
        .send()
        .await
        .unwrap();
    assert!(wrong.headers().get("set-cookie").is_none());
    let unknown = app
        .client
        .post(format!("{}/api/signin", app.base))
        .form(&[("username", "mallory"), ("password", "nope-nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), unknown.status(), "unknown users must look like wrong passwords");
    let wrong_text = wrong.text().await.unwrap();
    assert_eq!(wrong_text, unknown.text().await.unwrap());

    let ok = app
        .client
        .post(format!("{}/api/signin", app.base))
        .form(&[("username", "alice"), ("password", app.password)])
        .send()
        .await
        .unwrap();
    let cookie = ok.headers().get("set-cookie").expect("a session cookie").to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    let r =
        app.send(app.client.get(format!("{}/api/notifications/notifications", app.base)).header("cookie", &pair)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["notifications"][0]["payload"]["title"], "for alice");
    // Secrets are stored hashed: the cookie value is nowhere in the database.
    let secret = pair.split_once('=').unwrap().1;
    let stored: Vec<String> =
        herald_core::with_pool!(app.db.reader(), |c| sqlx::query_scalar("SELECT id_hash FROM sessions")
            .fetch_all(c)
            .await)
        .unwrap();
    assert!(!stored.iter().any(|h| h == secret));
});

#[tokio::test]
async fn a_trusted_proxy_signs_users_in_and_others_are_ignored() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app_with(backend, |s| {
            s.auth.proxy_header = Some("X-Forwarded-Email".into());
            s.auth.trusted_proxies = vec!["127.0.0.1".into()];
        })
        .await;
        let r = app
            .send(
                app.client
                    .get(format!("{}/api/notifications/status", app.base))
                    .header("x-forwarded-email", "carol@example.com"),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let r = app
            .send(
                app.client
                    .get(format!("{}/api/notifications/status", app.base))
                    .header("x-forwarded-email", "newcomer@example.com"),
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(
            herald_core::directory::get_user(&app.db, &"user:default/newcomer".parse().unwrap())
                .await
                .unwrap()
                .is_some()
        );
        app.cleanup().await;

        let untrusted = spawn_app_with(backend, |s| {
            s.auth.proxy_header = Some("X-Forwarded-Email".into());
            s.auth.trusted_proxies = vec!["10.9.9.9".into()];
        })
        .await;
        let r = untrusted
            .send(
                untrusted
                    .client
                    .get(format!("{}/api/notifications/status", untrusted.base))
                    .header("x-forwarded-email", "carol@example.com"),
            )
            .await;
        assert_eq!(r.status, 401, "a header from an untrusted address must be ignored");
        untrusted.cleanup().await;
    }
}
