//! Slow and stalled clients: headers that never finish (slow loris), idle keep-alive
//! connections, bodies trickled in, oversized heads. Each is cut off on its deadline while
//! everyone else is served.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{Backend, spawn_app_with};

/// Reads until the server closes the connection; returns what it sent, or `None` if it kept
/// the connection open for `wait`.
async fn closed_within(stream: &mut (impl AsyncRead + Unpin), wait: Duration) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&got).into_owned()),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_loris_clients_are_cut_off_and_others_are_served() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.http.header_read_timeout_secs = 1;
        s.http.body_read_timeout_secs = 1;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_string();

    // Many connections that send their headers a byte at a time and never finish.
    let mut lorises = Vec::new();
    for _ in 0..200 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n").await.unwrap();
        lorises.push(s);
    }
    let trickle = tokio::spawn(async move {
        for _ in 0..10 {
            for s in &mut lorises {
                let _ = s.write_all(b"X").await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        lorises
    });
    // Meanwhile everyone else is served.
    for _ in 0..20 {
        let r = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let mut lorises = trickle.await.unwrap();
    // Each loris was disconnected at its header deadline, though it kept sending.
    for s in &mut lorises {
        assert!(closed_within(s, Duration::from_secs(3)).await.is_some(), "a slow-loris connection stayed open");
    }

    // An idle keep-alive connection is closed after the same time.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: herald\r\n\r\n").await.unwrap();
    let answered = closed_within(&mut idle, Duration::from_secs(5)).await.expect("the idle connection is closed");
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    // A body trickled in slower than the deadline gets 408, however steadily it comes.
    let token = app.service_token("external:ci").await;
    let (mut answers, mut slow) = TcpStream::connect(&addr).await.unwrap().into_split();
    let head = format!(
        "POST /api/notifications/notifications HTTP/1.1\r\nHost: herald\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let writer = tokio::spawn(async move {
        for _ in 0..20 {
            if slow.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    });
    let answer = closed_within(&mut answers, Duration::from_secs(5)).await.unwrap_or_default();
    writer.abort();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("RequestTimeoutError"), "{answer}");

    // A head larger than the limit is refused, not buffered.
    let mut huge = TcpStream::connect(&addr).await.unwrap();
    let header = format!("GET /healthz HTTP/1.1\r\nHost: herald\r\nX-Big: {}\r\n\r\n", "a".repeat(200 * 1024));
    let _ = huge.write_all(header.as_bytes()).await;
    let answer = closed_within(&mut huge, Duration::from_secs(5)).await.unwrap_or_default();
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");

    let r = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(r.status(), 200, "the server is fine afterwards");
    app.cleanup().await;
}
