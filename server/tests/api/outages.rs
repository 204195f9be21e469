//! The database going away: PostgreSQL restarted under load, a full disk under SQLite, a
//! read-only database file. Clients get a clear 503, readiness fails, nothing acknowledged is
//! lost, and service resumes by itself.
//!
//! These tests need their own database server and file systems they can break: a private
//! PostgreSQL cluster (the machine's `initdb`), and tmpfs or read-only bind mounts, which need
//! root. Where the machine cannot provide them the test says so and does nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::{SseClient, TempDir, free_port, spawn_app_at, to};

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs a command, as the `postgres` user when we are root (PostgreSQL refuses to run as root).
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// A PostgreSQL cluster of the test's own, which it may stop and start.
struct PrivatePostgres {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    _dir: TempDir,
}

impl PrivatePostgres {
    /// Creates and starts a cluster, or `None` when PostgreSQL's server programs are missing.
    fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|b| b.join("initdb").exists())
            .max()?;
        let dir = TempDir(std::env::temp_dir().join(format!("herald-pg-{}", uuid::Uuid::new_v4().simple())));
        std::fs::create_dir_all(&dir.0).unwrap();
        if is_root() {
            assert!(Command::new("chown").args(["postgres:postgres"]).arg(&dir.0).status().unwrap().success());
        }
        let data = dir.0.join("data");
        let out = as_postgres(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let pg = PrivatePostgres { bin, data, port: free_port(), _dir: dir };
        pg.ctl("start");
        Some(pg)
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn ctl(&self, action: &str) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync=off",
            self.port,
            self.data.display()
        );
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-l"])
            .arg(self.data.join("log"))
            .args(["-o", &options, action])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl {action}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["-D"])
            .arg(&self.data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// What a publishing load saw: the ids acknowledged with 2xx, and every other answer.
#[derive(Default)]
struct Tally {
    acknowledged: Vec<String>,
    refused: Vec<(u16, Value, Option<String>)>,
}

/// Publishes to `user` from `workers` tasks until `stop` is set.
fn publish_load(
    base: &str,
    token: &str,
    user: &'static str,
    workers: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> (Arc<Mutex<Tally>>, Vec<tokio::task::JoinHandle<()>>) {
    let tally: Arc<Mutex<Tally>> = Arc::default();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let tasks = (0..workers)
        .map(|w| {
            let (client, tally, stop, base, token) =
                (client.clone(), tally.clone(), stop.clone(), base.to_string(), token.to_string());
            tokio::spawn(async move {
                let mut i = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    i += 1;
                    let r = client
                        .post(format!("{base}/api/notifications/notifications"))
                        .bearer_auth(&token)
                        .json(&json!({"recipients": to(&[user]), "payload": {"title": format!("load {w}-{i}")}}))
                        .send()
                        .await
                        .expect("Herald itself stays up");
                    let status = r.status().as_u16();
                    let retry_after = r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string());
                    let body: Value = r.json().await.unwrap_or(Value::Null);
                    if (200..300).contains(&status) {
                        let id = body[0]["id"].as_str().expect("an id").to_string();
                        tally.lock().unwrap().acknowledged.push(id);
                    } else {
                        tally.lock().unwrap().refused.push((status, body, retry_after));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            })
        })
        .collect();
    (tally, tasks)
}

/// The ids of every stored notification.
async fn stored_ids(db: &herald_core::Db) -> HashSet<String> {
    herald_core::with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT id FROM notifications").fetch_all(c).await)
        .unwrap()
        .into_iter()
        .collect()
}

/// Polls `/readyz` until it answers `want`, for at most `wait`; returns the last body.
async fn ready_becomes(base: &str, want: u16, wait: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
        let status = r.status().as_u16();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if status == want {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "readiness did not become {want}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads `client`'s notification events until every id in `want` has arrived, reconnecting
/// with `Last-Event-ID` when the stream ends, as a browser does.
async fn receive_all(base: &str, token: &str, mut client: SseClient, mut last: String, want: &HashSet<String>) {
    let mut seen = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !want.is_subset(&seen) {
        assert!(tokio::time::Instant::now() < deadline, "{} of {} events arrived", seen.len(), want.len());
        match client.next(Duration::from_secs(3)).await {
            Some(e) => {
                if let Some(id) = e.id.clone() {
                    last = id;
                }
                if e.event == "notification" {
                    seen.insert(e.json()["id"].as_str().unwrap().to_string());
                }
                assert_ne!(e.event, "reset", "the position stayed in the log; no reset is needed");
            }
            None => {
                if let Ok(c) = SseClient::connect(base, token, Some(&last), "").await {
                    client = c;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing_and_service_resumes() {
    let Some(pg) = PrivatePostgres::start() else {
        eprintln!("skipped: PostgreSQL's server programs (initdb, pg_ctl) are not installed");
        return;
    };
    let app = spawn_app_at(&pg.url(), |s| {
        s.limits.publish_per_minute = 0;
        s.limits.user_per_minute = 0;
    })
    .await;
    let service = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let first = app.publish(&service, to(&["user:default/alice"]), json!({"title": "before"})).await;
    // One client stays connected through the outage; another was away and comes back after it.
    let mut live = SseClient::connect(&app.base, &alice, None, "?since=0").await.unwrap();
    let before = live.next_of("notification", Duration::from_secs(5)).await.unwrap();
    assert_eq!(before.json()["id"], first[0]["id"]);
    let position = before.id.clone().unwrap();

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (tally, workers) = publish_load(&app.base, &service, "user:default/alice", 4, stop.clone());
    tokio::time::sleep(Duration::from_millis(700)).await;
    pg.ctl("stop");
    let down = ready_becomes(&app.base, 503, Duration::from_secs(10)).await;
    assert_eq!(down["status"], "unavailable", "{down}");
    // Down for longer than a request waits for a connection: a publish that needs the
    // database then is refused (with so little to read per publish — its token and settings
    // are remembered for a second — a shorter outage may only delay the publishes).
    let wait = herald_core::db::PoolSettings::default().acquire_timeout;
    tokio::time::sleep(wait + Duration::from_secs(1)).await;
    pg.ctl("start");
    ready_becomes(&app.base, 200, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let tally = std::mem::take(&mut *tally.lock().unwrap());
    assert!(!tally.refused.is_empty(), "the outage was seen by the publishers");
    for (status, body, retry_after) in &tally.refused {
        assert_eq!(*status, 503, "during the outage only 503, never a 500: {body}");
        assert_eq!(body["error"]["name"], "ServiceUnavailableError", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("database"), "{body}");
        assert!(retry_after.is_some(), "503 says when to retry");
    }
    assert!(tally.acknowledged.len() > 10, "publishing worked before and after ({})", tally.acknowledged.len());
    // Everything acknowledged is stored…
    let stored = stored_ids(&app.db).await;
    let want: HashSet<String> = tally.acknowledged.iter().cloned().collect();
    assert!(want.is_subset(&stored), "{} acknowledged notifications were lost", want.difference(&stored).count());
    // …and reaches the client that stayed, and the one that comes back with its position.
    receive_all(&app.base, &alice, live, position.clone(), &want).await;
    let returning = SseClient::connect(&app.base, &alice, Some(&position), "").await.unwrap();
    receive_all(&app.base, &alice, returning, position, &want).await;
    // Publishing works again without anyone stepping in.
    let after = app.publish(&service, to(&["user:default/alice"]), json!({"title": "after"})).await;
    assert!(after[0]["id"].is_string());
    app.cleanup().await;
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. `8m`), or `None` without the right to mount.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = std::env::temp_dir().join(format!("herald-fs-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        Some(Tmpfs { dir })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fills the file system holding `dir` until a write fails; returns the filler's path.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let small = [0u8; 512];
    while f.write_all(&small).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_clearly_and_service_returns_with_space() {
    let Some(fs) = Tmpfs::mount("16m") else {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    };
    let url = format!("sqlite:{}", fs.dir.join("herald.db").display());
    let app = spawn_app_at(&url, |s| s.limits.publish_per_minute = 0).await;
    let service = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let r = app.publish(&service, to(&["user:default/alice"]), json!({"title": format!("before {i}")})).await;
        acknowledged.push(r[0]["id"].as_str().unwrap().to_string());
    }

    let filler = fill(&fs.dir);
    // Publishing now fails, clearly, and keeps failing: nothing half-stored.
    let mut refused = None;
    for i in 0..400 {
        let big = "x".repeat(8000);
        let r = app
            .post(
                "/api/notifications/notifications",
                &service,
                json!({"recipients": to(&["user:default/alice"]), "payload": {"title": format!("full {i}"), "description": big}}),
            )
            .await;
        match r.status {
            200 | 201 => acknowledged.push(r.body[0]["id"].as_str().unwrap().to_string()),
            _ => {
                refused = Some(r);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk refuses new notifications");
    assert_eq!(refused.status, 503, "{:?}", refused.body);
    assert!(refused.message().contains("out of disk space"), "{:?}", refused.body);
    let ready = ready_becomes(&app.base, 503, Duration::from_secs(10)).await;
    assert!(ready["reason"].as_str().unwrap().contains("disk space"), "{ready}");
    // Reading still works on a full disk.
    let inbox = app.get("/api/notifications/notifications?limit=5", &alice).await;
    assert_eq!(inbox.status, 200, "{:?}", inbox.body);
    // The UI's server functions say the same as the API.
    let setting = app
        .client
        .post(format!("{}/api/settings/email-mode", app.base))
        .bearer_auth(&alice)
        .form(&[("mode", "daily")])
        .send()
        .await
        .unwrap();
    assert_eq!(setting.status(), 503);
    assert!(setting.text().await.unwrap().contains("out of disk space"));

    std::fs::remove_file(filler).unwrap();
    ready_becomes(&app.base, 200, Duration::from_secs(10)).await;
    let after = app.publish(&service, to(&["user:default/alice"]), json!({"title": "space again"})).await;
    acknowledged.push(after[0]["id"].as_str().unwrap().to_string());

    let integrity: String =
        herald_core::with_pool!(app.db.reader(), |c| sqlx::query_scalar("PRAGMA integrity_check").fetch_one(c).await)
            .unwrap();
    assert_eq!(integrity, "ok");
    let stored = stored_ids(&app.db).await;
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged {id} was lost");
    }
    app.cleanup().await;
    drop(fs);
}

/// Makes `dir` read-only (a read-only bind mount as root, who ignores file modes); undone on
/// drop.
struct ReadOnly {
    dir: PathBuf,
    mounted: bool,
}

impl ReadOnly {
    fn make(dir: &Path) -> ReadOnly {
        let mounted = is_root();
        if mounted {
            for args in [&["--bind"][..], &["-o", "remount,bind,ro"][..]] {
                let ok = Command::new("mount").args(args).arg(dir).arg(dir).status().unwrap().success();
                assert!(ok, "mount {args:?}");
            }
        } else {
            use std::os::unix::fs::PermissionsExt;
            for entry in std::fs::read_dir(dir).unwrap() {
                std::fs::set_permissions(entry.unwrap().path(), std::fs::Permissions::from_mode(0o444)).unwrap();
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        }
        ReadOnly { dir: dir.to_path_buf(), mounted }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.dir).status();
        } else {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755));
        }
    }
}

/// Waits for `child` to exit, at most `wait`; `None` if it is still running.
async fn exits_within(child: &mut std::process::Child, wait: Duration) -> Option<std::process::ExitStatus> {
    let deadline = tokio::time::Instant::now() + wait;
    while tokio::time::Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_database_fails_clearly_and_loses_nothing() {
    use crate::helpers::{herald_command, serve_binary};
    let dir = TempDir(std::env::temp_dir().join(format!("herald-ro-{}", uuid::Uuid::new_v4().simple())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let port = free_port();
    std::fs::write(dir.0.join("herald.toml"), format!("listen = \"127.0.0.1:{port}\"\n")).unwrap();
    let out = herald_command(&dir.0, &["token", "create", "--service", "external:ci"]).output().unwrap();
    let service = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = herald_command(&dir.0, &["token", "create", "--user", "alice"]).output().unwrap();
    let alice = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let data = dir.0.join("data");
    let file = data.join("herald.db");
    // Closing the last connection checkpoints the log and removes the -wal and -shm files. One
    // connection, not a pool: `Pool::close` can return while a connection that was just used is
    // still on its way back to the pool, and that connection then keeps the -shm file alive.
    let url = format!("sqlite:{}", file.display());
    let mut connection = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&mut connection).await.unwrap();
    sqlx::Connection::close(connection).await.unwrap();
    assert!(!data.join("herald.db-shm").exists());

    // 1. A read-only directory without SQLite's -shm file cannot even be opened: Herald says
    //    why and does not start.
    let guard = ReadOnly::make(&data);
    let mut serve = herald_command(&dir.0, &["serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let Some(status) = exits_within(&mut serve, Duration::from_secs(10)).await else {
        serve.kill().unwrap();
        panic!("herald served on a database it cannot open for writing");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut serve.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("cannot be written") && stderr.contains("herald.db"), "{stderr}");
    drop(guard);

    // 2. A database left by a crashed Herald (with its -wal and -shm), on a file system that
    //    became read-only: Herald serves reads, refuses writes clearly, readiness fails…
    let mut first = serve_binary(&dir.0, port).await;
    first.kill().unwrap();
    first.wait().unwrap();
    let guard = ReadOnly::make(&data);
    let mut server = serve_binary(&dir.0, port).await;
    let base = format!("http://127.0.0.1:{port}");
    let ready = ready_becomes(&base, 503, Duration::from_secs(10)).await;
    assert!(ready["reason"].as_str().unwrap().contains("read-only"), "{ready}");
    let client = reqwest::Client::new();
    let publish = || {
        client
            .post(format!("{base}/api/notifications/notifications"))
            .bearer_auth(&service)
            .json(&json!({"recipients": to(&["user:default/alice"]), "payload": {"title": "hello"}}))
            .send()
    };
    let refused = publish().await.unwrap();
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("read-only"), "{body}");
    let inbox = client.get(format!("{base}/api/notifications/notifications")).bearer_auth(&alice).send().await.unwrap();
    assert_eq!(inbox.status(), 200, "reads are served");
    // …and once the file system is writable again, a restart brings service back (SQLite keeps
    // a file it opened read-only read-only for the life of the process).
    server.kill().unwrap();
    server.wait().unwrap();
    drop(guard);
    let mut server = serve_binary(&dir.0, port).await;
    ready_becomes(&base, 200, Duration::from_secs(10)).await;
    assert!(publish().await.unwrap().status().is_success());
    server.kill().unwrap();
    server.wait().unwrap();

    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let integrity: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&pool).await.unwrap();
    assert_eq!(integrity, "ok");
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notifications").fetch_one(&pool).await.unwrap();
    assert_eq!(stored, 1, "only the acknowledged publish was stored");
    pool.close().await;

    // The classification holds for a connection that is read-only by itself, too.
    let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(&url).unwrap().read_only(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    let err = sqlx::query("INSERT INTO health_probe (id, checked_at) VALUES (2, 1)").execute(&pool).await.unwrap_err();
    assert_eq!(herald_core::Error::from(err).unavailable(), Some(herald_core::Unavailable::ReadOnly));
    pool.close().await;
}
