//! `spawn_app`: a fresh Herald with its own database, and a client with one method per call.

use std::sync::atomic::{AtomicU32, Ordering};

use herald_server::config::{Secret, Settings};
use herald_server::startup::Application;
use herald_core::auth::{create_personal_token, create_service_token};
use herald_core::{directory, Db};
use herald_model::EntityRef;
use serde_json::Value;

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Defines one async test per backend: `both!(name, |app| async move { … })` makes
/// `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both {
    ($name:ident, |$app:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await;
                $body.await;
                $app.cleanup().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $app = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await;
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
    pub client: reqwest::Client,
    /// The catalog's users; all sign in with `password`.
    pub password: &'static str,
    pg_database: Option<String>,
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
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL is required for these tests and is not reachable at {admin}: {e}"));
            sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                .await
                .expect("create test database");
            let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).expect("URL with a database");
            (format!("{base}/{name}"), Some(name))
        }
    };
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
    directory::import_catalog(&db, CATALOG).await.expect("import catalog");
    tokio::spawn(app.run(std::future::pending()));
    TestApp {
        base: format!("http://{addr}"),
        db,
        client: reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap(),
        password: "correct-horse",
        pg_database,
        _dir: dir,
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
            .post("/api/notifications/notifications", token, serde_json::json!({ "recipients": recipients, "payload": payload }))
            .await;
        assert_eq!(r.status, 200, "publish failed: {:?}", r.body);
        r.body.as_array().cloned().expect("an array of notifications")
    }

    /// Drops the PostgreSQL database of this test.
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some(name) = &self.pg_database {
            if let Ok(mut conn) = <sqlx::PgConnection as sqlx::Connection>::connect(&postgres_admin_url()).await {
                let _ = sqlx::Executor::execute(&mut conn, format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str()).await;
            }
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
