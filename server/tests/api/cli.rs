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
    cli.ok(&["user", "add", "alice", "--name", "Alice A", "--email", "alice@example.com", "--password-stdin"], Some("long-enough-pass\n"));
    let short = cli.run(&["user", "set-password", "alice"], Some("short\n"));
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));
    std::fs::write(cli.dir.join("org.yaml"), "kind: User\nmetadata: {name: bob}\n---\nkind: Group\nmetadata: {name: team}\nspec: {members: [bob]}\n").unwrap();
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
