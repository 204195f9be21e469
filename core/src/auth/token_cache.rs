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
    verified: Mutex<Verified>,
}

#[derive(Debug, Default)]
struct Verified {
    /// Each caller with the moment its token's row was read.
    callers: HashMap<String, (Caller, Instant)>,
    /// Counts [`TokenCache::clear`]s: a row read before a clear must not be remembered after
    /// it, or a request that read a token just before its revocation would bring it back.
    generation: u64,
}

/// What to present to [`TokenCache::put`]: when, and in which generation, a row was read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reading {
    at: Instant,
    generation: u64,
}

impl TokenCache {
    /// The caller a token with this secret hash was verified as, if that was recent.
    pub(crate) fn get(&self, secret_hash: &str) -> Option<Caller> {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        let (caller, at) = verified.callers.get(secret_hash)?;
        (at.elapsed() < TOKEN_CACHE_TTL).then(|| caller.clone())
    }

    /// Marks the start of reading a token's row; the time counts from here.
    pub(crate) fn reading(&self) -> Reading {
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        Reading { at: Instant::now(), generation: verified.generation }
    }

    /// Remembers that a token with this secret hash was verified as `caller` by a reading
    /// begun at `reading`, unless the cache was cleared since.
    pub(crate) fn put(&self, secret_hash: String, caller: Caller, reading: Reading) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.generation != reading.generation {
            return;
        }
        if verified.callers.len() >= MOST_TOKENS {
            verified.callers.retain(|_, (_, at)| at.elapsed() < TOKEN_CACHE_TTL);
            if verified.callers.len() >= MOST_TOKENS {
                verified.callers.clear();
            }
        }
        verified.callers.insert(secret_hash, (caller, reading.at));
    }

    /// Forgets every token, and every reading still under way: after a revocation, every
    /// token is read again.
    pub fn clear(&self) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified.callers.clear();
        verified.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller() -> Caller {
        Caller::Service { token_id: "t".into(), origin: "external:ci".into() }
    }

    #[test]
    fn a_reading_begun_before_a_clear_is_not_remembered() {
        let cache = TokenCache::default();
        let reading = cache.reading();
        cache.clear();
        cache.put("h".into(), caller(), reading);
        assert_eq!(cache.get("h"), None);
        let reading = cache.reading();
        cache.put("h".into(), caller(), reading);
        assert_eq!(cache.get("h"), Some(caller()));
    }

    #[test]
    fn the_time_counts_from_the_reading() {
        let cache = TokenCache::default();
        let reading = Reading { at: Instant::now() - TOKEN_CACHE_TTL, generation: 0 };
        cache.put("h".into(), caller(), reading);
        assert_eq!(cache.get("h"), None, "read a TTL ago: already stale");
    }
}
