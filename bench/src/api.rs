//! The REST API under load, side by side: Herald on SQLite, Herald on PostgreSQL and (when
//! its URL is given) Backstage's notifications backend, measured by this one client through
//! the API they share.
//!
//! Scenarios (issue #9): 1. publish to one user; 2. broadcasts with 1,000 and 100,000 users in
//! the directory; 3. the inbox's first page for a user holding `--inbox` notifications, per
//! filter; 4. unread status and marking 20 read; 6. publish → live event latency; 7. server
//! memory idle and at peak, the release WebAssembly bundle, the server-rendered inbox page.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::histogram::{self, Histogram};
use crate::load::{self, Stats, ms};
use crate::server::{Herald, ScratchDatabase, rss_kib};

/// Options of `herald-bench api`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// The herald binary to measure.
    #[arg(long, default_value = "target/release/herald")]
    herald: PathBuf,
    /// Also measure Herald on PostgreSQL: a server URL whose user may create databases.
    #[arg(long)]
    postgres: Option<String>,
    /// Also measure Backstage at this URL (../shared/peer-backstage's run.sh starts it).
    #[arg(long)]
    backstage: Option<String>,
    /// Backstage's static publisher token (run.sh's default).
    #[arg(long, default_value = "bench-publish-token-0123456789")]
    backstage_token: String,
    /// Backstage's process id, for its memory (run.sh prints it).
    #[arg(long)]
    backstage_pid: Option<u32>,
    /// Publish requests to one user (scenario 1).
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent requests.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Notifications the measured user holds for the inbox scenarios.
    #[arg(long, default_value_t = 100_000)]
    inbox: usize,
    /// Requests per read scenario.
    #[arg(long, default_value_t = 5_000)]
    reads: usize,
    /// Seconds at most per read scenario (a slow system answers fewer requests).
    #[arg(long, default_value_t = 15)]
    read_seconds: u64,
    /// Broadcast publishes per directory size.
    #[arg(long, default_value_t = 2_000)]
    broadcasts: usize,
    /// Directory sizes for the broadcast scenario.
    #[arg(long, value_delimiter = ',', default_value = "1000,100000")]
    users: Vec<usize>,
    /// Where the release site's WebAssembly bundle is.
    #[arg(long, default_value = "target/site/pkg")]
    pkg: PathBuf,
}

/// One system under measurement, reached through the Backstage-compatible API.
struct System {
    name: String,
    /// The notifications API's root, e.g. `http://127.0.0.1:3000/api/notifications`.
    api: String,
    publish_token: String,
    user_token: String,
    recipient: String,
    pid: Option<u32>,
    herald: Option<Herald>,
}

const SEVERITIES: [&str; 4] = ["critical", "high", "normal", "low"];
const TOPICS: [&str; 5] = ["build", "deploy", "alert", "review", "misc"];
/// Requests of the mark-read scenario, and ids per request (bench.js's N_UPDATE, UPDATE_BATCH).
const UPDATES: usize = 200;
const UPDATE_BATCH: usize = 20;

/// bench.js's payload, so both clients send the same: every 10th title holds "foo".
fn payload(recipient: &str, i: usize) -> Value {
    json!({
        "recipients": {"type": "entity", "entityRef": recipient},
        "payload": {
            "title": if i.is_multiple_of(10) { format!("bench foo notification {i}") } else { format!("bench notification {i}") },
            "description": format!("benchmark description {i}"),
            "severity": SEVERITIES[i % 4],
            "topic": TOPICS[i % 5],
            "link": format!("/catalog/default/component/c{}", i % 100),
        }
    })
}

/// One row of the report: a scenario's figures per system.
struct Row {
    scenario: String,
    /// Per system, in the order of the systems: the figures, or `None` when not measured.
    cells: Vec<Option<Stats>>,
}

fn client(concurrency: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .tcp_nodelay(true)
        .build()
        .expect("an HTTP client")
}

