//! Connection pools for SQLite and PostgreSQL, migrations, and the small amount of glue that
//! lets every query in Herald be written once for both.
//!
//! Queries use `$1`-style placeholders, which both drivers accept, and store times as integer
//! milliseconds since the epoch and ids as text, which both handle natively. The
//! [`with_pool!`](crate::with_pool) and [`with_tx!`](crate::with_tx) macros expand one query
//! expression for each driver, so there is one SQL text and one code path per operation.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::sync::Arc;

use sqlx::{Connection, PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use tokio::sync::Notify;

use crate::group_commit::Committer;
use crate::{Error, Result};

mod deferred;
mod readers;

pub(crate) use deferred::{EventRow, NotificationRow};
pub use readers::Readers;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which database engine a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on Herald's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Db {
    pools: Pools,
    /// Signalled after a transaction that wrote to the event log commits, so the live-stream
    /// bus reads the new events at once.
    events_written: Arc<Notify>,
    /// Where grouped writes queue (see [`crate::group_commit`]).
    committer: Committer,
}

#[derive(Clone, Debug)]
enum Pools {
    /// SQLite keeps a pool of readers and a single writer: SQLite allows one writer at a time
    /// anyway, and funnelling writes through one connection avoids `SQLITE_BUSY` on upgrades
    /// from read to write transactions.
    Sqlite { read: Readers<SqliteConnection>, write: SqlitePool },
    /// PostgreSQL's reads go through [`Readers`] too, which spare them sqlx's two pings per
    /// statement; writes, transactions and `LISTEN` use sqlx's pool. `planned_once` are
    /// readers that keep one plan per prepared statement (see [`Db::reader_planned_once`]).
    Postgres { read: Readers<PgConnection>, planned_once: Readers<PgConnection>, pool: PgPool },
}

