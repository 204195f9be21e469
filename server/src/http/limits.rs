//! Rate limits: a token bucket per credential (governor), so one noisy publisher or script
//! slows only itself. Publishing with a service token draws from the publish buckets;
//! everything else under `/api/` from the user buckets (keyed by personal token, session
//! cookie, or the client address without credentials). Over the limit: 429 with
//! `Retry-After` and `RateLimit-*` headers; within it, `RateLimit-Limit` and
//! `RateLimit-Remaining` on every answer.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::num::NonZeroU32;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use super::error::ApiError;
use crate::config::LimitSettings;
use crate::startup::AppState;

type Keyed = RateLimiter<u64, DefaultKeyedStateStore<u64>, DefaultClock, StateInformationMiddleware>;

/// One bucket family and its size.
struct Bucket {
    limiter: Keyed,
    burst: u32,
}

impl Bucket {
    fn new(per_minute: u32, burst: u32) -> Option<Bucket> {
        let per_minute = NonZeroU32::new(per_minute)?;
        let burst_nz = NonZeroU32::new(burst.max(1))?;
        let quota = Quota::per_minute(per_minute).allow_burst(burst_nz);
        Some(Bucket { limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(), burst })
    }
}

/// The instance's rate limiters.
pub struct Limits {
    publish: Option<Bucket>,
    user: Option<Bucket>,
}

impl std::fmt::Debug for Limits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limits").finish_non_exhaustive()
    }
}

impl Limits {
    /// Limiters for the configured quotas (a zero rate turns that family off).
    pub fn new(s: &LimitSettings) -> Limits {
        Limits {
            publish: Bucket::new(s.publish_per_minute, s.publish_burst),
            user: Bucket::new(s.user_per_minute, s.user_burst),
        }
    }

    /// Forgets buckets that are full again, so memory follows the active callers.
    pub fn forget_idle(&self) {
        for b in [&self.publish, &self.user].into_iter().flatten() {
            b.limiter.retain_recent();
            b.limiter.shrink_to_fit();
        }
    }
}

fn key(parts: &[&[u8]]) -> u64 {
    let mut h = DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// Which bucket a request draws from, and its key.
fn classify<'a>(
    limits: &'a Limits,
    headers: &HeaderMap,
    publishing: bool,
    peer: Option<SocketAddr>,
) -> Option<(&'a Bucket, u64)> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    if let Some(token) = bearer {
        if token.starts_with(herald_core::auth::SERVICE_TOKEN_PREFIX) && publishing {
            return Some((limits.publish.as_ref()?, key(&[b"service", token.as_bytes()])));
        }
        return Some((limits.user.as_ref()?, key(&[b"token", token.as_bytes()])));
    }
    let cookie = headers.get(header::COOKIE).map(|v| v.as_bytes()).unwrap_or_default();
    if !cookie.is_empty() {
        return Some((limits.user.as_ref()?, key(&[b"cookie", cookie])));
    }
    let address = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    Some((limits.user.as_ref()?, key(&[b"address", address.as_bytes()])))
}

/// The middleware.
pub async fn limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let publishing = req.method() == axum::http::Method::POST
        && matches!(
            req.uri().path(),
            "/notifications" | "/" | "/api/notifications/notifications" | "/api/notifications"
        );
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let Some((bucket, k)) = classify(&state.limits, req.headers(), publishing, peer) else {
        return next.run(req).await;
    };
    match bucket.limiter.check_key(&k) {
        Ok(snapshot) => {
            let mut response = next.run(req).await;
            let h = response.headers_mut();
            h.insert("ratelimit-limit", HeaderValue::from(bucket.burst));
            h.insert("ratelimit-remaining", HeaderValue::from(snapshot.remaining_burst_capacity()));
            response
        }
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("rate limit exceeded: at most {} requests in a burst; retry in {secs} s", bucket.burst),
            )
            .into_response();
            let h = response.headers_mut();
            h.insert(header::RETRY_AFTER, HeaderValue::from(secs));
            h.insert("ratelimit-limit", HeaderValue::from(bucket.burst));
            h.insert("ratelimit-remaining", HeaderValue::from(0u32));
            h.insert("ratelimit-reset", HeaderValue::from(secs));
            response
        }
    }
}
