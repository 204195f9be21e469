//! The `herald` binary's commands, run as a user would.

use std::io::Write;
use std::process::{Command, Output, Stdio};

struct Cli {
    dir: std::path::PathBuf,
}

impl Cli {
    fn new() -> Cli {
        let dir = std::env::temp_dir().join(format!("herald-cli-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        Cli { dir }
    }

    fn run(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(args)
            .current_dir(&self.dir)
            .env_remove("HERALD_DATABASE_URL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }

    fn ok(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.run(args, stdin);
        assert!(out.status.success(), "herald {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn help_reads_well() {
    let cli = Cli::new();
    let help = cli.ok(&["--help"], None);
    for word in ["serve", "migrate", "import", "user", "token", "Examples:"] {
        assert!(help.contains(word), "--help lacks {word}:\n{help}");
    }
    assert!(cli.ok(&["token", "create", "--help"], None).contains("herald token create --service external:ci"));
}

#[test]
fn migrate_creates_the_default_sqlite_database() {
    let cli = Cli::new();
    assert!(cli.ok(&["migrate"], None).contains("migrations applied"));
    assert!(cli.dir.join("data/herald.db").exists());
}

#[test]
fn users_tokens_and_imports_round_trip() {
    let cli = Cli::new();
    cli.ok(
        &["user", "add", "alice", "--name", "Alice A", "--email", "alice@example.com", "--password-stdin"],
        Some("long-enough-pass\n"),
    );
    let short = cli.run(&["user", "set-password", "alice"], Some("short\n"));
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    std::fs::write(
        cli.dir.join("org.yaml"),
        "kind: User\nmetadata: {name: bob}\n---\nkind: Group\nmetadata: {name: team}\nspec: {members: [bob]}\n",
    )
    .unwrap();
    assert!(cli.ok(&["import", "org.yaml"], None).contains("1 users, 1 groups"));
    let users = cli.ok(&["user", "list"], None);
    assert!(users.contains("user:default/alice") && users.contains("Alice A") && users.contains("password"));
    assert!(users.contains("user:default/bob"));

    let secret = cli.ok(&["token", "create", "--service", "external:ci"], None);
    assert!(secret.trim().starts_with("hrld_s_"), "{secret}");
    let list = cli.ok(&["token", "list"], None);
    assert!(list.contains("external:ci") && list.contains("active"));
    assert!(!list.contains(secret.trim()), "secrets are never listed");
    let id = list.lines().nth(1).unwrap().split_whitespace().next().unwrap().to_string();
    cli.ok(&["token", "revoke", &id], None);
    assert!(cli.ok(&["token", "list"], None).contains("revoked"));
    assert!(!cli.run(&["token", "revoke", &id], None).status.success(), "a revoked token cannot be revoked again");

    let personal = cli.ok(&["token", "create", "--user", "alice", "--label", "laptop"], None);
    assert!(personal.trim().starts_with("hrld_p_"));
    assert!(cli.ok(&["token", "list", "--user", "alice"], None).contains("laptop"));
}

#[test]
fn bad_configuration_stops_with_the_key_named() {
    let cli = Cli::new();
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .arg("migrate")
        .current_dir(&cli.dir)
        .env("HERALD_RETENTION_DAYS", "forever")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("retention_days"), "{err}");
}

mod send {
    use std::io::Write;
    use std::process::{Command, Output, Stdio};

    use crate::helpers::{Backend, spawn_app};

    fn send(base: &str, token: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("send")
            .args(args)
            .env("HERALD_URL", base)
            .env("HERALD_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    }

    fn code(o: &Output) -> i32 {
        o.status.code().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn send_publishes_and_exit_codes_tell_failures_apart() {
        let app = spawn_app(Backend::Sqlite).await;
        let token = app.service_token("external:ci").await;
        let alice = app.user_token("alice").await;
        let base = app.base.clone();
        let (t, b) = (token.clone(), base.clone());
        let ok = tokio::task::spawn_blocking(move || {
            send(
                &b,
                &t,
                &[
                    "--to",
                    "user:default/alice",
                    "--title",
                    "Build passed",
                    "--severity",
                    "low",
                    "--description",
                    "-",
                    "--metadata",
                    r#"{"run": 42}"#,
                ],
                Some("All **green**."),
            )
        })
        .await
        .unwrap();
        assert_eq!(code(&ok), 0, "{}", String::from_utf8_lossy(&ok.stderr));
        let id = String::from_utf8(ok.stdout).unwrap().trim().to_string();
        let n = app.get(&format!("/api/notifications/notifications/{id}"), &alice).await.body;
        assert_eq!(n["payload"]["description"], "All **green**.");
        assert_eq!(n["payload"]["metadata"]["run"], 42);
        assert_eq!(n["origin"], "external:ci");

        let cases: Vec<(Vec<&str>, &str, i32)> = vec![
            (vec!["--to", "user:default/alice", "--title", "x"], "hrld_s_wrong", 3),
            (vec!["--to", "user:default/alice", "--title", "x", "--link", "javascript:alert(1)"], token.as_str(), 4),
            (vec!["--to", "alice", "--title", "x"], token.as_str(), 4),
            (vec!["--to", "user:default/alice", "--title", "x", "--metadata", "[1]"], token.as_str(), 2),
            (vec!["--to", "user:default/alice", "--title", "x"], "", 2),
            (vec!["--to", "user:default/alice", "--title", "x", "--severity", "urgent"], token.as_str(), 2),
        ];
        for (args, tok, expected) in cases {
            let (b, tok, a) = (base.clone(), tok.to_string(), args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
            let out = tokio::task::spawn_blocking(move || {
                send(&b, &tok, &a.iter().map(String::as_str).collect::<Vec<_>>(), None)
            })
            .await
            .unwrap();
            assert_eq!(code(&out), expected, "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        app.cleanup().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn network_failures_retry_and_optional_never_fails() {
        // Nothing listens on this port once the listener is dropped.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let b = base.clone();
        let down = tokio::task::spawn_blocking(move || {
            send(&b, "hrld_s_x", &["--to", "user:default/a", "--title", "x", "--attempts", "2"], None)
        })
        .await
        .unwrap();
        assert_eq!(code(&down), 5);
        assert!(String::from_utf8_lossy(&down.stderr).contains("cannot reach"));
        let optional = tokio::task::spawn_blocking(move || {
            send(&base, "hrld_s_x", &["--to", "user:default/a", "--title", "x", "--attempts", "1", "--optional"], None)
        })
        .await
        .unwrap();
        assert_eq!(code(&optional), 0);
        assert!(String::from_utf8_lossy(&optional.stderr).contains("warning"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_same_idempotency_key_publishes_once() {
        let app = spawn_app(Backend::Sqlite).await;
        let token = app.service_token("external:ci").await;
        let bob = app.user_token("bob").await;
        for _ in 0..2 {
            let (b, t) = (app.base.clone(), token.clone());
            let out = tokio::task::spawn_blocking(move || {
                send(
                    &b,
                    &t,
                    &[
                        "--to",
                        "group:default/platform",
                        "--exclude",
                        "user:default/alice",
                        "--title",
                        "once",
                        "--idempotency-key",
                        "pipeline-7",
                    ],
                    None,
                )
            })
            .await
            .unwrap();
            assert_eq!(code(&out), 0);
        }
        assert_eq!(app.get("/api/notifications/notifications", &bob).await.body["totalCount"], 1);
        let alice = app.user_token("alice").await;
        assert_eq!(app.get("/api/notifications/notifications", &alice).await.body["totalCount"], 0);
        app.cleanup().await;
    }
}