/// Runs `n` POSTs of `body(i)` to `url` with `token`.
async fn posts(
    http: &reqwest::Client,
    url: String,
    token: &str,
    n: usize,
    c: usize,
    body: impl Fn(usize) -> Value + Send + Sync + 'static,
) -> Stats {
    let (http, token, url) = (http.clone(), token.to_string(), Arc::new(url));
    let body = Arc::new(body);
    load::run(n, c, move |i| {
        let req = http.post(url.as_str()).bearer_auth(&token).json(&body(i));
        async move { req.send().await.is_ok_and(|r| r.status().is_success()) }
    })
    .await
}

/// Runs `n` GETs of `url` with `token`, for at most `budget`.
async fn gets(http: &reqwest::Client, url: String, token: &str, n: usize, c: usize, budget: Duration) -> Stats {
    let (http, token, url) = (http.clone(), token.to_string(), Arc::new(url));
    load::run_for(n, Some(budget), c, move |_| {
        let req = http.get(url.as_str()).bearer_auth(&token);
        async move {
            match req.send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await
}

/// Samples a process's resident memory until stopped; returns the peak in KiB.
fn sample_peak(pid: u32, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let peak = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while !stop.load(Ordering::Relaxed) {
            peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        peak.load(Ordering::Relaxed)
    })
}

/// A catalog file with `n` users (`bench-0` … ) in ten groups.
fn catalog(from: usize, to: usize) -> String {
    let mut yaml = String::with_capacity((to - from) * 120);
    for g in 0..10 {
        yaml.push_str(&format!(
            "kind: Group\nmetadata: {{name: bench-team-{g}}}\nspec: {{type: team, children: []}}\n---\n"
        ));
    }
    for u in from..to {
        yaml.push_str(&format!(
            "kind: User\nmetadata: {{name: bench-{u}}}\nspec: {{profile: {{email: bench-{u}@example.com}}, memberOf: [bench-team-{}]}}\n---\n",
            u % 10
        ));
    }
    yaml
}

impl System {
    async fn herald(o: &Options, name: &str, database_url: Option<&str>) -> anyhow::Result<System> {
        let herald = Herald::start_on(&o.herald, database_url, &[]).await?;
        let publish_token = herald.cli(&["token", "create", "--service", "external:bench"]).await?;
        let recipient = "user:default/bench".to_string();
        herald.cli_with_input(&["user", "add", "bench", "--password-stdin"], "bench-password").await?;
        let user_token = herald.cli(&["token", "create", "--user", &recipient]).await?;
        Ok(System {
            name: name.to_string(),
            api: format!("{}/api/notifications", herald.base),
            publish_token,
            user_token,
            recipient,
            pid: Some(herald.pid),
            herald: Some(herald),
        })
    }

    async fn backstage(o: &Options, base: &str) -> anyhow::Result<System> {
        let base = base.trim_end_matches('/');
        let guest: Value = reqwest::Client::new()
            .get(format!("{base}/api/auth/guest/refresh"))
            .header("X-Requested-With", "XMLHttpRequest")
            .send()
            .await?
            .json()
            .await
            .context("Backstage's guest sign-in")?;
        let user_token = guest["backstageIdentity"]["token"].as_str().context("a guest token")?.to_string();
        Ok(System {
            name: "Backstage".into(),
            api: format!("{base}/api/notifications"),
            publish_token: o.backstage_token.clone(),
            user_token,
            recipient: "user:development/guest".into(),
            pid: o.backstage_pid,
            herald: None,
        })
    }
}

/// Measures every scenario on `s`; returns rows in a fixed order, and memory (idle, peak).
async fn measure(o: &Options, s: &System) -> anyhow::Result<(Vec<(String, Option<Stats>)>, (u64, u64))> {
    let http = client(o.concurrency);
    let mut rows: Vec<(String, Option<Stats>)> = Vec::new();
    let idle = s.pid.map_or(0, rss_kib);
    let stop = Arc::new(AtomicBool::new(false));
    let peak = s.pid.map(|pid| sample_peak(pid, stop.clone()));
    let url = format!("{}/notifications", s.api);
    // Herald's own latency histogram, read around each scenario (Backstage exposes none).
    let base = s.herald.as_ref().map(|h| h.base.clone());
    let window = async || match &base {
        Some(b) => histogram::scrape(&http, b).await,
        None => None,
    };
    eprintln!("[{}] warming up", s.name);
    let r = s.recipient.clone();
    posts(&http, url.clone(), &s.publish_token, 200, o.concurrency, move |i| payload(&r, 1_000_000 + i)).await;

    eprintln!("[{}] 1. publish to one user: {} @ {}", s.name, o.requests, o.concurrency);
    let r = s.recipient.clone();
    let before = window().await;
    let mut stats =
        posts(&http, url.clone(), &s.publish_token, o.requests, o.concurrency, move |i| payload(&r, i)).await;
    stats.server_p99 = server_p99(before, window().await);
    rows.push((format!("1. publish to one user ({} @ {})", o.requests, o.concurrency), Some(stats)));

    if o.inbox > o.requests + 200 {
        let more = o.inbox - o.requests - 200;
        eprintln!("[{}] filling the inbox with {more} more", s.name);
        let r = s.recipient.clone();
        let offset = o.requests;
        let filled = posts(&http, url.clone(), &s.publish_token, more, 64, move |i| payload(&r, offset + i)).await;
        anyhow::ensure!(filled.errors == 0, "{}: {} publishes failed while filling the inbox", s.name, filled.errors);
    }

    let broadcast = |i: usize| {
        json!({"recipients": {"type": "broadcast"},
               "payload": {"title": format!("bench broadcast {i}"), "severity": SEVERITIES[i % 4], "topic": "broadcast"}})
    };
    let mut in_directory = 0;
    for &users in &o.users {
        if let Some(h) = &s.herald {
            eprintln!("[{}] importing {} users", s.name, users - in_directory);
            let file = h.dir().join("bench-catalog.yaml");
            std::fs::write(&file, catalog(in_directory, users))?;
            h.cli(&["import", &file.to_string_lossy()]).await?;
            in_directory = users;
        } else if in_directory > 0 {
            continue; // Backstage has no directory of its own: one figure.
        } else {
            in_directory = users;
        }
        eprintln!("[{}] 2. broadcasts: {} @ {}", s.name, o.broadcasts, o.concurrency);
        let before = window().await;
        let mut stats = posts(&http, url.clone(), &s.publish_token, o.broadcasts, o.concurrency, broadcast).await;
        stats.server_p99 = server_p99(before, window().await);
        let label = if s.herald.is_some() { format!("{users} users") } else { "no directory".into() };
        rows.push((format!("2. broadcast ({label})"), Some(stats)));
    }

    let variants = [
        ("no filter", "limit=20&offset=0"),
        ("read=false", "limit=20&offset=0&read=false"),
        ("minimumSeverity=high", "limit=20&offset=0&minimumSeverity=high"),
        ("search=foo", "limit=20&offset=0&search=foo"),
        ("topic=deploy", "limit=20&offset=0&topic=deploy"),
        // The inbox's own "Severity" sort (docs/performance.md: until the twenty-fifth
        // sitting this asked for the least urgent first, which hid the cost of this one).
        ("most urgent first", "limit=20&offset=0&orderField=severity,desc"),
    ];
    for (name, query) in variants {
        let target = format!("{url}?{query}");
        let probe = http.get(&target).bearer_auth(&s.user_token).send().await?;
        let ok = probe.status().is_success();
        let total = probe.json::<Value>().await.ok().and_then(|v| v["totalCount"].as_i64()).unwrap_or(-1);
        eprintln!("[{}] 3. inbox page, {name} (totalCount {total}): {} @ {}", s.name, o.reads, o.concurrency);
        let budget = Duration::from_secs(o.read_seconds);
        let stats = if ok {
            let before = window().await;
            let mut stats = gets(&http, target, &s.user_token, o.reads, o.concurrency, budget).await;
            stats.server_p99 = server_p99(before, window().await);
            Some(stats)
        } else {
            None
        };
        rows.push((format!("3. inbox first page, {name}"), stats));
    }

    eprintln!("[{}] 4. status", s.name);
    let before = window().await;
    let budget = Duration::from_secs(o.read_seconds);
    let mut stats = gets(&http, format!("{}/status", s.api), &s.user_token, o.reads, o.concurrency, budget).await;
    stats.server_p99 = server_p99(before, window().await);
    rows.push(("4. unread status".into(), Some(stats)));
    let mut ids = Vec::new();
    let mut offset = 0;
    while ids.len() < UPDATES * UPDATE_BATCH {
        let page: Value = http
            .get(format!("{url}?read=false&limit=500&offset={offset}"))
            .bearer_auth(&s.user_token)
            .send()
            .await?
            .json()
            .await?;
        let Some(list) = page["notifications"].as_array().filter(|l| !l.is_empty()) else { break };
        ids.extend(list.iter().filter(|n| !n["user"].is_null()).filter_map(|n| n["id"].as_str().map(str::to_string)));
        offset += 500;
    }
    let batches = ids.len() / UPDATE_BATCH;
    let ids = Arc::new(ids);
    eprintln!("[{}] 4. mark 20 read: {batches} @ {}", s.name, o.concurrency);
    let before = window().await;
    let mut stats = posts(
        &http,
        format!("{url}/update"),
        &s.user_token,
        batches,
        o.concurrency,
        move |i| json!({"ids": ids[i * 20..(i + 1) * 20], "read": true}),
    )
    .await;
    stats.server_p99 = server_p99(before, window().await);
    rows.push(("4. mark 20 read".into(), Some(stats)));

    stop.store(true, Ordering::Relaxed);
    let peak = match peak {
        Some(p) => p.await.unwrap_or(0),
        None => 0,
    };
    Ok((rows, (idle, peak)))
}

/// The p99 of the requests recorded between two readings of a server's histogram.
fn server_p99(before: Option<Histogram>, after: Option<Histogram>) -> Option<Duration> {
    after?.since(&before?).quantile_bound(0.99)
}

/// Scenario 6: one live stream; publishes one at a time and times each until its event
/// arrives.
async fn publish_to_event(s: &System, n: usize) -> anyhow::Result<Stats> {
    let h = s.herald.as_ref().context("Herald only")?;
    let addr = h.base.trim_start_matches("http://").to_string();
    let mut sock = tokio::net::TcpStream::connect(&addr).await?;
    sock.set_nodelay(true)?;
    let req = format!(
        "GET /api/notifications/stream HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nAccept: text/event-stream\r\n\r\n",
        s.user_token
    );
    sock.write_all(req.as_bytes()).await?;
    let mut buf = vec![0u8; 16384];
    let mut text = String::new();
    while !text.contains("event: status") {
        let k = sock.read(&mut buf).await?;
        anyhow::ensure!(k > 0, "the stream closed");
        text.push_str(&String::from_utf8_lossy(&buf[..k]));
    }
    let http = client(1);
    let mut latencies = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        let marker = format!("latency-probe-{i}-end");
        let t0 = Instant::now();
        let body = json!({"recipients": {"type": "entity", "entityRef": s.recipient}, "payload": {"title": marker}});
        let sent = http.post(format!("{}/notifications", s.api)).bearer_auth(&s.publish_token).json(&body).send();
        let mut seen = String::new();
        let (res, ()) = tokio::join!(sent, async {
            while !seen.contains(&marker) {
                match sock.read(&mut buf).await {
                    Ok(k) if k > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..k])),
                    _ => return,
                }
            }
        });
        anyhow::ensure!(res?.status().is_success() && seen.contains(&marker), "probe {i} was not delivered");
        latencies.push(t0.elapsed());
    }
    Ok(Stats::from_latencies(latencies, started.elapsed()))
}

