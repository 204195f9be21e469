//! The readers: a pool that lends a connection and takes it back without talking to it.
//!
//! sqlx's general pool adds two round trips to every statement: it pings a connection when
//! lending it (`test_before_acquire`) and again, from a task it spawns, when taking it back
//! (to flush what a cancelled query left behind). This pool does neither: a lease is a permit
//! and a connection popped from a list, and giving it back is a push.
//!
//! - **SQLite.** A connection in sqlx lives on a thread of its own; every statement is handed
//!   to that thread and its rows handed back, two thread wake-ups. The pings doubled that, and
//!   for a file opened by this process there is nothing for them to find; on two cores those
//!   hand-offs were most of a publish's CPU time (see docs/performance.md).
//! - **PostgreSQL.** Each ping is a round trip to the server and, on a busy machine, a wake-up
//!   of the server's process and of Herald's. A connection lent again within
//!   [`Readers::open`]'s `trust_idle` of coming back cannot have found its socket dead in the
//!   meantime, so only one idle longer is pinged first, as HikariCP does with its
//!   `aliveBypassWindowMs`.
//!
//! What the ping on return flushed is already safe here, as these connections only read and
//! never hold a transaction. On SQLite, a query whose future is dropped midway leaves its
//! connection's thread to finish the statement it is on, and sqlx resets a statement when its
//! iteration ends, so the next borrower's command queues behind it and finds no read
//! transaction left open. On PostgreSQL, sqlx counts the replies a connection still owes and
//! reads them before its next command. A connection whose thread died or whose socket failed
//! is not given back.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::stream::{self, BoxStream, TryStreamExt};
use sqlx::{Connection, Database, Describe, Either, Execute, Executor};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Statements run on each new connection before it is first lent, such as a `SET`.
pub type Setup<C> = for<'c> fn(&'c mut C) -> BoxFuture<'c, sqlx::Result<()>>;

/// A pool of connections for statements that only read. Cheap to clone.
pub struct Readers<C: Connection> {
    inner: Arc<Inner<C>>,
}

struct Inner<C: Connection> {
    options: C::Options,
    /// Connections not lent out, with when each came back; most recently returned last (the
    /// warmest cache).
    idle: Mutex<Vec<(C, Instant)>>,
    /// One permit per connection that may be open.
    permits: Arc<Semaphore>,
    size: u32,
    acquire_timeout: Duration,
    /// How long a connection may sit idle and be lent without a ping; `None`: never pinged.
    trust_idle: Option<Duration>,
    setup: Option<Setup<C>>,
    closed: AtomicBool,
}

/// A connection lent by [`Readers`]; it goes back when dropped.
struct Lease<C: Connection> {
    conn: Option<C>,
    /// Set when the connection cannot serve again, so that it is not lent again.
    broken: bool,
    inner: Arc<Inner<C>>,
    // Released after `conn` is back in the idle list (fields drop after `Drop::drop`).
    _permit: OwnedSemaphorePermit,
}

impl<C: Connection> Clone for Readers<C> {
    fn clone(&self) -> Self {
        Readers { inner: self.inner.clone() }
    }
}

impl<C: Connection> Readers<C> {
    /// Opens one connection at once (so that a database that cannot be reached fails here)
    /// and up to `size` in all as readers are needed, each made ready by `setup`. A
    /// connection idle longer than `trust_idle` is pinged before it is lent again; `None`
    /// never pings.
    pub async fn open(
        options: C::Options,
        size: u32,
        acquire_timeout: Duration,
        trust_idle: Option<Duration>,
        setup: Option<Setup<C>>,
    ) -> sqlx::Result<Readers<C>> {
        let size = size.max(1);
        let first = connect(&options, setup).await?;
        let inner = Inner {
            options,
            idle: Mutex::new(vec![(first, Instant::now())]),
            permits: Arc::new(Semaphore::new(size as usize)),
            size,
            acquire_timeout,
            trust_idle,
            setup,
            closed: AtomicBool::new(false),
        };
        Ok(Readers { inner: Arc::new(inner) })
    }

