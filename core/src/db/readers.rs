//! SQLite's readers: a pool that lends a connection and takes it back without talking to it.
//!
//! A SQLite connection in sqlx lives on a thread of its own; every statement is handed to that
//! thread and its rows handed back, two thread wake-ups. sqlx's general pool adds two more
//! round trips per use: it pings a connection when lending it (`test_before_acquire`) and
//! again, from a task it spawns, when taking it back (to flush what a cancelled query left
//! behind). For a network database that guards against dead sockets; for a file opened by
//! this process there is nothing to find, and on two cores those hand-offs were most of a
//! publish's CPU time (see docs/performance.md). This pool does neither: a lease is a permit
//! and a connection popped from a list, and giving it back is a push.
//!
//! What the ping on return flushed is already safe here: a query whose future is dropped
//! midway leaves its connection's thread to finish the statement it is on, and sqlx resets a
//! statement when its iteration ends, so the next borrower's command simply queues behind it
//! and finds no read transaction left open. A connection whose thread died is not given back.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, TryStreamExt};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteQueryResult, SqliteRow, SqliteStatement};
use sqlx::{Connection, Either, Execute, Executor, Sqlite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A pool of SQLite connections for statements that only read. Cheap to clone.
#[derive(Clone)]
pub struct Readers {
    inner: Arc<Inner>,
}

struct Inner {
    options: SqliteConnectOptions,
    /// Connections not lent out, most recently returned last (the warmest page cache).
    idle: Mutex<Vec<SqliteConnection>>,
    /// One permit per connection that may be open.
    permits: Arc<Semaphore>,
    size: u32,
    acquire_timeout: Duration,
    closed: AtomicBool,
}

/// A connection lent by [`Readers`]; it goes back when dropped.
struct Lease {
    conn: Option<SqliteConnection>,
    /// Set when the connection's thread is gone, so that it is not lent again.
    broken: bool,
    inner: Arc<Inner>,
    // Released after `conn` is back in the idle list (fields drop after `Drop::drop`).
    _permit: OwnedSemaphorePermit,
}

impl Readers {
    /// Opens one connection at once (so that a file that cannot be opened fails here) and
    /// up to `size` in all as readers are needed.
    pub async fn open(options: SqliteConnectOptions, size: u32, acquire_timeout: Duration) -> sqlx::Result<Readers> {
        let size = size.max(1);
        let first = SqliteConnection::connect_with(&options).await?;
        let inner = Inner {
            options,
            idle: Mutex::new(vec![first]),
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            acquire_timeout,
            closed: AtomicBool::new(false),
        };
        Ok(Readers { inner: Arc::new(inner) })
    }

    /// Whether [`Readers::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Refuses new leases, waits for the lent connections to come back, and closes every
    /// connection (each thread closes its SQLite handle before this returns).
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Every permit back means every lease was dropped (a lease after `closed` is refused
        // and gives its permit straight back).
        let all = self.inner.permits.acquire_many(self.inner.size).await;
        let idle = std::mem::take(&mut *self.inner.idle.lock().expect("readers lock"));
        for conn in idle {
            let _ = conn.close().await;
        }
        self.inner.permits.close();
        drop(all);
    }

    async fn lease(&self) -> sqlx::Result<Lease> {
        let permit = tokio::time::timeout(self.inner.acquire_timeout, self.inner.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        if self.is_closed() {
            return Err(sqlx::Error::PoolClosed);
        }
        let idle = self.inner.idle.lock().expect("readers lock").pop();
        let conn = match idle {
            Some(conn) => conn,
            None => SqliteConnection::connect_with(&self.inner.options).await?,
        };
        Ok(Lease { conn: Some(conn), broken: false, inner: self.inner.clone(), _permit: permit })
    }
}

impl Lease {
    fn conn(&mut self) -> &mut SqliteConnection {
        self.conn.as_mut().expect("a lease holds its connection until dropped")
    }

    /// Notes an error that means the connection cannot serve again.
    fn check<T>(&mut self, outcome: sqlx::Result<T>) -> sqlx::Result<T> {
        if let Err(sqlx::Error::WorkerCrashed | sqlx::Error::Io(_)) = &outcome {
            self.broken = true;
        }
        outcome
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.broken && !self.inner.closed.load(Ordering::Acquire) {
            self.inner.idle.lock().expect("readers lock").push(conn);
        }
        // Otherwise the connection is dropped, which ends its thread.
    }
}

impl fmt::Debug for Readers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readers")
            .field("size", &self.inner.size)
            .field("idle", &self.inner.idle.lock().map(|i| i.len()).unwrap_or(0))
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl<'p> Executor<'p> for &'_ Readers {
    type Database = Sqlite;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, sqlx::Result<Either<SqliteQueryResult, SqliteRow>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        // The rows are collected before they are handed on, as `fetch_all` (what Herald's
        // reads use) would anyway: a stream that borrowed the lease could not own it.
        let readers = self.clone();
        let rows = async move {
            let mut lease = readers.lease().await?;
            let rows = lease.conn().fetch_many(query).try_collect::<Vec<_>>().await;
            lease.check(rows)
        };
        Box::pin(stream::once(rows).map_ok(|rows| stream::iter(rows.into_iter().map(Ok))).try_flatten())
    }

    fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, sqlx::Result<Option<SqliteRow>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, Sqlite>,
    {
        let readers = self.clone();
        Box::pin(async move {
            let mut lease = readers.lease().await?;
            let row = lease.conn().fetch_optional(query).await;
            lease.check(row)
        })
    }

    fn prepare_with<'e, 'q: 'e>(
        self,
        sql: &'q str,
        parameters: &'e [sqlx::sqlite::SqliteTypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<SqliteStatement<'q>>>
    where
        'p: 'e,
    {
        let readers = self.clone();
        Box::pin(async move {
            let mut lease = readers.lease().await?;
            let statement = lease.conn().prepare_with(sql, parameters).await;
            lease.check(statement)
        })
    }

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, sqlx::Result<sqlx::Describe<Sqlite>>>
    where
        'p: 'e,
    {
        let readers = self.clone();
        Box::pin(async move {
            let mut lease = readers.lease().await?;
            let described = lease.conn().describe(sql).await;
            lease.check(described)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    async fn open(size: u32, timeout: Duration) -> (Readers, SqliteConnection, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("herald-readers-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let options = SqliteConnectOptions::from_str(&format!("sqlite:{}", dir.join("r.db").display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut writer = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER NOT NULL)").execute(&mut writer).await.unwrap();
        (Readers::open(options, size, timeout).await.unwrap(), writer, dir)
    }

    async fn rows(readers: &Readers) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t").fetch_one(readers).await.unwrap()
    }

    #[tokio::test]
    async fn lends_at_most_its_size_and_times_out_beyond() {
        let (readers, _writer, dir) = open(2, Duration::from_millis(100)).await;
        let first = readers.lease().await.unwrap();
        let second = readers.lease().await.unwrap();
        assert!(matches!(readers.lease().await.err(), Some(sqlx::Error::PoolTimedOut)));
        drop(first);
        assert_eq!(rows(&readers).await, 0, "a returned connection serves the next query");
        drop(second);
        assert_eq!(readers.inner.idle.lock().unwrap().len(), 2, "both connections went back");
        readers.close().await;
        assert!(readers.is_closed());
        assert!(matches!(readers.lease().await.err(), Some(sqlx::Error::PoolClosed)));
        assert!(readers.inner.idle.lock().unwrap().is_empty(), "closing closed every connection");
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A query dropped midway (a client gone, a deadline) must not leave its connection
    /// inside a read transaction: the next borrower would read an old snapshot.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_dropped_midway_leaves_no_old_snapshot() {
        let (readers, mut writer, dir) = open(1, Duration::from_secs(5)).await;
        let long = {
            let readers = readers.clone();
            tokio::spawn(async move {
                sqlx::query_scalar::<_, i64>(
                    "WITH RECURSIVE i(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM i WHERE x < 100000000)
                     SELECT x FROM i",
                )
                .fetch_all(&readers)
                .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        long.abort();
        assert!(long.await.unwrap_err().is_cancelled());
        sqlx::query("INSERT INTO t (v) VALUES (1)").execute(&mut writer).await.unwrap();
        assert_eq!(rows(&readers).await, 1, "the one reader sees the write made after the dropped query");
        readers.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
