//! `spawn_app`: a fresh Herald with its own database, and a client with one method per call.

use std::sync::atomic::{AtomicU32, Ordering};

use herald_core::auth::{create_personal_token, create_service_token};
use herald_core::{Db, directory};
use herald_model::EntityRef;
use herald_server::config::{Secret, Settings};
use herald_server::startup::Application;
use serde_json::Value;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines one async test per backend: `both!(name, |app| async move { … })` makes
/// `name::sqlite` and `name::postgres`; `both!(name, spawn, |app| …)` starts the app with
/// `spawn` instead of [`spawn_app`].
#[macro_export]
macro_rules! both {
    ($name:ident, |$app:ident| $body:expr) => {
        $crate::both!($name, $crate::helpers::spawn_app, |$app| $body);
    };
    ($name:ident, $spawn:path, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $spawn($crate::helpers::Backend::Sqlite).await;
                $body.await;
                $app.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $spawn($crate::helpers::Backend::Postgres).await;
                $body.await;
                $app.cleanup().await;
            }
        }
    };
}

/// The server PostgreSQL tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A running instance and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub db: Db,
    /// The instance's shared state, as its handlers see it.
    pub hub: herald_core::Hub,
    /// What the instance publishes with (base URL, settings policy, routing).
    pub publish: std::sync::Arc<herald_core::notifications::PublishContext>,
    pub client: reqwest::Client,
    /// The catalog's users; all sign in with `password`.
    pub password: &'static str,
    /// The database URL, for starting a second instance on the same database.
    pub database_url: String,
    pg_database: Option<String>,
    /// Starts a graceful shutdown (what SIGTERM does); `None` when not serving.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: TempDir,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}_{}_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed), uuid::Uuid::new_v4().simple())
}

/// A small directory: platform (alice, bob) and frontend (carol) under engineering; dave alone.
pub const CATALOG: &str = "
kind: Group
metadata: {name: engineering}
spec: {type: department, children: [platform, frontend]}
---
kind: Group
metadata: {name: platform}
spec: {type: team, parent: engineering, children: []}
---
kind: Group
metadata: {name: frontend}
spec: {type: team, parent: engineering, children: []}
---
kind: Group
metadata: {name: herald-admins}
spec: {type: team, children: [], members: [alice]}
---
kind: User
metadata: {name: alice}
spec: {profile: {displayName: Alice, email: alice@example.com}, memberOf: [platform]}
---
kind: User
metadata: {name: bob}
spec: {profile: {displayName: Bob, email: bob@example.com}, memberOf: [platform]}
---
kind: User
metadata: {name: carol}
spec: {profile: {displayName: Carol, email: carol@example.com}, memberOf: [frontend]}
---
kind: User
metadata: {name: dave}
spec: {profile: {displayName: Dave, email: dave@example.com}}
";

/// Starts Herald on `backend` with a fresh database holding [`CATALOG`].
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Like [`spawn_app`], with a chance to change the settings first.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let (dir, database_url, pg_database) = fresh_database(backend).await;
    start(dir, database_url, pg_database, configure, true).await
}

/// Like [`spawn_app`], without serving and without the background jobs: for tests that call
/// the core directly and must not race the jobs on the clock (snoozes that fall due are woken
/// every two seconds).
pub async fn spawn_quiet(backend: Backend) -> TestApp {
    let (dir, database_url, pg_database) = fresh_database(backend).await;
    start(dir, database_url, pg_database, |_| {}, false).await
}

/// A temporary directory and a new, empty database on `backend`.
async fn fresh_database(backend: Backend) -> (TempDir, String, Option<String>) {
    if std::env::var("TEST_LOG").is_ok() {
        herald_server::telemetry::init(herald_server::config::LogFormat::Text);
    }
    let dir = TempDir(std::env::temp_dir().join(unique("herald-test")));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    let (database_url, pg_database) = match backend {
        Backend::Sqlite => (format!("sqlite:{}", dir.0.join("herald.db").display()), None),
        Backend::Postgres => {
            let name = unique("herald_test");
            let admin = postgres_admin_url();
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin).await.unwrap_or_else(|e| {
                panic!("PostgreSQL is required for these tests and is not reachable at {admin}: {e}")
            });
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).expect("URL with a database");
            (format!("{base}/{name}"), Some(name))
        }
    };
    (dir, database_url, pg_database)
}

/// Starts Herald on an existing database at `database_url` (which the test owns, e.g. on a
/// PostgreSQL server of its own or a file system it controls), with [`CATALOG`] imported.
pub async fn spawn_app_at(database_url: &str, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = TempDir(std::env::temp_dir().join(unique("herald-test")));
    std::fs::create_dir_all(&dir.0).expect("temp dir");
    start(dir, database_url.to_string(), None, configure, true).await
}

async fn start(
    dir: TempDir,
    database_url: String,
    pg_database: Option<String>,
    configure: impl FnOnce(&mut Settings),
    serve: bool,
) -> TestApp {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Secret::from(database_url.as_str()),
        site_root: std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/site"),
        ..Settings::default()
    };
    configure(&mut settings);
    let app = Application::build(settings).await.expect("build app");
    let addr = app.local_addr();
    let db = app.state().hub.db.clone();
    let publish = app.state().hub.publish.clone();
    let hub = app.state().hub.clone();
    directory::import_catalog(&db, CATALOG).await.expect("import catalog");
    let (stop, served) = if serve {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // Dropping the app without `shut_down` leaves it serving, as before the stop existed.
        let shutdown = async move {
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        (Some(stop), Some(tokio::spawn(app.run(shutdown))))
    } else {
        (None, None)
    };
    TestApp {
        base: format!("http://{addr}"),
        db,
        hub,
        publish,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        password: "correct-horse",
        database_url,
        pg_database,
        stop,
        served,
        _dir: dir,
    }
}