    /// Whether [`Readers::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::Acquire)
    }

    /// Refuses new leases, waits for the lent connections to come back, and closes every
    /// connection (each SQLite thread closes its handle before this returns).
    pub async fn close(&self) {
        if self.inner.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        // Every permit back means every lease was dropped (a lease after `closed` is refused
        // and gives its permit straight back).
        let all = self.inner.permits.acquire_many(self.inner.size).await;
        let idle = std::mem::take(&mut *self.inner.idle.lock().expect("readers lock"));
        for (conn, _) in idle {
            let _ = conn.close().await;
        }
        self.inner.permits.close();
        drop(all);
    }

    /// A permit and a connection, within the acquire timeout: waiting for a permit, opening a
    /// connection and pinging an idle one all count, so that a server that stopped answering
    /// fails the request in time instead of holding it for as long as TCP waits.
    async fn lease(&self) -> sqlx::Result<Lease<C>> {
        tokio::time::timeout(self.inner.acquire_timeout, self.lease_untimed())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
    }

    async fn lease_untimed(&self) -> sqlx::Result<Lease<C>> {
        let permit = self.inner.permits.clone().acquire_owned().await.map_err(|_| sqlx::Error::PoolClosed)?;
        if self.is_closed() {
            return Err(sqlx::Error::PoolClosed);
        }
        let conn = loop {
            let idle = self.inner.idle.lock().expect("readers lock").pop();
            let Some((mut conn, since)) = idle else { break connect(&self.inner.options, self.inner.setup).await? };
            match self.inner.trust_idle {
                Some(trusted) if since.elapsed() >= trusted => {
                    // One that fails its ping is dropped, and the next idle one tried.
                    if conn.ping().await.is_ok() {
                        break conn;
                    }
                    tracing::info!("a reader's connection failed its ping and was closed");
                }
                _ => break conn,
            }
        };
        Ok(Lease { conn: Some(conn), broken: false, inner: self.inner.clone(), _permit: permit })
    }
}

/// A new connection, made ready by `setup`.
async fn connect<C: Connection>(options: &C::Options, setup: Option<Setup<C>>) -> sqlx::Result<C> {
    let mut conn = C::connect_with(options).await?;
    if let Some(setup) = setup {
        setup(&mut conn).await?;
    }
    Ok(conn)
}

impl<C: Connection> Lease<C> {
    fn conn(&mut self) -> &mut C {
        self.conn.as_mut().expect("a lease holds its connection until dropped")
    }

    /// Notes an error that means the connection cannot serve again.
    fn check<T>(&mut self, outcome: sqlx::Result<T>) -> sqlx::Result<T> {
        if let Err(sqlx::Error::WorkerCrashed | sqlx::Error::Io(_) | sqlx::Error::Protocol(_)) = &outcome {
            self.broken = true;
        }
        outcome
    }
}

impl<C: Connection> Drop for Lease<C> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if !self.broken && !self.inner.closed.load(Ordering::Acquire) {
            self.inner.idle.lock().expect("readers lock").push((conn, Instant::now()));
        }
        // Otherwise the connection is dropped, which ends its thread or closes its socket.
    }
}

impl<C: Connection> fmt::Debug for Readers<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Readers")
            .field("size", &self.inner.size)
            .field("idle", &self.inner.idle.lock().map(|i| i.len()).unwrap_or(0))
            .field("closed", &self.is_closed())
            .finish()
    }
}

type Step<DB> = Either<<DB as Database>::QueryResult, <DB as Database>::Row>;

