//! Live fan-out: many concurrent SSE clients, one broadcast at a time, on SQLite and on
//! PostgreSQL, where several instances share the database and fan out together.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};

use crate::server::{Herald, ScratchDatabase, raise_fd_limit};

/// Options of `herald-bench sse`.
#[derive(Debug, clap::Args)]
pub struct Options {
    /// Concurrent SSE clients.
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Broadcasts to publish, one after the other.
    #[arg(long, default_value_t = 5)]
    broadcasts: usize,
    /// The herald binary to measure.
    #[arg(long, default_value = "target/release/herald")]
    herald: PathBuf,
    /// Clients connecting at once while ramping up.
    #[arg(long, default_value_t = 200)]
    ramp: usize,
    /// Also measure on PostgreSQL, with one instance and with `--instances` sharing the
    /// database: a server URL whose user may create databases.
    #[arg(long)]
    postgres: Option<String>,
    /// Instances sharing the PostgreSQL database in the last run, the clients spread evenly
    /// over them and each broadcast published to the first.
    #[arg(long, default_value_t = 2)]
    instances: usize,
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What one stream's bytes said, read by read: whether its status event has come, and the
/// broadcast markers (`bench-broadcast-<n>`), each once, even when a marker or its number is
/// split across reads. It works on bytes, without copying them into text: the benchmark's
/// 10,000 streams share the two cores with the server they measure.
#[derive(Default)]
struct Scanner {
    /// The bytes not yet scanned to the end: at most the last 64 of the last read, and never
    /// a marker already counted.
    tail: Vec<u8>,
}

impl Scanner {
    const MARKER: &[u8] = b"bench-broadcast-";

