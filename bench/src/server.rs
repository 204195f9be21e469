//! Starting a Herald to measure: the release binary on a fresh SQLite file or PostgreSQL
//! database, with the open-file limit raised so it can hold many streams.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A Herald process under measurement.
pub struct Herald {
    pub base: String,
    pub pid: u32,
    /// The database it runs on.
    pub database_url: String,
    dir: PathBuf,
    bin: PathBuf,
    child: Child,
}

/// A process's resident memory, in KiB (0 when it is gone).
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Raises this process's open-file limit to its hard limit; returns the new limit.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    unsafe {
        let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
        lim.rlim_cur
    }
}

impl Herald {
    /// Starts `bin serve` in a temporary directory with `env` added, on `database_url` when
    /// given (an empty database, or one another instance of this run serves), else on a fresh
    /// SQLite file.
    pub async fn start_on(bin: &Path, database_url: Option<&str>, env: &[(&str, String)]) -> anyhow::Result<Herald> {
        let bin = std::fs::canonicalize(bin)
            .with_context(|| format!("no herald binary at {}; build it with ./x build", bin.display()))?;
        let bin = bin.as_path();
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("herald-bench-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let database_url =
            database_url.map(str::to_string).unwrap_or_else(|| format!("sqlite:{}", dir.join("herald.db").display()));
        let mut cmd = Command::new(bin);
        cmd.arg("serve")
            .current_dir(&dir)
            .env("HERALD_LISTEN", "127.0.0.1:0")
            .env("HERALD_DATABASE_URL", &database_url)
            .env("RUST_LOG", "warn")
            // Measure Herald, not its abuse limits: one benchmark client is one credential.
            .env("HERALD_LIMITS__PUBLISH_PER_MINUTE", "0")
            .env("HERALD_LIMITS__USER_PER_MINUTE", "0")
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // The child inherits the raised limit.
        raise_fd_limit();
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
        let base = loop {
            let line = lines.next_line().await?.context("herald exited before listening")?;
            if let Some(rest) = line.strip_prefix("Herald is running at ") {
                break rest.trim_end_matches('/').to_string();
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let pid = child.id().context("pid")?;
        Ok(Herald { base, pid, database_url, dir, bin: bin.to_path_buf(), child })
    }

    /// Runs a CLI command against the same database and returns its standard output.
    pub async fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let out = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.dir)
            .env("HERALD_DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .output()
            .await?;
        anyhow::ensure!(out.status.success(), "herald {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// Runs a CLI command with `input` on its standard input.
    pub async fn cli_with_input(&self, args: &[&str], input: &str) -> anyhow::Result<String> {
        use tokio::io::AsyncWriteExt;
        let mut child = Command::new(&self.bin)
            .args(args)
            .current_dir(&self.dir)
            .env("HERALD_DATABASE_URL", &self.database_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child.stdin.take().context("stdin")?.write_all(input.as_bytes()).await?;
        let out = child.wait_with_output().await?;
        anyhow::ensure!(out.status.success(), "herald {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        Ok(String::from_utf8(out.stdout)?.trim().to_string())
    }

    /// The directory the instance runs in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The server's resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        rss_kib(self.pid)
    }

    /// Stops the server and removes its files.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A fresh PostgreSQL database for one run, dropped with [`ScratchDatabase::drop_now`].
pub struct ScratchDatabase {
    admin: String,
    name: String,
    /// The database's URL, for `HERALD_DATABASE_URL`.
    pub url: String,
}

impl ScratchDatabase {
    /// Creates database `herald_bench_<pid>_<label>` on the server `admin` names (a URL whose
    /// user may create databases).
    pub fn create(admin: &str, label: &str) -> anyhow::Result<ScratchDatabase> {
        let name = format!("herald_bench_{}_{label}", std::process::id());
        let status =
            std::process::Command::new("psql").arg(admin).args(["-qc", &format!("CREATE DATABASE {name}")]).status()?;
        anyhow::ensure!(status.success(), "creating the PostgreSQL database {name}");
        let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
        Ok(ScratchDatabase { admin: admin.to_string(), url: format!("{base}/{name}"), name })
    }

    /// Drops the database, closing whatever is still connected to it.
    pub fn drop_now(self) {
        let _ = std::process::Command::new("psql")
            .arg(&self.admin)
            .args(["-qc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .status();
    }
}
