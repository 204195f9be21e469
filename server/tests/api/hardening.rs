//! Abuse: cross-site requests, password guessing and addresses that would lead off the site.

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

both!(server_functions_answer_only_the_signed_in_owner, |app| async {
    let ci = app.service_token("external:ci").await;
    let stored = app.publish(&ci, to(&["user:default/carol"]), json!({"title": "carol's secret"})).await;
    let id = stored[0]["id"].as_str().unwrap().to_string();
    let carol = app.user_token("carol").await;
    let carol_tokens = herald_core::auth::list_tokens(
        &app.db,
        herald_core::auth::TokenKind::Personal,
        Some(&"user:default/carol".parse().unwrap()),
    )
    .await
    .unwrap();
    let bob = app.user_token("bob").await;
    let bulk_key = format!("ids[id:{id}]");
    let query = [
        ("query[view]", "all"),
        ("query[severity]", ""),
        ("query[topic]", ""),
        ("query[since]", ""),
        ("query[q]", ""),
        ("query[sort]", ""),
        ("query[page]", "1"),
        ("query[per]", "20"),
    ];
    enum Body {
        Form(Vec<(String, String)>),
        Json(serde_json::Value),
    }
    let form = |pairs: &[(&str, &str)]| Body::Form(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    // Every server function a signed-in user calls, aimed at carol's notification and token.
    let calls: Vec<(&str, Body)> = vec![
        ("notifications/state", Body::Json(json!({"ids": [id], "read": true, "saved": true, "archived": true}))),
        ("notifications/snooze", Body::Json(json!({"ids": [id], "choice": "1h", "tz": 0}))),
        ("notifications/snooze-form", form(&[("id", &id), ("choice", "1h")])),
        ("notifications/state-form", form(&[("id", &id), ("field", "saved"), ("value", "true")])),
        ("notifications/bulk-form", form(&[(&bulk_key, "on"), ("action", "done")])),
        ("notifications/mark-all-read", form(&query)),
        ("notification", form(&[("id", &id)])),
        ("inbox", form(&query)),
        ("settings", form(&[])),
        (
            "settings/channel",
            form(&[("channel", "Web"), ("origin", "external:ci"), ("topic", ""), ("enabled", "false")]),
        ),
        ("settings/mark-read-on-open", form(&[("enabled", "false")])),
        ("settings/email-mode", form(&[("mode", "daily")])),
        ("settings/webhook", form(&[("url", "https://hooks.example/x")])),
        ("settings/webhook/remove", form(&[])),
        ("settings/tokens/create", form(&[("name", "sneaky")])),
        ("settings/tokens/revoke", form(&[("id", &carol_tokens[0].id)])),
    ];
    // Callers who are nobody: no credentials, a publisher's token, a revoked token, an
    // expired session. Then bob, signed in but not the owner.
    let revoked = app.user_token("carol").await;
    let all = herald_core::auth::list_tokens(
        &app.db,
        herald_core::auth::TokenKind::Personal,
        Some(&"user:default/carol".parse().unwrap()),
    )
    .await
    .unwrap();
    let second = all.iter().find(|t| t.id != carol_tokens[0].id).unwrap();
    herald_core::auth::revoke_token(&app.db, &second.id, None).await.unwrap();
    let expired =
        herald_core::auth::create_session(&app.db, &"user:default/carol".parse().unwrap(), -1000).await.unwrap();
    let expired = format!("{}={expired}", herald_core::auth::SESSION_COOKIE);
    enum Caller<'a> {
        Anonymous,
        Bearer(&'a str),
        Cookie(&'a str),
    }
    let nobody = [Caller::Anonymous, Caller::Bearer(&ci), Caller::Bearer(&revoked), Caller::Cookie(&expired)];
    let send = |endpoint: &str, body: &Body, caller: &Caller| {
        let mut req = app.client.post(format!("{}/api/{endpoint}", app.base)).header("origin", &app.base);
        req = match caller {
            Caller::Anonymous => req,
            Caller::Bearer(t) => req.bearer_auth(t),
            Caller::Cookie(c) => req.header("cookie", *c),
        };
        let req = match body {
            Body::Form(pairs) => req.form(pairs),
            Body::Json(v) => req.json(v),
        };
        async move {
            let r = req.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    for (endpoint, body) in &calls {
        for caller in &nobody {
            let (status, text) = send(endpoint, body, caller).await;
            assert_eq!(status, 401, "{endpoint} without a signed-in user: {text}");
            assert!(text.contains("sign in"), "{endpoint}: {text}");
        }
        let (status, text) = send(endpoint, body, &Caller::Bearer(&bob)).await;
        assert!(!text.contains("carol's secret"), "{endpoint} as bob leaks carol's notification: {text}");
        if *endpoint == "notification" {
            assert_eq!(status, 404, "another user's notification does not exist for bob: {text}");
        }
    }
    // The admin console's server functions: 401 for nobody, 403 for a user, served to an admin.
    let alice = app.user_token("alice").await;
    let admin_calls: Vec<(&str, Body)> = vec![
        ("admin/overview", form(&[("status", ""), ("channel", "")])),
        ("admin/announcements", form(&[])),
        ("admin/announcements/preview", form(&[("body", "**x**")])),
        ("admin/announcements/reach", form(&[("everyone", "true"), ("audience", ""), ("excluded", "")])),
        ("admin/directory/search", form(&[("q", "car")])),
        ("admin/tokens/revoke", form(&[("id", "no-such-token")])),
        ("admin/deliveries/retry", form(&[("id", "")])),
    ];
    for (endpoint, body) in &admin_calls {
        for caller in &nobody {
            assert_eq!(send(endpoint, body, caller).await.0, 401, "{endpoint}");
        }
        let (status, text) = send(endpoint, body, &Caller::Bearer(&bob)).await;
        assert_eq!(status, 403, "{endpoint} as a user: {text}");
        let (status, text) = send(endpoint, body, &Caller::Bearer(&alice)).await;
        assert!(status != 401 && status != 403, "{endpoint} as an admin: {status} {text}");
    }
    // Nothing of carol's changed: her notification is untouched and her token still works.
    let n = app.get(&format!("/api/notifications/notifications/{id}"), &carol).await;
    assert_eq!(n.status, 200, "carol's token was not revoked by bob");
    assert!(n.body["read"].is_null() && n.body["saved"].is_null(), "{}", n.body);
    assert!(n.body["archived"].is_null() && n.body["snoozedUntil"].is_null(), "{}", n.body);
    let settings = app.get("/api/notifications/settings", &carol).await.body;
    assert!(!settings.to_string().contains("\"enabled\":false"), "carol's settings are hers: {settings}");
});

both!(signing_in_rotates_the_session_and_signing_out_ends_it, |app| async {
    passwords(&app).await;
    let first = sign_in(&app, "alice", app.password).await;
    let old = first.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    // Signing in again with the old cookie gives a new session and ends the old one.
    let again = app
        .client
        .post(format!("{}/api/signin", app.base))
        .header("cookie", &old)
        .form(&[("username", "alice"), ("password", app.password)])
        .send()
        .await
        .unwrap();
    let new = again.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    assert_ne!(old, new, "a new session id at sign-in");
    let status = |cookie: String| {
        let req = app.client.get(format!("{}/api/notifications/status", app.base)).header("cookie", cookie);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(old.clone()).await, 401, "the session from before sign-in ended");
    assert_eq!(status(new.clone()).await, 200);
    let out = app
        .client
        .post(format!("{}/api/signout", app.base))
        .header("cookie", &new)
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    let cleared = out.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert_eq!(status(new).await, 401, "signing out ends the session on the server, not only in the browser");
    // After sign-in, only local paths.
    for next in ["https://evil.example/", "//evil.example", "/\t/evil.example", "/\\evil.example"] {
        let r = app
            .client
            .post(format!("{}/api/signin", app.base))
            .form(&[("username", "alice"), ("password", app.password), ("next", next)])
            .send()
            .await
            .unwrap();
        let location = r.headers().get("location").map(|l| l.to_str().unwrap().to_string()).unwrap_or_default();
        assert_eq!(location, "/", "next={next:?} must not leave Herald");
    }
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_reach_the_log_even_at_trace_level() {
    use crate::helpers::{free_port, herald_command};
    use std::io::Write;
    let dir =
        crate::helpers::TempDir(std::env::temp_dir().join(format!("herald-log-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let port = free_port();
    let (smtp_password, slack_token, password) =
        ("smtp-hunter2-secret", "xoxb-slack-secret-token", "alice-pass-secret");
    std::fs::write(
        dir.0.join("herald.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\n[email]\nhost = \"127.0.0.1\"\nport = {}\nusername = \"herald\"\npassword = \"{smtp_password}\"\nfrom = \"herald@example.com\"\n[slack]\ntoken = \"{slack_token}\"\napi_url = \"http://127.0.0.1:{}/api\"\n",
            free_port(),
            free_port()
        ),
    )
    .unwrap();
    let out = herald_command(&dir.0, &["token", "create", "--service", "external:ci"]).output().unwrap();
    let service = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut add = herald_command(&dir.0, &["user", "add", "alice", "--email", "alice@example.com", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin.take().unwrap().write_all(password.as_bytes()).unwrap();
    assert!(add.wait().unwrap().success());

    let log = std::fs::File::create(dir.0.join("herald.log")).unwrap();
    let mut command = herald_command(&dir.0, &["serve"]);
    command.env("RUST_LOG", "trace").stdout(log.try_clone().unwrap()).stderr(log);
    let mut server = crate::helpers::spawn_listening(command, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let published = client
        .post(format!("{base}/api/notifications/notifications"))
        .bearer_auth(&service)
        .json(&json!({"recipients": {"type": "entity", "entityRef": "user:default/alice"}, "payload": {"title": "hello"}}))
        .send()
        .await
        .unwrap();
    assert!(published.status().is_success());
    let wrong =
        client.post(format!("{base}/api/signin")).form(&[("username", "alice"), ("password", "wrong-secret-guess")]);
    wrong.send().await.unwrap();
    let signed_in = client
        .post(format!("{base}/api/signin"))
        .form(&[("username", "alice"), ("password", password)])
        .send()
        .await
        .unwrap();
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let session = cookie.split_once('=').unwrap().1.to_string();
    let created: serde_json::Value = client
        .post(format!("{base}/api/settings/tokens/create"))
        .header("cookie", &cookie)
        .header("origin", &base)
        .form(&[("name", "laptop")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let personal = created["secret"].as_str().expect("a new token").to_string();
    let inbox =
        client.get(format!("{base}/api/notifications/notifications")).bearer_auth(&personal).send().await.unwrap();
    assert_eq!(inbox.status(), 200);
    let page = client.get(format!("{base}/")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(page.status(), 200);
    // Give the deliverer a moment to try (and fail) email and Slack with their credentials.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    server.kill().unwrap();
    server.wait().unwrap();

    let log = std::fs::read_to_string(dir.0.join("herald.log")).unwrap();
    assert!(log.contains("request"), "the log was written at trace level");
    for (what, secret) in [
        ("service token", service.as_str()),
        ("personal token", personal.as_str()),
        ("session id", session.as_str()),
        ("password", password),
        ("wrong password", "wrong-secret-guess"),
        ("SMTP password", smtp_password),
        ("Slack token", slack_token),
    ] {
        assert!(!log.contains(secret), "the {what} is in the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_a_trailing_slash_redirects_to_its_one_address_on_this_site() {
    let app = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await;
    let get = |path: &str| app.client.get(format!("{}{path}", app.base)).send();
    let r = get("/settings/?tab=tokens").await.unwrap();
    assert_eq!(r.status(), 308);
    assert_eq!(r.headers()["location"], "/settings?tab=tokens");
    let r = get("/admin/").await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (308, "/admin"));
    let r = get("//evil.example/").await.unwrap();
    assert!(r.headers().get("location").is_none_or(|l| !l.to_str().unwrap().starts_with("//")), "{r:?}");
    let r = get("/api/notifications/notifications/").await.unwrap();
    assert_ne!(r.status(), 308, "the API answers for itself");
}
