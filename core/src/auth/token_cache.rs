//! Bearer tokens verified a moment ago, so that a busy client's every request is not a
//! database read.
//!
//! A publisher sends thousands of requests a second with one token; reading the token's row
//! for each was one of the two database round trips of a publish. A verified token is
//! trusted for [`TOKEN_CACHE_TTL`] before it is read again. A revocation through this
//! instance clears the cache at once; one made elsewhere (another instance sharing the
//! database, or `herald tokens revoke`) takes effect here within that time. Unknown and
//! revoked tokens are never cached: each such request is read.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Caller;

/// How long a verified token is trusted without reading it again.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(1);

/// Most tokens remembered; past it, expired ones are dropped, and if that is not enough,
/// all of them.
const MOST_TOKENS: usize = 10_000;

/// Callers by the hash of their token's secret.
#[derive(Debug, Default)]
pub struct TokenCache {
    verified: Mutex<HashMap<String, (Caller, Instant)>>,
}

impl TokenCache {
    /// The caller a token with this secret hash was verified as, if that was recent.
    pub(crate) fn get(&self, secret_hash: &str) -> Option<Caller> {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified.get(secret_hash).filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL).map(|(caller, _)| caller.clone())
    }

    /// Remembers that a token with this secret hash was just verified as `caller`.
    pub(crate) fn put(&self, secret_hash: String, caller: Caller) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() >= MOST_TOKENS {
            verified.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
            if verified.len() >= MOST_TOKENS {
                verified.clear();
            }
        }
        verified.insert(secret_hash, (caller, Instant::now()));
    }

    /// Forgets every token: after a revocation, every token is read again.
    pub fn clear(&self) {
        self.verified.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}
