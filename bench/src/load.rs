//! A closed-loop load generator: `concurrency` workers issue `n` requests in all, each
//! starting its next as soon as the previous answers, and every latency is kept.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What one scenario measured.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Requests answered with success.
    pub ok: usize,
    /// Requests that failed (transport error or non-2xx).
    pub errors: usize,
    pub elapsed: Duration,
    /// The server's own p99, as the upper bound of its histogram bucket, when the server
    /// exposes one (Herald's `/metrics`; see `histogram`).
    pub server_p99: Option<Duration>,
    /// Sorted latencies of all requests.
    latencies: Vec<Duration>,
}

impl Stats {
    /// Requests per second.
    pub fn throughput(&self) -> f64 {
        (self.ok + self.errors) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q` (0–1).
    pub fn quantile(&self, q: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        self.latencies[((self.latencies.len() - 1) as f64 * q).round() as usize]
    }

    /// Builds stats from latencies measured one at a time.
    pub fn from_latencies(mut latencies: Vec<Duration>, elapsed: Duration) -> Stats {
        latencies.sort();
        Stats { ok: latencies.len(), errors: 0, elapsed, server_p99: None, latencies }
    }
}

/// Runs `request(i)` for i in 0..n on `concurrency` workers; `request` resolves to whether the
/// answer was a success.
pub async fn run<F, Fut>(n: usize, concurrency: usize, request: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    run_for(n, None, concurrency, request).await
}

/// Like [`run`], but stops starting requests after `budget` (a slow system then answers
/// fewer than `n`; its rate is still measured).
pub async fn run_for<F, Fut>(n: usize, budget: Option<Duration>, concurrency: usize, request: F) -> Stats
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = budget.map(|b| started + b);
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (request, next) = (request.clone(), next.clone());
            tokio::spawn(async move {
                let mut mine = Vec::with_capacity(n / concurrency.max(1) + 1);
                let mut errors = 0;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n || deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    let t0 = Instant::now();
                    if !request(i).await {
                        errors += 1;
                    }
                    mine.push(t0.elapsed());
                }
                (mine, errors)
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(n);
    let mut errors = 0;
    for w in workers {
        if let Ok((mine, e)) = w.await {
            latencies.extend(mine);
            errors += e;
        }
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Stats { ok: latencies.len() - errors, errors, elapsed, server_p99: None, latencies }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}
