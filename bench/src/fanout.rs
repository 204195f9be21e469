//! Live fan-out: many concurrent SSE clients, one broadcast at a time.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};

use crate::server::{Herald, raise_fd_limit};

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
}

/// Opens one stream with a plain HTTP/1.0 request (no chunked framing, so the bytes are the
/// event stream itself) and reports, for each broadcast marker seen, when it arrived.
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
    let mut tail = Vec::new();
    let mut announced = false;
    loop {
        let n = match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        tail.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&tail).to_string();
        if !announced && text.contains("event: status") {
            announced = true;
            let _ = ready.send(());
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find("bench-broadcast-") {
            let digits: String = rest[at + 16..].chars().take_while(char::is_ascii_digit).collect();
            if rest[at + 16 + digits.len()..].is_empty() {
                break;
            }
            if let Ok(k) = digits.parse() {
                let _ = seen.send((k, Instant::now()));
            }
            rest = &rest[at + 16 + digits.len()..];
        }
        // Keep only what could be the start of a marker split across reads.
        let keep = tail.len().saturating_sub(64);
        tail.drain(..keep);
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

/// Runs the scenario and prints the table.
pub async fn run(o: Options) -> anyhow::Result<()> {
    let limit = raise_fd_limit();
    anyhow::ensure!(
        limit as usize > o.clients + 100,
        "the open-file limit ({limit}) is too low for {} clients",
        o.clients
    );
    let herald = Herald::start(&o.herald, &[("HERALD_STREAM__MAX_PER_USER", (o.clients + 10).to_string())]).await?;
    let service = herald.cli(&["token", "create", "--service", "bench:broadcaster"]).await?;
    let token = Arc::new(herald.cli(&["token", "create", "--user", "user:default/bench"]).await?);
    let addr = herald.base.trim_start_matches("http://").to_string();
    let idle_rss = herald.rss_kib();

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(o.ramp));
    let started = Instant::now();
    for _ in 0..o.clients {
        let permit = gate.clone().acquire_owned().await?;
        let (addr, token, seen, ready) = (addr.clone(), token.clone(), seen_tx.clone(), ready_tx.clone());
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
    let connected_rss = herald.rss_kib();

    let http = reqwest::Client::new();
    let mut rows = Vec::new();
    for k in 0..o.broadcasts {
        let body = serde_json::json!({
            "recipients": {"type": "broadcast"},
            "payload": {"title": format!("bench-broadcast-{k} "), "severity": "normal"}
        });
        let t0 = Instant::now();
        let res = http
            .post(format!("{}/api/notifications/notifications", herald.base))
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

    println!("## Live fan-out: {} SSE clients on one instance (SQLite)\n", o.clients);
    println!("Connected {connected} of {} clients in {:.1} s.\n", o.clients, ramp.as_secs_f64());
    println!("| broadcast | publish ack (ms) | received by | p50 (ms) | p99 (ms) | max (ms) |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for (k, acked, l) in &rows {
        println!(
            "| {k} | {} | {} | {} | {} | {} |",
            ms(*acked),
            l.len(),
            ms(percentile(l, 0.5)),
            ms(percentile(l, 0.99)),
            ms(l.last().copied().unwrap_or_default())
        );
    }
    let per_conn = (connected_rss.saturating_sub(idle_rss)) as f64 / connected.max(1) as f64;
    println!("\n| server memory | KiB |");
    println!("|---|---:|");
    println!("| idle (no streams) | {idle_rss} |");
    println!("| with {connected} idle streams | {connected_rss} |");
    println!("| per idle stream | {per_conn:.1} |");
    herald.stop().await;
    Ok(())
}