    /// Takes the bytes of one read; whether they (with what came before) hold the status
    /// event, and the numbers of the markers they complete.
    fn read(&mut self, bytes: &[u8]) -> (bool, Vec<usize>) {
        self.tail.extend_from_slice(bytes);
        let status = find(&self.tail, b"event: status").is_some();
        let mut numbers = Vec::new();
        let mut rest = self.tail.as_slice();
        while let Some(at) = find(rest, Self::MARKER) {
            let after = &rest[at + Self::MARKER.len()..];
            let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
            if digits == after.len() {
                // The number may go on in the next read.
                break;
            }
            if let Some(k) = std::str::from_utf8(&after[..digits]).ok().and_then(|d| d.parse().ok()) {
                numbers.push(k);
            }
            rest = &after[digits..];
        }
        let counted = self.tail.len() - rest.len();
        let keep = counted.max(self.tail.len().saturating_sub(64));
        self.tail.drain(..keep);
        (status, numbers)
    }
}

/// Opens one stream with a plain HTTP/1.0 request (no chunked framing, so the bytes are the
/// event stream itself) and reports when its status event came and, for each broadcast
/// marker seen, when it arrived.
async fn client(
    addr: String,
    token: Arc<String>,
    seen: mpsc::UnboundedSender<(usize, Instant)>,
    ready: mpsc::UnboundedSender<()>,
) {
    let Ok(mut sock) = TcpStream::connect(&addr).await else { return };
    let req = format!(
        "GET /api/notifications/stream HTTP/1.0\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
    );
    if sock.write_all(req.as_bytes()).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 4096];
    let mut scanner = Scanner::default();
    let mut announced = false;
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let (status, numbers) = scanner.read(&buf[..n]);
        if status && !announced {
            announced = true;
            let _ = ready.send(());
        }
        for k in numbers {
            let _ = seen.send((k, Instant::now()));
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Runs the scenario on SQLite, and on PostgreSQL with one instance and with several when
/// `--postgres` is given, and prints a table for each.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let limit = raise_fd_limit();
    anyhow::ensure!(
        limit as usize > o.clients + 100,
        "the open-file limit ({limit}) is too low for {} clients",
        o.clients
    );
    measure(&o, None, 1).await?.print(&o, "one instance (SQLite)");
    if let Some(admin) = &o.postgres {
        let mut counts = vec![1];
        if o.instances > 1 {
            counts.push(o.instances);
        }
        for n in counts {
            let db = ScratchDatabase::create(admin, &format!("sse{n}"))?;
            let report = measure(&o, Some(&db.url), n).await;
            db.drop_now();
            let title = match n {
                1 => "one instance (PostgreSQL)".to_string(),
                n => format!("{n} instances sharing one PostgreSQL, each broadcast published to the first"),
            };
            report?.print(&o, &title);
        }
    }
    Ok(())
}

/// What one run measured.
struct Report {
    connected: usize,
    ramp: Duration,
    /// Per broadcast: its number, how long its publish took to be acknowledged, and how long
    /// each client that received it took, sorted.
    rows: Vec<(usize, Duration, Vec<Duration>)>,
    instances: usize,
    /// The instances' resident memory in all, before any stream opened and with them all open.
    idle_rss: u64,
    connected_rss: u64,
}

impl Report {
    fn print(&self, o: &Options, title: &str) {
        let Report { connected, ramp, rows, instances, idle_rss, connected_rss } = self;
        println!("## Live fan-out: {} SSE clients, {title}\n", o.clients);
        println!("Connected {connected} of {} clients in {:.1} s.\n", o.clients, ramp.as_secs_f64());
        println!("| broadcast | publish ack (ms) | received by | p50 (ms) | p99 (ms) | max (ms) |");
        println!("|---:|---:|---:|---:|---:|---:|");
        for (k, acked, l) in rows {
            println!(
                "| {k} | {} | {} | {} | {} | {} |",
                ms(*acked),
                l.len(),
                ms(percentile(l, 0.5)),
                ms(percentile(l, 0.99)),
                ms(l.last().copied().unwrap_or_default())
            );
        }
        let per_conn = (connected_rss.saturating_sub(*idle_rss)) as f64 / (*connected).max(1) as f64;
        let of = if *instances > 1 { format!(", {instances} instances in all") } else { String::new() };
        println!("\n| server memory{of} | KiB |");
        println!("|---|---:|");
        println!("| idle (no streams) | {idle_rss} |");
        println!("| with {connected} idle streams | {connected_rss} |");
        println!("| per idle stream | {per_conn:.1} |\n");
    }
}

/// Starts `instances` Heralds on `database_url` (a fresh SQLite file when `None`), spreads the
/// clients over them, publishes the broadcasts to the first, and stops them.
async fn measure(o: &Options, database_url: Option<&str>, instances: usize) -> anyhow::Result<Report> {
    let env = [("HERALD_STREAM__MAX_PER_USER", (o.clients + 10).to_string())];
    let mut heralds = Vec::new();
    // One after the other: the first creates the schema.
    for _ in 0..instances {
        heralds.push(Herald::start_on(&o.herald, database_url, &env).await?);
    }
    let report = fan_out(o, &heralds).await;
    for herald in heralds {
        herald.stop().await;
    }
    report
}

async fn fan_out(o: &Options, heralds: &[Herald]) -> anyhow::Result<Report> {
    let first = &heralds[0];
    let service = first.cli(&["token", "create", "--service", "bench:broadcaster"]).await?;
    let token = Arc::new(first.cli(&["token", "create", "--user", "user:default/bench"]).await?);
    let addrs: Vec<String> = heralds.iter().map(|h| h.base.trim_start_matches("http://").to_string()).collect();
    let rss = || heralds.iter().map(Herald::rss_kib).sum::<u64>();
    let idle_rss = rss();

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(o.ramp));
    let started = Instant::now();
    for i in 0..o.clients {
        let permit = gate.clone().acquire_owned().await?;
        let (addr, token, seen, ready) =
            (addrs[i % addrs.len()].clone(), token.clone(), seen_tx.clone(), ready_tx.clone());
        let (signal_tx, mut signal_rx) = mpsc::unbounded_channel();
        tokio::spawn(client(addr, token, seen, signal_tx));
        tokio::spawn(async move {
            if signal_rx.recv().await.is_some() {
                let _ = ready.send(());
            }
            drop(permit);
        });
    }
    drop(ready_tx);
    let mut connected = 0;
    while connected < o.clients {
        match tokio::time::timeout(Duration::from_secs(30), ready_rx.recv()).await {
            Ok(Some(())) => connected += 1,
            _ => break,
        }
    }
    let ramp = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let connected_rss = rss();

    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    for k in 0..o.broadcasts {
        let body = serde_json::json!({
            "recipients": {"type": "broadcast"},
            "payload": {"title": format!("bench-broadcast-{k} "), "severity": "normal"}
        });
        let t0 = Instant::now();
        let res = http
            .post(format!("{}/api/notifications/notifications", first.base))
            .bearer_auth(&service)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(res.status().is_success(), "publish failed: {}", res.status());
        let acked = t0.elapsed();
        let mut latencies = Vec::with_capacity(connected);
        let deadline = Instant::now() + Duration::from_secs(30);
        while latencies.len() < connected {
            match tokio::time::timeout_at(deadline.into(), seen_rx.recv()).await {
                Ok(Some((got, at))) if got == k => latencies.push(at - t0),
                Ok(Some(_)) => {}
                _ => break,
            }
        }
        latencies.sort();
        rows.push((k, acked, latencies));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Report { connected, ramp, rows, instances: heralds.len(), idle_rss, connected_rss })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_marker_is_counted_once_however_the_reads_split_it() {
        let frame = |k: usize| {
            format!(
                "id: {k}\nevent: notification\ndata: {{\"payload\":{{\"title\":\"bench-broadcast-{k} \"}},\"x\":1}}\n\n"
            )
        };
        let stream = format!("retry: 2000\n\nid: 1\nevent: status\ndata: {{}}\n\n{}{}", frame(7), frame(12));
        // Every way of cutting the stream into two reads, and one byte a read.
        for cut in 0..=stream.len() {
            let mut scanner = Scanner::default();
            let (first, mut numbers) = scanner.read(&stream.as_bytes()[..cut]);
            let (second, more) = scanner.read(&stream.as_bytes()[cut..]);
            numbers.extend(more);
            assert_eq!(numbers, [7, 12], "cut at {cut}");
            assert!(first || second, "cut at {cut}");
        }
        let mut scanner = Scanner::default();
        let numbers: Vec<usize> = stream.bytes().flat_map(|b| scanner.read(&[b]).1).collect();
        assert_eq!(numbers, [7, 12]);
        // A marker near the end of one read is not counted again with the next.
        let mut scanner = Scanner::default();
        assert_eq!(scanner.read(b"bench-broadcast-3 \"}").1, [3]);
        assert_eq!(scanner.read(b"\n\n: heartbeat\n\n").1, Vec::<usize>::new());
    }
}
