//! What was read from the database a moment ago, trusted for a second instead of read again.
//!
//! A publisher sends thousands of requests a second with one token, to users whose settings
//! rarely change; reading the token's row and the settings for each request were the two
//! database round trips of a publish besides its writing. [`Recent`] keeps such a reading for
//! [`TTL`]. A change made through this instance clears the cache at once
//! ([`Recent::clear`]); one made elsewhere (another instance sharing the database, the
//! `herald` command line) takes effect here within that time.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a reading is trusted without reading again.
pub const TTL: Duration = Duration::from_secs(1);

/// Values read a moment ago, by key; at most `MOST` of them (past it, stale ones are dropped,
/// and if that is not enough, all of them).
pub struct Recent<K, V, const MOST: usize> {
    inner: Mutex<Inner<K, V>>,
}

/// Only how much is kept: the keys of the token cache are hashes of secrets, which have no
/// place in a debug print of the state that holds them.
impl<K, V, const MOST: usize> std::fmt::Debug for Recent<K, V, MOST> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        f.debug_struct("Recent").field("values", &inner.values.len()).field("generation", &inner.generation).finish()
    }
}

struct Inner<K, V> {
    /// Each value with the moment its reading began.
    values: HashMap<K, (V, Instant)>,
    /// Counts [`Recent::clear`]s: a reading begun before a clear must not be remembered after
    /// it, or a request that read just before a change would bring the old value back.
    generation: u64,
}

impl<K, V, const MOST: usize> Default for Recent<K, V, MOST> {
    fn default() -> Self {
        Recent { inner: Mutex::new(Inner { values: HashMap::new(), generation: 0 }) }
    }
}

/// When, and in which generation of the cache, a reading began; see [`Recent::put`].
#[derive(Clone, Copy, Debug)]
struct Reading {
    at: Instant,
    generation: u64,
}

impl<K: Eq + Hash, V: Clone, const MOST: usize> Recent<K, V, MOST> {
    /// The value for `key`: the one read recently, else what `read` reads now, which is
    /// remembered unless it is `None`.
    pub async fn get_or_read<E>(
        &self,
        key: K,
        read: impl AsyncFnOnce() -> std::result::Result<Option<V>, E>,
    ) -> std::result::Result<Option<V>, E> {
        if let Some(value) = self.get(&key) {
            return Ok(Some(value));
        }
        let reading = self.reading();
        let value = read().await?;
        if let Some(value) = &value {
            self.put(key, value.clone(), reading);
        }
        Ok(value)
    }

    /// The value read for `key`, if that was recent.
    fn get(&self, key: &K) -> Option<V> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (value, at) = inner.values.get(key)?;
        (at.elapsed() < TTL).then(|| value.clone())
    }

    /// Marks the start of a reading; its time counts from here.
    fn reading(&self) -> Reading {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        Reading { at: Instant::now(), generation: inner.generation }
    }

    /// Remembers `value` for `key`, read by a reading begun at `reading`, unless the cache was
    /// cleared since.
    fn put(&self, key: K, value: V, reading: Reading) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.generation != reading.generation {
            return;
        }
        if inner.values.len() >= MOST {
            inner.values.retain(|_, (_, at)| at.elapsed() < TTL);
            if inner.values.len() >= MOST {
                inner.values.clear();
            }
        }
        inner.values.insert(key, (value, reading.at));
    }

    /// Forgets every value, and every reading still under way: after a change, everything
    /// is read again.
    pub fn clear(&self) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.values.clear();
        inner.generation += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cache = Recent<&'static str, u32, 2>;

    #[test]
    fn a_reading_begun_before_a_clear_is_not_remembered() {
        let cache = Cache::default();
        let reading = cache.reading();
        cache.clear();
        cache.put("k", 1, reading);
        assert_eq!(cache.get(&"k"), None);
        let reading = cache.reading();
        cache.put("k", 1, reading);
        assert_eq!(cache.get(&"k"), Some(1));
    }

    #[test]
    fn the_time_counts_from_the_reading() {
        let cache = Cache::default();
        cache.put("k", 1, Reading { at: Instant::now() - TTL, generation: 0 });
        assert_eq!(cache.get(&"k"), None, "read a TTL ago: already stale");
    }

    #[test]
    fn past_its_size_the_cache_starts_over() {
        let cache = Cache::default();
        for (k, v) in [("a", 1), ("b", 2), ("c", 3)] {
            let reading = cache.reading();
            cache.put(k, v, reading);
        }
        assert_eq!((cache.get(&"a"), cache.get(&"b"), cache.get(&"c")), (None, None, Some(3)));
    }
}
