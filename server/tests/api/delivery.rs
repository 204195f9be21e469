//! Forwarding through the outbox: email against a real SMTP server process (Python's
//! aiosmtpd, installed by the test command), Slack against a local server speaking the parts
//! of its Web API Herald calls, and webhooks against a local receiver.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use herald_core::outbox::{self, ListFilter};
use herald_server::config::{Settings, TlsMode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, everyone, free_port, herald_command, serve_binary, spawn_app_with, to};

// ---------------------------------------------------------------------------------------------
// A real SMTP server

/// The Python the test command installed aiosmtpd into.
fn python() -> String {
    std::env::var("HERALD_TEST_PYTHON").unwrap_or_else(|_| {
        let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/pyenv/bin/python");
        venv.to_string_lossy().into_owned()
    })
}

/// aiosmtpd writing every message it accepts into a Maildir.
struct SmtpServer {
    child: Child,
    maildir: PathBuf,
}

/// One received message, decoded.
#[derive(Debug)]
struct Mail {
    to: String,
    subject: String,
    message_id: String,
    delivery: String,
    text: String,
    html: String,
}

impl SmtpServer {
    async fn start(port: u16) -> SmtpServer {
        let maildir = std::env::temp_dir().join(format!("herald-maildir-{port}-{}", uuid::Uuid::new_v4()));
        let mut child = Command::new(python())
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start aiosmtpd with {} (run the test command, which installs it): {e}", python())
            });
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return SmtpServer { child, maildir };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("aiosmtpd did not listen on port {port}");
    }

    fn messages(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else { return vec![] };
        let mut out: Vec<Mail> = entries
            .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
            .map(|raw| {
                let parsed = mailparse::parse_mail(&raw).expect("a valid message");
                let header = |name: &str| {
                    parsed
                        .headers
                        .iter()
                        .find(|h| h.get_key().eq_ignore_ascii_case(name))
                        .map(|h| h.get_value())
                        .unwrap_or_default()
                };
                let part = |mime: &str| {
                    parsed
                        .subparts
                        .iter()
                        .find(|p| p.ctype.mimetype == mime)
                        .map(|p| p.get_body().unwrap())
                        .unwrap_or_default()
                };
                Mail {
                    to: header("X-RcptTo"),
                    subject: header("Subject"),
                    message_id: header("Message-ID"),
                    delivery: header("X-Herald-Delivery"),
                    text: part("text/plain"),
                    html: part("text/html"),
                }
            })
            .collect();
        out.sort_by(|a, b| a.to.cmp(&b.to).then(a.subject.cmp(&b.subject)));
        out
    }

    /// Waits until at least `n` messages arrived; returns them all.
    async fn wait_for(&self, n: usize) -> Vec<Mail> {
        for _ in 0..300 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("expected {n} messages, got {:?}", self.messages());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}

/// Fast retries and polling, so tests wait milliseconds rather than minutes.
fn quick(s: &mut Settings) {
    s.delivery.first_retry_ms = 200;
    s.delivery.max_retry_ms = 1000;
    s.delivery.poll_ms = 50;
    s.delivery.lease_secs = 5;
    s.delivery.timeout_secs = 3;
}

fn with_email(s: &mut Settings, port: u16) {
    quick(s);
    s.email.host = "127.0.0.1".into();
    s.email.port = port;
    s.email.tls = TlsMode::None;
    s.email.from = "Herald <herald@example.com>".into();
}

async fn deliveries(app: &TestApp, status: Option<&str>) -> Vec<outbox::Delivery> {
    let f = ListFilter { status: status.map(Into::into), limit: 1000, ..ListFilter::default() };
    outbox::list(&app.db, &f).await.unwrap().0
}

/// Waits until `check` holds for the outbox.
async fn outbox_until(app: &TestApp, what: &str, check: impl Fn(&[outbox::Delivery]) -> bool) -> Vec<outbox::Delivery> {
    for _ in 0..300 {
        let all = deliveries(app, None).await;
        if check(&all) {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("outbox never got to: {what}; it holds {:#?}", deliveries(app, None).await);
}

fn user(name: &str) -> herald_model::EntityRef {
    format!("user:default/{name}").parse().unwrap()
}

macro_rules! both_with {
    ($name:ident, |$app:ident, $backend:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $backend = Backend::Sqlite;
                $body.await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $backend = Backend::Postgres;
                $body.await;
            }
        }
    };
}

