//! Serving connections: hyper under the router, with the timeouts and sizes that keep slow or
//! stalled clients from tying the server up, and a graceful shutdown.
//!
//! `axum::serve` sets no timer, so a client could hold a connection forever by never
//! finishing its headers (slow loris) or by idling between requests. Here every connection
//! has a header-read deadline that also bounds the idle time between keep-alive requests, and
//! a cap on the request head's size.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::config::HttpSettings;

mod live;

/// Accepts connections on `listener` and serves `router` on each until `shutdown` resolves;
/// then stops accepting, asks every connection to finish its current request, and returns
/// once all have closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    settings: &HttpSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_timeout = Duration::from_secs(settings.header_read_timeout_secs);
    let max_buf = settings.max_header_bytes;
    // Every connection holds a receiver: `closed()` on the sender resolves when all are gone.
    let (stop, stopping) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Out of file descriptors or similar: the error is the listener's, not
                    // fatal; back off so the loop does not spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let is_stream = tokio::select! {
                decided = live::is_stream_request(&stream, header_timeout) => decided,
                _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => None,
            };
            match is_stream {
                // Nothing arrived in time, or the client left: as hyper's header timeout.
                None => return,
                Some(true) => {
                    // The stream ends itself on shutdown (see `http::stream`); holding
                    // `stopping` makes the shutdown wait for it.
                    live::serve(stream, remote, router, header_timeout, max_buf).await;
                    drop(stopping);
                    return;
                }
                Some(false) => {}
            }
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(remote));
                router.clone().oneshot(req)
            });
            // HTTP/1.1 only: browsers reach Herald through HTTP/1.1 or a proxy that speaks
            // HTTP/2 to them, and each protocol served is one more to harden.
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new()).header_read_timeout(header_timeout).max_buf_size(max_buf);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => log_end(result, remote),
                _ = async { stopping.wait_for(|s| *s).await.map(|_| ()) } => {
                    conn.as_mut().graceful_shutdown();
                    log_end(conn.await, remote);
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    drop(stopping);
    stop.closed().await;
    Ok(())
}

fn log_end(result: Result<(), hyper::Error>, remote: SocketAddr) {
    if let Err(e) = result {
        // Timeouts, resets and malformed requests end here; they are the client's business.
        tracing::debug!(error = %e, %remote, "connection ended with an error");
    }
}
