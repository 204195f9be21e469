//! The server's own latencies, read from Herald's `/metrics`: the request-duration histogram
//! before and after a scenario, so that the difference holds that scenario's requests only.
//!
//! The client's latencies include the time a request waits in the client and on the cores the
//! client shares with the server; the page and status targets are server-side, which
//! is what Herald's histogram records (from routing to a built response). A histogram gives a
//! quantile only as the bound of the bucket it falls in, so the report says "≤".

use std::time::Duration;

/// The metric every request's handling time goes to (see `server/src/http/metrics.rs`).
const METRIC: &str = "herald_http_request_duration_seconds_bucket{";

/// Cumulative bucket counts by upper bound (seconds), summed over every route but `/metrics`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram(Vec<(f64, u64)>);

impl Histogram {
    /// Parses Prometheus' text exposition format.
    pub fn parse(text: &str) -> Histogram {
        let mut buckets: Vec<(f64, u64)> = Vec::new();
        for line in text.lines().filter(|l| l.starts_with(METRIC)) {
            // The scrapes themselves are requests too; they are not the scenario's.
            if line.contains("route=\"/metrics\"") {
                continue;
            }
            let Some((labels, value)) = line.rsplit_once("} ") else { continue };
            let Some(le) = labels.split("le=\"").nth(1).and_then(|rest| rest.split('"').next()) else { continue };
            let bound = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
            let Ok(count) = value.trim().parse::<f64>() else { continue };
            if bound.is_nan() {
                continue;
            }
            match buckets.iter_mut().find(|(b, _)| *b == bound) {
                Some((_, c)) => *c += count as u64,
                None => buckets.push((bound, count as u64)),
            }
        }
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Histogram(buckets)
    }

    /// What was recorded after `earlier`.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |bound: f64| earlier.0.iter().find(|(b, _)| *b == bound).map_or(0, |(_, c)| *c);
        Histogram(self.0.iter().map(|&(b, c)| (b, c.saturating_sub(before(b)))).collect())
    }

    /// The upper bound of the bucket holding quantile `q` (0–1), or `None` when nothing was
    /// recorded or the quantile lies beyond the largest finite bucket.
    pub fn quantile_bound(&self, q: f64) -> Option<Duration> {
        let total = self.0.last()?.1;
        if total == 0 {
            return None;
        }
        let rank = (total as f64 * q).ceil().max(1.0) as u64;
        let (bound, _) = self.0.iter().find(|(_, c)| *c >= rank)?;
        bound.is_finite().then(|| Duration::from_secs_f64(*bound))
    }
}

/// Reads Herald's histogram at `base` (e.g. `http://127.0.0.1:3000`).
pub async fn scrape(http: &reqwest::Client, base: &str) -> Option<Histogram> {
    let text = http.get(format!("{base}/metrics")).send().await.ok()?.text().await.ok()?;
    Some(Histogram::parse(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(fast: u64, slow: u64) -> String {
        let route = "method=\"GET\",route=\"/api/notifications/notifications\"";
        format!(
            "# TYPE herald_http_request_duration_seconds histogram\n\
             herald_http_request_duration_seconds_bucket{{{route},le=\"0.001\"}} {fast}\n\
             herald_http_request_duration_seconds_bucket{{{route},le=\"0.005\"}} {}\n\
             herald_http_request_duration_seconds_bucket{{{route},le=\"+Inf\"}} {}\n\
             herald_http_request_duration_seconds_bucket{{method=\"GET\",route=\"/metrics\",le=\"0.001\"}} 7\n\
             herald_http_request_duration_seconds_bucket{{method=\"GET\",route=\"/metrics\",le=\"0.005\"}} 7\n\
             herald_http_request_duration_seconds_bucket{{method=\"GET\",route=\"/metrics\",le=\"+Inf\"}} 7\n\
             herald_http_request_duration_seconds_sum{{{route}}} 0.5\n",
            fast + slow,
            fast + slow
        )
    }

    #[test]
    fn a_quantile_is_the_bound_of_its_bucket_among_the_requests_of_the_window() {
        let before = Histogram::parse(&exposition(10, 0));
        let after = Histogram::parse(&exposition(108, 2));
        let window = after.since(&before);
        assert_eq!(window, Histogram(vec![(0.001, 98), (0.005, 100), (f64::INFINITY, 100)]));
        assert_eq!(window.quantile_bound(0.5), Some(Duration::from_millis(1)));
        assert_eq!(window.quantile_bound(0.98), Some(Duration::from_millis(1)));
        assert_eq!(window.quantile_bound(0.99), Some(Duration::from_millis(5)));
        assert_eq!(Histogram::default().quantile_bound(0.99), None);
    }

    #[test]
    fn a_quantile_beyond_the_finite_buckets_has_no_bound() {
        let text = "herald_http_request_duration_seconds_bucket{route=\"/x\",le=\"0.001\"} 1\n\
                    herald_http_request_duration_seconds_bucket{route=\"/x\",le=\"+Inf\"} 10\n";
        assert_eq!(Histogram::parse(text).quantile_bound(0.99), None);
    }
}