both_with!(email_reaches_recipients_with_both_bodies_per_their_settings, |app, backend| async {
    let port = free_port();
    let smtp = SmtpServer::start(port).await;
    let app = spawn_app_with(backend, |s| {
        with_email(s, port);
        s.email.filter.min_severity = Some(herald_model::Severity::Normal);
        s.email.deny = vec!["carol@example.com".into()];
        s.email.broadcast = herald_core::routing::BroadcastEmail::List;
        s.email.broadcast_addresses = vec!["all-hands@example.com".into()];
        s.email.critical_announcements_bypass_opt_outs = true;
    })
    .await;
    let ci = app.service_token("external:ci").await;
    // Alice turns email off for this origin; Bob keeps the default (on).
    let alice = app.user_token("alice").await;
    let r = app
        .post(
            "/api/notifications/settings",
            &alice,
            json!({"channels": [{"id": "Email", "origins": [{"id": "external:ci", "enabled": false}]}]}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let settings = app.get("/api/notifications/settings", &alice).await.body;
    let channels: Vec<&str> =
        settings["channels"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(channels, ["Web", "Email"], "configured channels are offered to users");

    app.publish(
        &ci,
        to(&["group:default/platform", "user:default/carol"]),
        json!({"title": "Deploy failed", "description": "**prod** is down", "severity": "high",
               "link": "https://ci.example/runs/7", "topic": "deploys"}),
    )
    .await;
    app.publish(&ci, to(&["user:default/bob"]), json!({"title": "Too quiet for email", "severity": "low"})).await;

    smtp.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1, "only Bob: Alice opted out, Carol is denied, low severity is filtered: {mails:?}");
    let m = &mails[0];
    assert_eq!(m.to, "bob@example.com");
    assert_eq!(m.subject, "[high] Deploy failed");
    assert!(m.text.contains("**prod** is down") && m.text.contains("View: https://ci.example/runs/7"), "{}", m.text);
    assert!(m.html.contains("<strong>prod</strong>") && m.html.contains("https://ci.example/runs/7"), "{}", m.html);
    assert!(m.html.contains("/settings"), "a footer links to the settings");
    let delivered = deliveries(&app, Some("delivered")).await;
    assert_eq!(delivered.len(), 1);
    assert_eq!(m.delivery, delivered[0].id, "X-Herald-Delivery is the delivery id");
    assert!(m.message_id.contains(&delivered[0].id), "so is the Message-ID: {}", m.message_id);

    // An hourly digest collects into one message per period.
    let mut prefs = herald_core::preferences::get(&app.db, &user("dave")).await.unwrap();
    prefs.email_mode = "hourly".into();
    herald_core::preferences::save(&app.db, &user("dave"), &prefs).await.unwrap();
    for title in ["First of the hour", "Second of the hour"] {
        app.publish(&ci, to(&["user:default/dave"]), json!({"title": title})).await;
    }
    outbox_until(&app, "two held for the digest", |d| d.iter().filter(|x| x.status == "digest").count() == 2).await;
    assert_eq!(smtp.messages().len(), 1, "held until the hour ends");
    // The hour ends.
    let end = "UPDATE deliveries SET next_attempt_at = 0 WHERE status = 'digest'";
    match app.db.postgres_pool() {
        Some(pg) => sqlx::query(end).execute(pg).await.map(|_| ()).unwrap(),
        None => {
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.database_url).await.unwrap();
            sqlx::query(end).execute(&mut c).await.map(|_| ()).unwrap()
        }
    }
    let mails = smtp.wait_for(2).await;
    let digest = mails.iter().find(|m| m.to == "dave@example.com").expect("Dave's digest");
    assert_eq!(digest.subject, "Herald digest: 2 notifications");
    assert!(digest.text.contains("First of the hour") && digest.text.contains("Second of the hour"));
    assert!(digest.html.contains("First of the hour") && digest.html.contains("Second of the hour"));

    // Broadcasts go to the configured list.
    app.publish(&ci, everyone(), json!({"title": "Office closed Friday", "severity": "normal"})).await;
    let mails = smtp.wait_for(3).await;
    let all_hands = mails.iter().find(|m| m.to == "all-hands@example.com").expect("the broadcast list got it");
    assert_eq!(all_hands.subject, "Office closed Friday");

    // Critical announcements reach even those who turned announcement email off, when
    // configured so; other announcements respect the opt-out.
    let r = app
        .post(
            "/api/notifications/settings",
            &alice,
            json!({"channels": [{"id": "Email", "origins": [{"id": "herald:announcements", "enabled": false}]}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    let ctx = app.publish_context();
    let admin: herald_model::EntityRef = "user:default/alice".parse().unwrap();
    let announce = |title: &str, severity| herald_core::announcements::Draft {
        title: title.into(),
        severity,
        audience: vec!["group:default/platform".into()],
        forward: true,
        ..Default::default()
    };
    use herald_core::announcements::{Intent, save};
    save(&app.db, &ctx, &admin, None, &announce("Routine maintenance", herald_model::Severity::High), Intent::Publish)
        .await
        .unwrap();
    save(&app.db, &ctx, &admin, None, &announce("Datacenter fire", herald_model::Severity::Critical), Intent::Publish)
        .await
        .unwrap();
    let mails = smtp.wait_for(6).await;
    let to_alice: Vec<&str> =
        mails.iter().filter(|m| m.to == "alice@example.com").map(|m| m.subject.as_str()).collect();
    assert_eq!(to_alice, ["[critical] Datacenter fire"], "only the critical one bypasses Alice's opt-out");
    assert!(mails.iter().any(|m| m.to == "bob@example.com" && m.subject == "[high] Routine maintenance"));
    app.cleanup().await;
    drop(smtp);
});

both_with!(an_smtp_outage_delays_mail_but_loses_none_and_sends_none_twice, |app, backend| async {
    let port = free_port();
    let app = spawn_app_with(backend, |s| with_email(s, port)).await;
    let ci = app.service_token("external:ci").await;
    for i in 1..=3 {
        app.publish(&ci, to(&["user:default/dave"]), json!({"title": format!("During the outage {i}")})).await;
    }
    outbox_until(&app, "every delivery failed at least once", |d| {
        d.len() == 3 && d.iter().all(|x| x.attempts >= 1 && x.last_error.is_some() && x.status == "pending")
    })
    .await;
    let smtp = SmtpServer::start(port).await;
    smtp.wait_for(3).await;
    outbox_until(&app, "all delivered", |d| d.iter().all(|x| x.status == "delivered")).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 3, "none twice: {mails:?}");
    let ids: std::collections::HashSet<&str> = mails.iter().map(|m| m.message_id.as_str()).collect();
    assert_eq!(ids.len(), 3);
    app.cleanup().await;
});

// ---------------------------------------------------------------------------------------------
// A local Slack Web API

#[derive(Clone, Default)]
struct Slack {
    calls: Arc<Mutex<Vec<(String, Value)>>>,
    /// Answer the next chat.postMessage with 429 and `Retry-After: 1`.
    limit_next: Arc<AtomicBool>,
    ts: Arc<AtomicU32>,
}

impl Slack {
    fn calls(&self, method: &str) -> Vec<Value> {
        self.calls.lock().unwrap().iter().filter(|(m, _)| m == method).map(|(_, b)| b.clone()).collect()
    }
}

fn authorized(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer xoxb-test")
}

async fn slack_post(State(s): State<Slack>, headers: HeaderMap, body: axum::Json<Value>) -> Response {
    if s.limit_next.swap(false, Ordering::SeqCst) {
        return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "1")], "").into_response();
    }
    s.calls.lock().unwrap().push(("chat.postMessage".into(), body.0.clone()));
    if !authorized(&headers) {
        return axum::Json(json!({"ok": false, "error": "invalid_auth"})).into_response();
    }
    let channel = body["channel"].as_str().unwrap_or_default().to_string();
    if channel == "C-GONE" {
        return axum::Json(json!({"ok": false, "error": "channel_not_found"})).into_response();
    }
    let conversation = channel.strip_prefix('U').map_or(channel.clone(), |u| format!("D{u}"));
    let ts = format!("1700000000.{:06}", s.ts.fetch_add(1, Ordering::SeqCst));
    axum::Json(json!({"ok": true, "channel": conversation, "ts": ts})).into_response()
}

async fn slack_update(State(s): State<Slack>, body: axum::Json<Value>) -> Response {
    s.calls.lock().unwrap().push(("chat.update".into(), body.0.clone()));
    axum::Json(json!({"ok": true, "channel": body["channel"], "ts": body["ts"]})).into_response()
}

async fn slack_lookup(State(s): State<Slack>, Query(q): Query<HashMap<String, String>>) -> Response {
    s.calls.lock().unwrap().push(("users.lookupByEmail".into(), json!(q)));
    match q.get("email").map(String::as_str) {
        Some("dave@example.com") => axum::Json(json!({"ok": true, "user": {"id": "U-DAVE"}})).into_response(),
        _ => axum::Json(json!({"ok": false, "error": "users_not_found"})).into_response(),
    }
}

async fn start_slack() -> (Slack, String) {
    let slack = Slack::default();
    let router = axum::Router::new()
        .route("/api/chat.postMessage", post(slack_post))
        .route("/api/chat.update", post(slack_update))
        .route("/api/users.lookupByEmail", get(slack_lookup))
        .with_state(slack.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (slack, url)
}

const SLACK_CATALOG: &str = "
kind: User
metadata: {name: erin, annotations: {slack.com/user-id: U-ERIN}}
spec: {profile: {displayName: Erin, email: erin@example.com}}
---
kind: Group
metadata: {name: oncall, annotations: {slack.com/channel: C-ONCALL}}
spec: {type: team, children: [], members: [carol, alice]}
";

async fn until<T>(what: &str, f: impl Fn() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

both_with!(slack_posts_to_users_groups_and_channels_and_edits_on_update, |app, backend| async {
    let (slack, api) = start_slack().await;
    let app = spawn_app_with(backend, |s| {
        quick(s);
        s.slack.token = "xoxb-test".into();
        s.slack.api_url = api.clone();
        s.slack.broadcast_routes = vec![
            herald_core::routing::SlackRoute { origin: None, topic: None, channel: "C-ALL".into() },
            herald_core::routing::SlackRoute { origin: None, topic: Some("gone".into()), channel: "C-GONE".into() },
        ];
    })
    .await;
    herald_core::directory::import_catalog(&app.db, SLACK_CATALOG).await.unwrap();
    let ci = app.service_token("external:ci").await;
    slack.limit_next.store(true, Ordering::SeqCst);
    app.publish(
        &ci,
        to(&["user:default/erin", "user:default/dave", "group:default/oncall"]),
        json!({"title": "Release 2.0 is out", "severity": "critical", "scope": "release-2.0", "description": "See *notes*"}),
    )
    .await;
    let posts = until("three posts", || Some(slack.calls("chat.postMessage")).filter(|p| p.len() >= 3)).await;
    let mut channels: Vec<&str> = posts.iter().map(|p| p["channel"].as_str().unwrap()).collect();
    channels.sort();
    assert_eq!(channels, ["C-ONCALL", "U-DAVE", "U-ERIN"], "the group's channel once; its members no direct message");
    assert_eq!(slack.calls("users.lookupByEmail").len(), 1, "Dave found by email");
    let post = &posts[0];
    assert_eq!(post["text"], "Release 2.0 is out");
    assert_eq!(post["attachments"][0]["color"], "#b42318");
    let blocks = post["attachments"][0]["blocks"].as_array().unwrap();
    assert!(blocks.iter().any(|b| b["type"] == "actions" && b["elements"][0]["text"]["text"] == "View"));
    let rate_limited =
        outbox_until(&app, "all three delivered", |d| d.len() == 3 && d.iter().all(|x| x.status == "delivered")).await;
    assert!(rate_limited.iter().any(|d| d.attempts == 2), "the 429 was retried");

    // The email → Slack id lookup is cached.
    app.publish(&ci, to(&["user:default/dave"]), json!({"title": "Another one for Dave"})).await;
    until("the second post to Dave", || {
        Some(()).filter(|_| slack.calls("chat.postMessage").iter().any(|p| p["text"] == "Another one for Dave"))
    })
    .await;
    assert_eq!(slack.calls("users.lookupByEmail").len(), 1, "looked up once");

    // A scope update edits the messages sent before.
    app.publish(
        &ci,
        to(&["user:default/erin"]),
        json!({"title": "Release 2.0 is out (patched)", "scope": "release-2.0"}),
    )
    .await;
    let updates = until("an edit", || Some(slack.calls("chat.update")).filter(|u| !u.is_empty())).await;
    assert_eq!(updates[0]["channel"], "D-ERIN", "edited where it was posted");
    assert_eq!(updates[0]["text"], "Release 2.0 is out (patched)");
    assert!(updates[0]["ts"].as_str().unwrap().starts_with("1700000000."));

    // Broadcasts follow the most specific route; a missing channel is dead at once.
    app.publish(&ci, everyone(), json!({"title": "Office closed Friday"})).await;
    app.publish(&ci, everyone(), json!({"title": "Into the void", "topic": "gone"})).await;
    let all = outbox_until(&app, "the broadcasts settled", |d| {
        d.iter().any(|x| x.target == "channel:C-ALL" && x.status == "delivered")
            && d.iter().any(|x| x.target == "channel:C-GONE" && x.status == "dead")
    })
    .await;
    let dead = all.iter().find(|x| x.target == "channel:C-GONE").unwrap();
    assert_eq!(dead.attempts, 1, "channel_not_found is permanent");
    assert_eq!(dead.last_error.as_deref(), Some("Slack chat.postMessage: channel_not_found"));
    app.cleanup().await;
});

// ---------------------------------------------------------------------------------------------
// Webhooks

#[derive(Clone, Default)]
struct Receiver {
    hits: Arc<Mutex<Vec<(HeaderMap, bytes::Bytes)>>>,
    fail: Arc<AtomicBool>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: bytes::Bytes) -> StatusCode {
    r.hits.lock().unwrap().push((headers, body));
    if r.fail.load(Ordering::SeqCst) { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::NO_CONTENT }
}

async fn start_receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let router = axum::Router::new().route("/hook", post(receive)).with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (r, url)
}

both_with!(webhooks_are_signed_and_a_failing_receiver_ends_dead_and_can_be_retried, |app, backend| async {
    let (receiver, url) = start_receiver().await;
    let app = spawn_app_with(backend, |s| {
        quick(s);
        s.delivery.max_attempts = 3;
        s.webhooks.personal = true;
        s.webhooks.hooks = vec![herald_core::routing::AdminWebhook {
            name: "audit".into(),
            url: url.clone(),
            secret: "audit-secret".into(),
            filter: herald_core::routing::ChannelFilter { include_topics: vec!["audit".into()], ..Default::default() },
        }];
    })
    .await;
    let hook = herald_core::webhooks::set(&app.db, &user("alice"), &url).await.unwrap();
    let ci = app.service_token("external:ci").await;
    app.publish(&ci, to(&["user:default/alice"]), json!({"title": "For Alice's hook"})).await;
    app.publish(&ci, everyone(), json!({"title": "For the audit hook", "topic": "audit"})).await;
    let hits = until("two hooks called", || Some(receiver.hits.lock().unwrap().clone()).filter(|h| h.len() >= 2)).await;
    for (headers, body) in &hits {
        let value: Value = serde_json::from_slice(body).unwrap();
        let secret =
            if value["notification"]["payload"]["title"] == "For Alice's hook" { &hook.secret } else { "audit-secret" };
        let ts: i64 = headers["x-herald-timestamp"].to_str().unwrap().parse().unwrap();
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
        assert_eq!(headers["x-herald-signature"].to_str().unwrap(), herald_server::delivery::sign(secret, ts, body));
        assert_eq!(value["event"], "notification.created");
        assert_eq!(value["deliveryId"], headers["x-herald-delivery"].to_str().unwrap());
    }

    receiver.fail.store(true, Ordering::SeqCst);
    app.publish(&ci, to(&["user:default/alice"]), json!({"title": "Never accepted"})).await;
    let all = outbox_until(&app, "a dead delivery", |d| d.iter().any(|x| x.status == "dead")).await;
    let dead = all.iter().find(|x| x.status == "dead").unwrap();
    assert_eq!(dead.attempts, 3, "dead after the configured attempts");
    assert!(dead.last_error.as_deref().unwrap().contains("500"), "{:?}", dead.last_error);

    // Admins see it through the API and re-queue it.
    let admin = app.user_token("alice").await;
    let listed = app.get("/api/deliveries?status=dead", &admin).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["totalCount"], 1);
    assert_eq!(listed.body["deliveries"][0]["lastError"], dead.last_error.clone().unwrap());
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == r#"herald_outbox_dead{channel="Webhook"} 1"#), "{metrics}");
    assert!(metrics.lines().any(|l| l.starts_with(r#"herald_deliveries_total{channel="Webhook",outcome="dead"}"#)));
    assert!(metrics.lines().any(|l| l.starts_with(r#"herald_deliveries_total{channel="Webhook",outcome="retry"}"#)));
    let cli = herald_command(std::path::Path::new("."), &["deliveries", "list", "--status", "dead"])
        .env("HERALD_DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&cli.stdout);
    assert!(
        listed.contains(&dead.id) && listed.contains("500"),
        "herald deliveries list shows it with its error:\n{listed}"
    );
    let bob = app.user_token("bob").await;
    assert_eq!(app.get("/api/deliveries", &bob).await.status, 403, "not for non-admins");
    assert_eq!(app.post("/api/deliveries/retry", &bob, json!({})).await.status, 403);
    receiver.fail.store(false, Ordering::SeqCst);
    let r = app.post("/api/deliveries/retry", &admin, json!({"ids": [dead.id]})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["retried"], 1);
    outbox_until(&app, "delivered after the retry", |d| {
        d.iter().find(|x| x.id == dead.id).is_some_and(|x| x.status == "delivered")
    })
    .await;

    // The command line re-queues too.
    receiver.fail.store(true, Ordering::SeqCst);
    app.publish(&ci, to(&["user:default/alice"]), json!({"title": "Never accepted either"})).await;
    outbox_until(&app, "another dead delivery", |d| d.iter().any(|x| x.status == "dead")).await;
    receiver.fail.store(false, Ordering::SeqCst);
    let cli = herald_command(std::path::Path::new("."), &["deliveries", "retry", "--channel", "Webhook"])
        .env("HERALD_DATABASE_URL", &app.database_url)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&cli.stdout).trim(), "1 dead deliveries queued again");
    outbox_until(&app, "everything delivered", |d| d.iter().all(|x| x.status == "delivered")).await;
    app.cleanup().await;
});

// ---------------------------------------------------------------------------------------------
// A crash mid-delivery

/// A receiver that never answers its first request (the send is in flight when Herald dies)
/// and accepts the rest.
#[derive(Clone, Default)]
struct Stalling {
    hits: Arc<Mutex<Vec<String>>>,
}

async fn stall(State(s): State<Stalling>, headers: HeaderMap) -> StatusCode {
    let first = {
        let mut hits = s.hits.lock().unwrap();
        hits.push(headers["x-herald-delivery"].to_str().unwrap().to_string());
        hits.len() == 1
    };
    if first {
        std::future::pending::<()>().await;
    }
    StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_delivery_resumes_after_restart() {
    let receiver = Stalling::default();
    let router = axum::Router::new().route("/hook", post(stall)).with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let dir = std::env::temp_dir().join(format!("herald-crash-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("herald.toml"),
        format!(
            "listen = \"127.0.0.1:{port}\"\n[delivery]\nlease_secs = 2\npoll_ms = 50\ntimeout_secs = 1\nfirst_retry_ms = 100\n\
             [[webhooks.hooks]]\nname = \"ops\"\nurl = \"{hook}\"\nsecret = \"kill-test-secret\"\n"
        ),
    )
    .unwrap();
    let token = herald_command(&dir, &["token", "create", "--service", "external:ci"]).output().unwrap();
    assert!(token.status.success(), "{}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).unwrap();
    let token = token.split_whitespace().find(|w| w.starts_with("hrld_s_")).unwrap().to_string();
    herald_command(&dir, &["user", "add", "user:default/dave", "--email", "dave@example.com"]).output().unwrap();

    let mut first = serve_binary(&dir, port).await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/api/notifications/notifications"))
        .bearer_auth(&token)
        .json(&json!({"recipients": {"type": "entity", "entityRef": "user:default/dave"}, "payload": {"title": "Survives a crash"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    until("the send in flight", || Some(()).filter(|_| !receiver.hits.lock().unwrap().is_empty())).await;
    first.kill().unwrap(); // SIGKILL: no chance to clean up
    first.wait().unwrap();

    let mut second = serve_binary(&dir, port).await;
    let hits = until("the send resumed", || Some(receiver.hits.lock().unwrap().clone()).filter(|h| h.len() >= 2)).await;
    assert_eq!(hits[0], hits[1], "the same delivery id, so the receiver can tell it is a repeat");
    let mut listed = String::new();
    for _ in 0..100 {
        let out = herald_command(&dir, &["deliveries", "list", "--status", "delivered"]).output().unwrap();
        listed = String::from_utf8(out.stdout).unwrap();
        if listed.contains(&hits[0]) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        listed.contains(&hits[0]) && listed.contains("Webhook"),
        "herald deliveries list shows it delivered:\n{listed}"
    );
    second.kill().unwrap();
    second.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