impl<'p, C> Executor<'p> for &'_ Readers<C>
where
    // Connections are owned, never borrowed.
    C: Connection + 'static,
    for<'c> &'c mut C: Executor<'c, Database = C::Database>,
{
    type Database = C::Database;

    fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, sqlx::Result<Step<C::Database>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, C::Database>,
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

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> BoxFuture<'e, sqlx::Result<Option<<C::Database as Database>::Row>>>
    where
        'p: 'e,
        E: 'q + Execute<'q, C::Database>,
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
        parameters: &'e [<C::Database as Database>::TypeInfo],
    ) -> BoxFuture<'e, sqlx::Result<<C::Database as Database>::Statement<'q>>>
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

    fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, sqlx::Result<Describe<C::Database>>>
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

    use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};

    use super::*;

    type Readers = super::Readers<SqliteConnection>;

    async fn open(size: u32, timeout: Duration) -> (Readers, SqliteConnection, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("herald-readers-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let options = SqliteConnectOptions::from_str(&format!("sqlite:{}", dir.join("r.db").display()))
            .unwrap()
            .create_if_missing(true)
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut writer = SqliteConnection::connect_with(&options).await.unwrap();
        sqlx::query("CREATE TABLE t (v INTEGER NOT NULL)").execute(&mut writer).await.unwrap();
        (Readers::open(options, size, timeout, None, None).await.unwrap(), writer, dir)
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

    async fn postgres(size: u32, trust_idle: Duration) -> super::Readers<sqlx::PgConnection> {
        let options: sqlx::postgres::PgConnectOptions = crate::db::postgres_admin_url().parse().unwrap();
        super::Readers::open(options, size, Duration::from_secs(5), Some(trust_idle), None).await.unwrap()
    }

    fn named(conn: &mut sqlx::PgConnection) -> BoxFuture<'_, sqlx::Result<()>> {
        Box::pin(async move {
            sqlx::query("SET application_name = 'herald-reader'").execute(conn).await?;
            Ok(())
        })
    }

    /// The setup runs on every connection, the first one and those opened as readers are
    /// needed (as `SET plan_cache_mode` does for `Db::reader_planned_once`).
    #[tokio::test]
    async fn every_connection_is_set_up_before_it_is_lent() {
        let options: sqlx::postgres::PgConnectOptions = crate::db::postgres_admin_url().parse().unwrap();
        let readers = super::Readers::open(options, 2, Duration::from_secs(5), None, Some(named)).await.unwrap();
        let name = "SELECT current_setting('application_name')";
        let mut first = readers.lease().await.unwrap();
        let mut second = readers.lease().await.unwrap();
        for lease in [&mut first, &mut second] {
            let set: String = sqlx::query_scalar(name).fetch_one(lease.conn()).await.unwrap();
            assert_eq!(set, "herald-reader");
        }
        drop((first, second));
        readers.close().await;
    }

    async fn backend(readers: &super::Readers<sqlx::PgConnection>) -> i32 {
        sqlx::query_scalar("SELECT pg_backend_pid()").fetch_one(readers).await.unwrap()
    }

    /// A server restart or a dropped socket kills idle connections; the first query after it
    /// must not fail for that.
    #[tokio::test]
    async fn postgres_a_connection_that_died_while_idle_is_replaced_before_it_is_lent() {
        let readers = postgres(1, Duration::from_millis(20)).await;
        let first = backend(&readers).await;
        let mut admin = crate::db::postgres_admin().await;
        let ended: bool =
            sqlx::query_scalar("SELECT pg_terminate_backend($1)").bind(first).fetch_one(&mut admin).await.unwrap();
        assert!(ended);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let second = backend(&readers).await;
        assert_ne!(first, second, "the dead connection was pinged, closed and replaced");
        readers.close().await;
    }

    /// Lent again at once, a connection is not pinged: the same server process serves both.
    #[tokio::test]
    async fn postgres_a_connection_back_moments_ago_is_lent_without_a_ping() {
        let readers = postgres(1, Duration::from_secs(60)).await;
        let first = backend(&readers).await;
        assert_eq!(backend(&readers).await, first);
        readers.close().await;
    }

    /// A query dropped midway leaves its reply on the connection; the next borrower must get
    /// its own answer, not the rest of the dropped one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_query_dropped_midway_leaves_nothing_for_the_next_borrower() {
        let readers = postgres(1, Duration::from_secs(60)).await;
        let slow = {
            let readers = readers.clone();
            tokio::spawn(async move {
                sqlx::query_scalar::<_, i32>("SELECT 1 FROM pg_sleep(0.3)").fetch_all(&readers).await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        slow.abort();
        assert!(slow.await.unwrap_err().is_cancelled());
        let answer: i32 = sqlx::query_scalar("SELECT 2").fetch_one(&readers).await.unwrap();
        assert_eq!(answer, 2);
        readers.close().await;
    }

    /// Forwards connections on a local port to PostgreSQL until cut; after that it takes what
    /// either side sends and passes nothing on, as a frozen host or a pulled cable would.
    async fn cuttable_proxy() -> (sqlx::postgres::PgConnectOptions, Arc<AtomicBool>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let upstream: sqlx::postgres::PgConnectOptions = crate::db::postgres_admin_url().parse().unwrap();
        let target = format!("{}:{}", upstream.get_host(), upstream.get_port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let pipe = |mut from: tokio::net::tcp::OwnedReadHalf,
                    mut to: tokio::net::tcp::OwnedWriteHalf,
                    cut: Arc<AtomicBool>| async move {
            let mut buf = vec![0; 8192];
            while let Ok(n @ 1..) = from.read(&mut buf).await {
                if !cut.load(Ordering::Acquire) && to.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        };
        let proxy_cut = cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let server = tokio::net::TcpStream::connect(&target).await.unwrap();
                let ((client_in, client_out), (server_in, server_out)) = (client.into_split(), server.into_split());
                tokio::spawn(pipe(client_in, server_out, proxy_cut.clone()));
                tokio::spawn(pipe(server_in, client_out, proxy_cut.clone()));
            }
        });
        (upstream.host("127.0.0.1").port(port), cut)
    }

    /// A server that stops answering must fail a query within the acquire timeout, the ping
    /// of an idle connection included, not hold it for as long as TCP waits.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_a_server_that_stops_answering_fails_a_lease_within_the_acquire_timeout() {
        let (options, cut) = cuttable_proxy().await;
        let timeout = Duration::from_millis(300);
        let readers =
            super::Readers::<sqlx::PgConnection>::open(options, 1, timeout, Some(Duration::ZERO), None).await.unwrap();
        backend(&readers).await;
        cut.store(true, Ordering::Release);
        let query = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&readers);
        let outcome = tokio::time::timeout(Duration::from_secs(10), query).await.expect("the lease gave up in time");
        assert!(matches!(outcome, Err(sqlx::Error::PoolTimedOut)), "{outcome:?}");
    }
}