/// A borrowed pool of either engine; what [`with_pool!`](crate::with_pool) matches on.
#[derive(Clone, Copy, Debug)]
pub enum Pool<'a> {
    /// SQLite's writer.
    Sqlite(&'a SqlitePool),
    /// SQLite's readers.
    SqliteRead(&'a Readers<SqliteConnection>),
    /// PostgreSQL's pool for writes, transactions and `LISTEN`.
    Postgres(&'a PgPool),
    /// PostgreSQL's readers.
    PostgresRead(&'a Readers<PgConnection>),
}

/// A write transaction on either engine.
#[derive(Debug)]
pub struct Tx {
    /// The engine's transaction; what [`with_tx!`](crate::with_tx) matches on. Go through
    /// that macro: a statement on `inner` directly does not see the inserts the transaction
    /// holds back ([`Tx::flush`]).
    pub inner: TxInner,
    events_written: Arc<Notify>,
    /// Whether this transaction appended to the event log.
    pub(crate) logged_event: bool,
    /// Whether this transaction holds the event-log lock (PostgreSQL).
    pub(crate) log_locked: bool,
    /// Inserts held back to be written together (see [`deferred`]).
    deferred: deferred::Deferred,
}

/// The engine-specific part of a [`Tx`].
#[derive(Debug)]
pub enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs one query expression against a [`Pool`], once per engine: `$c` is bound to the
/// engine's pool, and the expression must compile for both.
#[macro_export]
macro_rules! with_pool {
    ($pool:expr, |$c:ident| $body:expr) => {
        match $pool {
            $crate::db::Pool::Sqlite($c) => $body,
            $crate::db::Pool::SqliteRead($c) => $body,
            $crate::db::Pool::Postgres($c) => $body,
            $crate::db::Pool::PostgresRead($c) => $body,
        }
    };
}

/// Like [`with_pool!`], for a `&mut Tx`: `$c` is bound to the transaction's connection. The
/// inserts the transaction held back are written first ([`Tx::flush`]), so the body sees
/// them; the enclosing function's error type must convert from Herald's
/// [`Error`](crate::Error).
#[macro_export]
macro_rules! with_tx {
    ($tx:expr, |$c:ident| $body:expr) => {{
        let tx: &mut $crate::db::Tx = &mut *$tx;
        tx.flush().await?;
        match &mut tx.inner {
            $crate::db::TxInner::Sqlite(t) => {
                let $c = &mut **t;
                $body
            }
            $crate::db::TxInner::Postgres(t) => {
                let $c = &mut **t;
                $body
            }
        }
    }};
}

/// How long a PostgreSQL connection may sit idle and still be lent without a ping first.
const TRUSTED_IDLE: Duration = Duration::from_millis(500);

/// Makes a reader's new connection keep one plan per prepared statement (see
/// [`Db::reader_planned_once`]). Set once connected, not passed in the startup packet's
/// `options`, which connection poolers such as PgBouncer refuse.
fn plan_once(conn: &mut PgConnection) -> futures::future::BoxFuture<'_, sqlx::Result<()>> {
    Box::pin(async move {
        sqlx::Executor::execute(conn, "SET plan_cache_mode = force_generic_plan").await?;
        Ok(())
    })
}

/// How to size the pools.
#[derive(Clone, Debug)]
pub struct PoolSettings {
    /// Most connections open at once per pool: the readers (on PostgreSQL two pools of them,
    /// see [`Db::reader_planned_once`]), and on PostgreSQL as many again for writes (SQLite's
    /// writer is always one); `None` for the defaults,
    /// [`default_max_connections`] and [`default_write_connections`].
    pub max_connections: Option<u32>,
    /// How long a query waits for a connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings { max_connections: None, acquire_timeout: Duration::from_secs(5) }
    }
}

/// The default number of readers, on either engine: twice the CPU cores, at least 4.
///
/// Queries are short and mostly use the CPU, so more connections than that add only their
/// cost: on SQLite each reader is a thread with its own page cache (and, with glibc, its own
/// allocator arena); on two cores, 8 readers held 96 MiB at the benchmark's peak, 4 held
/// 64 MiB and served as fast. On PostgreSQL each is a server process.
pub fn default_max_connections() -> u32 {
    twice_the_cores().max(4)
}

/// The default size of PostgreSQL's pool for writes: twice the CPU cores, at least 8. It also
/// holds the connection that listens for other instances' events and the writers queued on
/// the event-log lock, so it keeps more than the readers.
pub fn default_write_connections() -> u32 {
    twice_the_cores().max(8)
}

fn twice_the_cores() -> u32 {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    u32::try_from(cores * 2).unwrap_or(u32::MAX)
}

impl Db {
    /// Opens a database from a URL: `sqlite:path/to/file.db` (the file and its directory are
    /// created when missing) or `postgres://…`.
    pub async fn connect(url: &str, settings: &PoolSettings) -> Result<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(|e| Error::Config(format!("database_url: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(settings.max_connections.unwrap_or(default_write_connections()))
                .acquire_timeout(settings.acquire_timeout)
                // This pool serves writes, transactions and `LISTEN`; reads go through `Readers`.
                // sqlx pings every connection it lends and again every one it takes back: two
                // round trips, and on a busy machine two wake-ups of the server's process, around
                // each statement. The ping on return stays (it flushes what a dropped query or
                // transaction left behind). The one on lending finds a socket that died while
                // idle; a connection back from use moments ago cannot have, so as HikariCP does
                // (its `aliveBypassWindowMs`), only a connection idle longer than that is pinged.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= TRUSTED_IDLE {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(options.clone())
                .await?;
            let size = settings.max_connections.unwrap_or(default_max_connections());
            let planned_once =
                Readers::open(options.clone(), size, settings.acquire_timeout, Some(TRUSTED_IDLE), Some(plan_once))
                    .await?;
            let read = Readers::open(options, size, settings.acquire_timeout, Some(TRUSTED_IDLE), None).await?;
            Ok(Db::new(Pools::Postgres { read, planned_once, pool }))
        } else if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| Error::Config(format!("database_url: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // NORMAL in WAL mode survives a process crash (kill -9); only a power loss can
                // drop the last transactions.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                // A multi-row insert keeps a statement journal, to undo itself alone if it
                // fails inside the transaction; past 64 KiB SQLite spills it to a temporary
                // file, a write system call per page (a tenth of a publish's CPU in `perf`).
                // In memory, it costs the pages one statement changes while it runs; the
                // readers' temporary tables (sorts, a search's lookup of its matches) stay in
                // memory too, as large as a query's temporary rows.
                .pragma("temp_store", "memory");
            let file = options.get_filename().to_path_buf();
            if file != Path::new(":memory:")
                && let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::Config(format!("database_url: cannot create {}: {e}", dir.display())))?;
            }
            // A file this process opened has nothing for a ping to find; see `readers`.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                // Lent only outside any transaction. sqlx counts the transactions it began on
                // a connection rather than asking SQLite, and on some errors (a full disk's
                // `SQLITE_FULL` among them) SQLite rolls the whole transaction back itself:
                // sqlx's own rollback then fails and its count stays one too high. Its next
                // transaction would be a savepoint, whose rollback leaves SQLite's transaction
                // open, and every commit after it would release a savepoint inside that one:
                // acknowledged writes no other connection sees, lost when the process stops.
                // The pool closes such a connection and opens a fresh one.
                .before_acquire(|conn, _| Box::pin(async move { Ok(!conn.is_in_transaction()) }))
                .acquire_timeout(settings.acquire_timeout)
                .connect_with(options.clone())
                .await
                .map_err(|e| explain_sqlite_open(&file, e))?;
            let size = settings.max_connections.unwrap_or(default_max_connections());
            let read = Readers::open(options, size, settings.acquire_timeout, None, None).await?;
            Ok(Db::new(Pools::Sqlite { read, write }))
        } else {
            Err(Error::Config(format!(
                "database_url: '{}' is neither a sqlite: nor a postgres:// URL",
                redact_url(url)
            )))
        }
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<()> {
        match &self.pools {
            Pools::Sqlite { write, .. } => SQLITE_MIGRATIONS.run(write).await?,
            Pools::Postgres { pool, .. } => POSTGRES_MIGRATIONS.run(pool).await?,
        }
        Ok(())
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match &self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres { .. } => Backend::Postgres,
        }
    }

    /// The pool for queries that only read.
    pub fn reader(&self) -> Pool<'_> {
        match &self.pools {
            Pools::Sqlite { read, .. } => Pool::SqliteRead(read),
            Pools::Postgres { read, .. } => Pool::PostgresRead(read),
        }
    }

    /// The pool for reads whose best plan does not depend on the values bound (a user, a
    /// state, the time now), which PostgreSQL may then plan once per connection.
    ///
    /// By default PostgreSQL plans every execution of a prepared statement anew when the
    /// statement's plan for unknown values (its generic plan) is estimated dearer than the
    /// plans for the values given, and Herald's statements bind values a generic plan cannot
    /// estimate (the time now, which snoozes are due against): planning was most of
    /// PostgreSQL's CPU for an unread count (see docs/performance.md). These connections
    /// keep the generic plan (`plan_cache_mode = force_generic_plan`). A statement whose best
    /// plan does depend on a value, such as a search (a rare phrase is found through its
    /// index, a common one by walking the inbox), must use [`Db::reader`]. On SQLite, which
    /// never plans for the values, this is [`Db::reader`].
    pub fn reader_planned_once(&self) -> Pool<'_> {
        match &self.pools {
            Pools::Sqlite { read, .. } => Pool::SqliteRead(read),
            Pools::Postgres { planned_once, .. } => Pool::PostgresRead(planned_once),
        }
    }

    /// The pool for single statements that write.
    pub fn writer(&self) -> Pool<'_> {
        match &self.pools {
            Pools::Sqlite { write, .. } => Pool::Sqlite(write),
            Pools::Postgres { pool, .. } => Pool::Postgres(pool),
        }
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        let inner = match &self.pools {
            Pools::Sqlite { write, .. } => TxInner::Sqlite(write.begin().await?),
            Pools::Postgres { pool, .. } => TxInner::Postgres(pool.begin().await?),
        };
        Ok(Tx {
            inner,
            events_written: self.events_written.clone(),
            logged_event: false,
            log_locked: false,
            deferred: Default::default(),
        })
    }

    /// Starts a write transaction that changes notifications or their state. On PostgreSQL it
    /// first takes the event-log lock ([`crate::events`]), which such a transaction takes
    /// before committing anyway: taken before any row is touched, it makes these transactions
    /// run one after another, so the triggers that keep each user's `inbox_counts` never wait
    /// on each other and cannot deadlock.
    pub async fn begin_inbox(&self) -> Result<Tx> {
        let mut tx = self.begin().await?;
        crate::events::lock(&mut tx).await?;
        Ok(tx)
    }

    /// Checks that the database answers a trivial query.
    pub async fn ping(&self) -> Result<()> {
        with_pool!(self.reader(), |c| sqlx::query("SELECT 1").execute(c).await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Checks that the database accepts a write, as storing a notification needs: a full disk
    /// or a read-only file fails here while [`Db::ping`] still succeeds.
    pub async fn probe_write(&self, now: i64) -> Result<()> {
        with_pool!(self.writer(), |c| sqlx::query(
            "INSERT INTO health_probe (id, checked_at) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at"
        )
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Pools::Postgres { read, planned_once, pool } => {
                read.close().await;
                planned_once.close().await;
                pool.close().await;
            }
        }
    }

    /// Whether [`Db::close`] was called.
    pub fn is_closed(&self) -> bool {
        match &self.pools {
            Pools::Sqlite { read, .. } => read.is_closed(),
            Pools::Postgres { pool, .. } => pool.is_closed(),
        }
    }

    fn new(pools: Pools) -> Db {
        Db { pools, events_written: Arc::new(Notify::new()), committer: Committer::default() }
    }

    pub(crate) fn committer(&self) -> &Committer {
        &self.committer
    }

    /// This database without its group-commit queue: what the queue's own task holds, so
    /// that the task does not keep the queue open.
    pub(crate) fn without_committer(&self) -> Db {
        Db { pools: self.pools.clone(), events_written: self.events_written.clone(), committer: Committer::default() }
    }

    /// The PostgreSQL pool, when this is PostgreSQL (for `LISTEN`).
    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.pools {
            Pools::Postgres { pool, .. } => Some(pool),
            Pools::Sqlite { .. } => None,
        }
    }

    /// Resolves after a transaction that appended events commits (in this process).
    pub async fn events_written(&self) {
        self.events_written.notified().await;
    }
}