/// Starts a second instance on `app`'s database (for multi-instance tests); returns its base URL.
pub async fn spawn_peer(app: &TestApp) -> String {
    let settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Secret::from(app.database_url.as_str()),
        ..Settings::default()
    };
    let peer = Application::build(settings).await.expect("build peer");
    let base = format!("http://{}", peer.local_addr());
    tokio::spawn(peer.run(std::future::pending()));
    base
}

/// One Server-Sent Event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// A minimal SSE client over reqwest, as a browser's EventSource reads the stream.
pub struct SseClient {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl SseClient {
    /// Connects to `base`'s stream as the owner of `token`; `Err(status)` when refused.
    pub async fn connect(base: &str, token: &str, last_event_id: Option<&str>, query: &str) -> Result<SseClient, u16> {
        let mut req = reqwest::Client::new().get(format!("{base}/api/notifications/stream{query}")).bearer_auth(token);
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let res = req.send().await.expect("stream request");
        if res.status() != 200 {
            return Err(res.status().as_u16());
        }
        assert_eq!(res.headers()["content-type"], "text/event-stream");
        Ok(SseClient { body: Box::pin(res.bytes_stream()), buffer: String::new() })
    }

    /// The next event (comments and heartbeats skipped), or `None` after `wait`.
    pub async fn next(&mut self, wait: std::time::Duration) -> Option<SseEvent> {
        use futures::StreamExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { id: None, event: "message".into(), data: String::new() };
                let mut has_data = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_string());
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if has_data {
                            event.data.push('\n');
                        }
                        event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                        has_data = true;
                    }
                }
                if has_data {
                    return Some(event);
                }
            }
            let chunk = tokio::time::timeout_at(deadline, self.body.next()).await.ok()??.ok()?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str, wait: std::time::Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let e = self.next(left).await?;
            if e.event == kind {
                return Some(e);
            }
        }
    }
}

/// A parsed response: status and JSON body (Null when there is none).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The error message of a Backstage-shaped error body.
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl TestApp {
    /// The instance's publishing context, for calling the core directly.
    pub fn publish_context(&self) -> herald_core::notifications::PublishContext {
        self.publish.as_ref().clone()
    }

    /// A service token publishing as `origin`.
    pub async fn service_token(&self, origin: &str) -> String {
        create_service_token(&self.db, origin).await.expect("service token").secret
    }

    /// A personal token of `user` (a name like `alice`).
    pub async fn user_token(&self, user: &str) -> String {
        let user: EntityRef = format!("user:default/{user}").parse().unwrap();
        create_personal_token(&self.db, &user, "test").await.expect("personal token").secret
    }

    /// Sends a request; `token` goes into `Authorization: Bearer`.
    pub async fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let url = format!("{}{path}", self.base);
        let mut req = self.client.request(method.parse().unwrap(), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    /// Sends a prepared request and parses the reply.
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply { status, body, headers }
    }

    /// `GET` with a token.
    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), None).await
    }

    /// `POST` JSON with a token.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.call("POST", path, Some(token), Some(body)).await
    }

    /// Publishes `payload` to `recipients` with a service token; asserts success.
    pub async fn publish(&self, token: &str, recipients: Value, payload: Value) -> Vec<Value> {
        let r = self
            .post(
                "/api/notifications/notifications",
                token,
                serde_json::json!({ "recipients": recipients, "payload": payload }),
            )
            .await;
        assert_eq!(r.status, 200, "publish failed: {:?}", r.body);
        r.body.as_array().cloned().expect("an array of notifications")
    }

    /// Shuts the instance down as SIGTERM does, and waits until it has stopped serving.
    pub async fn shut_down(&mut self) {
        self.stop.take().expect("a serving instance").send(()).expect("the instance is running");
        self.served.take().expect("a serving instance").await.expect("serving task").expect("a clean shutdown");
    }

    /// Drops the PostgreSQL database of this test.
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some(name) = &self.pg_database
            && let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url()).await
        {
            let _ = sqlx::Executor::execute(&mut conn, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
        }
    }
}

/// Recipients naming entity refs.
pub fn to(refs: &[&str]) -> Value {
    serde_json::json!({ "type": "entity", "entityRef": refs })
}

/// Broadcast recipients.
pub fn everyone() -> Value {
    serde_json::json!({ "type": "broadcast" })
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The `herald` binary with `args`, run in `dir` (where its `herald.toml` and `data/` are).
pub fn herald_command(dir: &std::path::Path, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_herald"));
    c.args(args).current_dir(dir).env_remove("HERALD_DATABASE_URL").env("RUST_LOG", "warn");
    c
}

/// Starts `herald serve` in `dir` and waits until it listens on `port`.
pub async fn serve_binary(dir: &std::path::Path, port: u16) -> std::process::Child {
    let mut command = herald_command(dir, &["serve"]);
    command.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    spawn_listening(command, port).await
}

/// Spawns `command` (a `herald serve`) and waits until it listens on `port`.
pub async fn spawn_listening(mut command: std::process::Command, port: u16) -> std::process::Child {
    let mut child = command.spawn().unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return child;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // Not left running after the test.
    let _ = child.kill();
    let _ = child.wait();
    panic!("herald serve did not listen on {port}");
}
