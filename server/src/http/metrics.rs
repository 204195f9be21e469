//! Prometheus metrics at `/metrics`, and the middleware that measures every request.
//!
//! | metric | labels |
//! |---|---|
//! | `herald_http_requests_total` | method, route, status |
//! | `herald_http_request_duration_seconds` (histogram) | method, route |
//! | `herald_notifications_published_total` (publish requests) | origin, severity, recipients |
//! | `herald_notifications_stored_total` (new rows) | origin, severity |
//! | `herald_notifications_upserted_total` (scope updates) | origin, severity |
//! | `herald_sse_streams_open` (gauge) | |
//! | `herald_sse_events_sent_total` | kind |
//! | `herald_deliveries_total` | channel, outcome (delivered, retry, dead) |
//! | `herald_outbox_pending`, `herald_outbox_oldest_pending_seconds`, `herald_outbox_dead` (gauges) | channel |

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// The process's recorder (installed once; several instances in one test process share it).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Fine below 10 ms, where Herald's pages and status answer: a quantile read from a
            // histogram is only as precise as its buckets (the benchmarks read it, see
            // docs/performance.md).
            let buckets = [
                0.00025, 0.0005, 0.001, 0.0015, 0.002, 0.003, 0.004, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1,
                0.25, 0.5, 1.0, 2.5, 5.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                .expect("valid buckets");
            match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is installed (never in Herald itself): keep a detached one
                // so that /metrics still answers.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// How often the request-duration samples are folded into the histogram's buckets.
pub const UPKEEP: Duration = Duration::from_secs(5);

/// Folds the request-duration samples recorded since the last time into the histogram's
/// buckets, every `every`. The recorder keeps each sample it is given until then, and
/// otherwise only until `/metrics` is scraped: an instance that nobody scrapes would hold
/// about 16 bytes per request for as long as it runs.
pub async fn upkeep(every: Duration) {
    let handle = handle();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Metrics", content_type = "text/plain", body = String)))]
pub async fn render(axum::extract::State(state): axum::extract::State<crate::startup::AppState>) -> impl IntoResponse {
    outbox(&state.hub.db).await;
    ([("content-type", "text/plain; version=0.0.4")], handle().render())
}

/// Sets the outbox gauges: depth, oldest waiting delivery and dead ones, per channel.
pub async fn outbox(db: &herald_core::Db) {
    match herald_core::outbox::stats(db).await {
        Ok(stats) => {
            for channel in [herald_core::outbox::EMAIL, herald_core::outbox::SLACK, herald_core::outbox::WEBHOOK] {
                let s = stats.get(channel).cloned().unwrap_or_default();
                metrics::gauge!("herald_outbox_pending", "channel" => channel).set(s.pending as f64);
                metrics::gauge!("herald_outbox_oldest_pending_seconds", "channel" => channel)
                    .set(s.oldest_pending_ms as f64 / 1000.0);
                metrics::gauge!("herald_outbox_dead", "channel" => channel).set(s.dead as f64);
            }
        }
        Err(e) => tracing::warn!(error = %e, "reading the outbox for metrics failed"),
    }
}

/// Counts every request by route template (never the raw path: ids would explode the label
/// set) and records its latency.
pub async fn track(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("herald_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("herald_http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// Records what one publish request stored.
pub fn published(origin: &str, severity: &str, broadcast: bool, notifications: &[herald_model::Notification]) {
    let recipients = if broadcast { "broadcast" } else { "entity" };
    metrics::counter!("herald_notifications_published_total", "origin" => origin.to_string(), "severity" => severity.to_string(), "recipients" => recipients).increment(1);
    let upserted = notifications.iter().filter(|n| n.updated.is_some()).count() as u64;
    let stored = notifications.len() as u64 - upserted;
    metrics::counter!("herald_notifications_stored_total", "origin" => origin.to_string(), "severity" => severity.to_string()).increment(stored);
    metrics::counter!("herald_notifications_upserted_total", "origin" => origin.to_string(), "severity" => severity.to_string()).increment(upserted);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The process's resident memory, in bytes.
    fn resident() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux's /proc");
        let pages: u64 = statm.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("statm's resident pages");
        pages * 4096
    }

    /// Records `n` samples, pausing every 10,000 as a server's requests would leave the
    /// runtime to its other tasks.
    async fn record(histogram: &metrics::Histogram, n: usize) {
        for i in 0..n {
            histogram.record(0.001);
            if i % 10_000 == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    #[tokio::test]
    async fn an_instance_nobody_scrapes_does_not_keep_every_sample() {
        let _ = handle();
        tokio::spawn(upkeep(Duration::from_millis(5)));
        let histogram = metrics::histogram!("herald_test_upkeep_seconds");
        // The memory the recorder goes on reusing.
        record(&histogram, 200_000).await;
        let before = resident();
        // Kept until a scrape, these took 33 MB.
        record(&histogram, 2_000_000).await;
        let grown = resident().saturating_sub(before);
        assert!(grown < 4 << 20, "2,000,000 samples grew the process by {grown} bytes");
    }
}