impl Tx {
    /// Makes the transaction's writes permanent, the held-back inserts included.
    pub async fn commit(mut self) -> Result<()> {
        self.flush().await?;
        match self.inner {
            TxInner::Sqlite(t) => t.commit().await?,
            TxInner::Postgres(t) => t.commit().await?,
        }
        if self.logged_event {
            // One stored permit is enough: the bus reads every event after its position.
            self.events_written.notify_one();
        }
        Ok(())
    }
}

/// SQLite's "unable to open database file" does not say why; the usual reason is that the file
/// or its directory (where the `-wal` and `-shm` files live) cannot be written.
fn explain_sqlite_open(file: &Path, e: sqlx::Error) -> Error {
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let probe = dir.join(format!(".herald-write-check-{}", std::process::id()));
    let unwritable = match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            std::fs::OpenOptions::new().append(true).open(file).err().filter(|_| file.exists())
        }
        Err(err) => Some(err),
    };
    match unwritable {
        Some(why) => Error::Config(format!(
            "database_url: the database {} cannot be written ({why}); Herald needs to write the file and its directory",
            file.display()
        )),
        None => Error::Database(e),
    }
}

/// A database URL with any password replaced, safe to log or show.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A fresh SQLite database for a test, in a directory of its own under the system's temporary
/// directory (the test removes it), with Herald's schema when `migrated`.
#[cfg(test)]
pub(crate) async fn scratch_sqlite(name: &str, migrated: bool) -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("herald-{name}-{}", uuid::Uuid::new_v4().simple()));
    let db = Db::connect(&format!("sqlite:{}", dir.join("t.db").display()), &Default::default()).await.unwrap();
    if migrated {
        db.migrate().await.unwrap();
    }
    (db, dir)
}