/// Scenario 7: the server-rendered inbox page for a signed-in user.
async fn rendered_inbox(s: &System, n: usize) -> anyhow::Result<Stats> {
    let h = s.herald.as_ref().context("Herald only")?;
    let signin = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build()?;
    let res = signin
        .post(format!("{}/api/signin", h.base))
        .form(&[("username", "bench"), ("password", "bench-password")])
        .send()
        .await?;
    let cookie = res
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .context("a session cookie")?
        .to_string();
    let http = client(8);
    let url = Arc::new(format!("{}/", h.base));
    let cookie = Arc::new(cookie);
    Ok(load::run(n, 8, move |_| {
        let req = http.get(url.as_str()).header("cookie", cookie.as_str());
        async move {
            match req.send().await {
                Ok(r) if r.status().is_success() => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await)
}

/// Sizes in bytes of WebAssembly modules, raw and gzipped (level 9).
#[derive(Clone, Copy, Default)]
struct Size {
    raw: u64,
    gzipped: u64,
}

/// The release WebAssembly bundle.
struct WasmSizes {
    /// The module every page loads (`herald.wasm`).
    main: Size,
    /// The chunks the lazy routes load when first shown (`--split`), summed.
    chunks: Size,
    /// How many chunks.
    chunk_count: usize,
}

/// Measures the release WebAssembly bundle in the site's pkg directory.
fn wasm_size(pkg: &std::path::Path) -> anyhow::Result<WasmSizes> {
    let size = |path: &std::path::Path| -> anyhow::Result<Size> {
        let raw = std::fs::metadata(path)?.len();
        let out = std::process::Command::new("gzip").args(["-9", "-c"]).arg(path).output()?;
        Ok(Size { raw, gzipped: out.stdout.len() as u64 })
    };
    let files: Vec<_> = std::fs::read_dir(pkg)
        .with_context(|| format!("{} (build the release site first: ./x build)", pkg.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    let main = files
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "herald.wasm"))
        .context("no herald.wasm in the site's pkg directory")?;
    let mut sizes = WasmSizes { main: size(main)?, chunks: Size::default(), chunk_count: 0 };
    for chunk in files.iter().filter(|p| *p != main) {
        let Size { raw, gzipped } = size(chunk)?;
        sizes.chunks.raw += raw;
        sizes.chunks.gzipped += gzipped;
        sizes.chunk_count += 1;
    }
    Ok(sizes)
}

/// Runs everything and prints the report.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let mut systems = vec![System::herald(&o, "Herald (SQLite)", None).await?];
    let mut pg_database = None;
    if let Some(admin) = &o.postgres {
        let db = ScratchDatabase::create(admin, "api")?;
        systems.push(System::herald(&o, "Herald (PostgreSQL)", Some(&db.url)).await?);
        pg_database = Some(db);
    }
    if let Some(url) = &o.backstage {
        systems.push(System::backstage(&o, url).await?);
    }

    let mut table: Vec<Row> = Vec::new();
    let mut memory = Vec::new();
    for (k, s) in systems.iter().enumerate() {
        let (rows, mem) = measure(&o, s).await?;
        memory.push(mem);
        for (scenario, stats) in rows {
            match table.iter_mut().find(|r| r.scenario == scenario) {
                Some(row) => row.cells[k] = stats,
                None => {
                    let mut cells = vec![None; systems.len()];
                    cells[k] = stats;
                    table.push(Row { scenario, cells });
                }
            }
        }
    }
    let mut extra = Vec::new();
    for s in systems.iter().filter(|s| s.herald.is_some()) {
        extra.push((format!("6. publish → live event, {}", s.name), publish_to_event(s, 500).await?));
        extra.push((format!("7. server-rendered inbox page, {}", s.name), rendered_inbox(s, 1000).await?));
    }

    println!("## API under load: {}\n", systems.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" vs "));
    println!(
        "One client (this tool), {} concurrent requests; latencies are the client's, end to end, except \
         \"server p99\": the bound of the bucket of Herald's own request-duration histogram (`/metrics`) \
         that holds the 99th percentile of the scenario's requests, from routing to a built response.\n",
        o.concurrency
    );
    let mut head = "| scenario |".to_string();
    let mut rule = "|---|".to_string();
    for s in &systems {
        head.push_str(&format!(" {0} req/s | {0} p50 ms | {0} p99 ms |", s.name));
        rule.push_str("---:|---:|---:|");
        if s.herald.is_some() {
            head.push_str(&format!(" {} server p99 ms |", s.name));
            rule.push_str("---:|");
        }
    }
    let backstage = systems.iter().position(|s| s.herald.is_none());
    if backstage.is_some() {
        head.push_str(" Herald (SQLite) ÷ Backstage |");
        rule.push_str("---:|");
    }
    println!("{head}\n{rule}");
    for row in &table {
        let mut line = format!("| {} |", row.scenario);
        for (cell, system) in row.cells.iter().zip(&systems) {
            match cell {
                Some(st) if st.errors == 0 => line.push_str(&format!(
                    " {:.0} | {} | {} |",
                    st.throughput(),
                    ms(st.quantile(0.5)),
                    ms(st.quantile(0.99))
                )),
                Some(st) => line.push_str(&format!(
                    " {:.0} ({} errors) | {} | {} |",
                    st.throughput(),
                    st.errors,
                    ms(st.quantile(0.5)),
                    ms(st.quantile(0.99))
                )),
                None => line.push_str(" – | – | – |"),
            }
            if system.herald.is_some() {
                match cell.as_ref().and_then(|st| st.server_p99) {
                    Some(bound) => line.push_str(&format!(" ≤ {} |", ms(bound))),
                    None => line.push_str(" – |"),
                }
            }
        }
        if let Some(b) = backstage {
            let ratio = match (&row.cells[0], &row.cells[b]) {
                (Some(h), Some(bs)) if bs.throughput() > 0.0 => format!("{:.1}×", h.throughput() / bs.throughput()),
                _ => "–".into(),
            };
            line.push_str(&format!(" {ratio} |"));
        }
        println!("{line}");
    }
    println!("\n| latency | n | p50 ms | p90 ms | p99 ms |\n|---|---:|---:|---:|---:|");
    for (name, st) in &extra {
        println!(
            "| {name} | {} | {} | {} | {} |",
            st.ok,
            ms(st.quantile(0.5)),
            ms(st.quantile(0.9)),
            ms(st.quantile(0.99))
        );
    }
    println!("\n| server memory | idle MiB | peak during 1–4 MiB |\n|---|---:|---:|");
    for (s, (idle, peak)) in systems.iter().zip(&memory) {
        if s.pid.is_some() {
            println!("| {} | {:.1} | {:.1} |", s.name, *idle as f64 / 1024.0, *peak as f64 / 1024.0);
        }
    }
    match wasm_size(&o.pkg) {
        Ok(WasmSizes { main, chunks, chunk_count }) => println!(
            "\nRelease WebAssembly bundle: {:.0} KiB raw, {:.0} KiB gzipped, loaded by every page; \
             {chunk_count} lazy chunks loaded on demand, {:.0} KiB raw, {:.0} KiB gzipped in all.",
            main.raw as f64 / 1024.0,
            main.gzipped as f64 / 1024.0,
            chunks.raw as f64 / 1024.0,
            chunks.gzipped as f64 / 1024.0
        ),
        Err(e) => println!("\nRelease WebAssembly bundle: not measured ({e})."),
    }

    for s in systems {
        if let Some(h) = s.herald {
            h.stop().await;
        }
    }
    if let Some(db) = pg_database {
        db.drop_now();
    }
    Ok(())
}