/// Runs one statement on `db`'s writer, as an administrator or another program would, behind
/// Herald's back; panics if it fails.
#[cfg(test)]
pub(crate) async fn execute(db: &Db, statement: &str) {
    crate::with_pool!(db.writer(), |c| sqlx::query(statement).execute(c).await.map(|r| r.rows_affected())).unwrap();
}

/// Applies SQLite's migrations up to `version` only, as a database made by an older Herald.
#[cfg(test)]
pub(crate) async fn migrate_sqlite_up_to(db: &Db, version: i64) {
    let Pools::Sqlite { write, .. } = &db.pools else { panic!("a SQLite database") };
    let older: Vec<_> = SQLITE_MIGRATIONS.migrations.iter().filter(|m| m.version <= version).cloned().collect();
    let migrator = sqlx::migrate::Migrator { migrations: older.into(), ..sqlx::migrate::Migrator::DEFAULT };
    migrator.run(write).await.unwrap();
}

/// A fresh PostgreSQL database for a test, named after `name`, with Herald's schema; the test
/// drops it with [`drop_scratch_postgres`].
#[cfg(test)]
pub(crate) async fn scratch_postgres(name: &str) -> (Db, String) {
    let database = format!("herald_{name}_{}", uuid::Uuid::new_v4().simple());
    let mut admin = postgres_admin().await;
    sqlx::query(&format!("CREATE DATABASE {database}")).execute(&mut admin).await.unwrap();
    let url = postgres_admin_url();
    let base = url.rsplit_once('/').map(|(base, _)| base).expect("a URL naming a database");
    let db = Db::connect(&format!("{base}/{database}"), &Default::default()).await.unwrap();
    db.migrate().await.unwrap();
    (db, database)
}

/// Closes `db` and drops its database, made by [`scratch_postgres`].
#[cfg(test)]
pub(crate) async fn drop_scratch_postgres(db: Db, database: String) {
    db.close().await;
    let mut admin = postgres_admin().await;
    sqlx::query(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)")).execute(&mut admin).await.unwrap();
}

/// The PostgreSQL server tests use (`HERALD_TEST_POSTGRES_URL`, else the local one), as a URL
/// whose user may create databases.
#[cfg(test)]
pub(crate) fn postgres_admin_url() -> String {
    std::env::var("HERALD_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A connection to [`postgres_admin_url`]; a test that needs one fails saying so.
#[cfg(test)]
pub(crate) async fn postgres_admin() -> sqlx::PgConnection {
    let url = postgres_admin_url();
    <sqlx::PgConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL is required for this test and is not reachable at {url}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite:data/herald.db"), "sqlite:data/herald.db");
    }

    // `.cargo/config.toml` builds SQLite without its global locks (`LIBSQLITE3_FLAGS`): a
    // build that lost the setting would be slower, not wrong, so only this would notice.
    #[tokio::test]
    async fn sqlite_is_built_without_global_memory_and_page_cache_locks() {
        let (db, dir) = scratch_sqlite("compile-options", false).await;
        let options: Vec<String> =
            with_pool!(db.reader(), |c| sqlx::query_scalar("PRAGMA compile_options").fetch_all(c).await).unwrap();
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
        assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
        db.close().await;
        std::fs::remove_dir_all(dir).ok();
    }

    /// A transaction SQLite rolled back by itself (on a full disk) must not leave the writer
    /// out of step with sqlx: afterwards, what commits is committed for every connection.
    #[tokio::test]
    async fn writes_after_a_full_disk_commit_for_everyone() {
        let (db, dir) = scratch_sqlite("full-disk", false).await;
        execute(&db, "CREATE TABLE t (v INTEGER PRIMARY KEY, b BLOB)").await;
        async fn insert(db: &Db, v: i64, bytes: i64) -> Result<()> {
            let mut tx = db.begin().await?;
            with_tx!(&mut tx, |c| sqlx::query("INSERT INTO t (v, b) VALUES ($1, zeroblob($2))")
                .bind(v)
                .bind(bytes)
                .execute(c)
                .await
                .map(|r| r.rows_affected()))?;
            tx.commit().await
        }
        insert(&db, 1, 10).await.unwrap();
        // The file may not grow past a few more pages: as good as a full disk, for this writer.
        let pages: i64 =
            with_pool!(db.writer(), |c| sqlx::query_scalar("PRAGMA page_count").fetch_one(c).await).unwrap();
        execute(&db, &format!("PRAGMA max_page_count = {}", pages + 2)).await;
        let full = insert(&db, 2, 1 << 20).await.unwrap_err();
        assert!(full.to_string().contains("full"), "{full}");
        // A transaction that fails on its own (a duplicate key) and is rolled back…
        insert(&db, 1, 10).await.unwrap_err();
        execute(&db, "PRAGMA max_page_count = 1073741823").await;
        // …and then one that commits: every connection sees it.
        insert(&db, 3, 10).await.unwrap();
        let seen: Vec<i64> =
            with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT v FROM t ORDER BY v").fetch_all(c).await).unwrap();
        assert_eq!(seen, [1, 3]);
        db.close().await;
        std::fs::remove_dir_all(dir).ok();
    }

    // Temporary storage (statement journals, sorts, the search's lookups) stays in memory on
    // the writer and every reader: like the build above, losing it would be slower, not wrong.
    #[tokio::test]
    async fn sqlite_keeps_temporary_storage_in_memory() {
        let (db, dir) = scratch_sqlite("temp-store", false).await;
        const MEMORY: i64 = 2;
        let writer: i64 =
            with_pool!(db.writer(), |c| sqlx::query_scalar("PRAGMA temp_store").fetch_one(c).await).unwrap();
        let reader: i64 =
            with_pool!(db.reader(), |c| sqlx::query_scalar("PRAGMA temp_store").fetch_one(c).await).unwrap();
        assert_eq!((writer, reader), (MEMORY, MEMORY));
        db.close().await;
        std::fs::remove_dir_all(dir).ok();
    }
}
