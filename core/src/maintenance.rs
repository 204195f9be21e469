//! Periodic upkeep: notification retention, the event-log replay window, expired
//! idempotency keys and sessions; and PostgreSQL's planner statistics.

use crate::db::{Db, Pool};
use crate::idempotency::KEY_LIFETIME_MS;
use crate::time::now_ms;
use crate::{Result, with_pool, with_tx};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// What one clean-up removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cleaned {
    pub notifications: u64,
    pub events: u64,
}

/// Deletes notifications older than `retention_days` (0 keeps them forever) unless someone
/// saved them, events older than the replay window, and expired keys and sessions.
pub async fn clean_up(db: &Db, retention_days: u32, event_window_ms: i64) -> Result<Cleaned> {
    let now = now_ms();
    let mut cleaned = Cleaned::default();
    if retention_days > 0 {
        let cutoff = now - i64::from(retention_days) * DAY_MS;
        // Deleting notifications changes their users' counts: a transaction of the kind
        // `Db::begin_inbox` orders.
        let mut tx = db.begin_inbox().await?;
        cleaned.notifications = with_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM notifications WHERE created < $1 AND saved IS NULL
             AND NOT EXISTS (SELECT 1 FROM broadcast_status s
                             WHERE s.notification_id = notifications.id AND s.saved IS NOT NULL)",
        )
        .bind(cutoff)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
        tx.commit().await?;
    }
    with_pool!(db.writer(), |c| {
        cleaned.events = sqlx::query("DELETE FROM events WHERE created_at < $1")
            .bind(now - event_window_ms)
            .execute(c)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(now - KEY_LIFETIME_MS)
            .execute(c)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1").bind(now).execute(c).await?;
        Ok::<_, sqlx::Error>(())
    })?;
    Ok(cleaned)
}

/// Serialises statistics refreshes across the instances sharing one PostgreSQL (an arbitrary,
/// fixed advisory-lock key, distinct from the event log's).
const STATISTICS_LOCK: i64 = 0x4845_5241_4c44_5354; // "HERALDST"

/// Refreshes PostgreSQL's planner statistics of Herald's tables that changed enough since
/// they were last analyzed, by the rule autovacuum applies by default (more than 50 rows plus
/// a tenth of the table changed), and returns their names.
///
/// The inbox's plans depend on these statistics: without them PostgreSQL takes a user's
/// 100,000 notifications for a few hundred and sorts them all for a page of 20 instead of
/// reading the first 20 from the inbox index (50 ms instead of 1 ms; `notifications::plans`).
/// Autovacuum gathers them on most servers, but it can be turned off, and it looks only once a
/// minute, after a bulk of notifications has already arrived. Checking costs one query on the
/// statistics views. Instances that share the database take turns: one that finds another
/// refreshing returns at once. On SQLite this does nothing: the queries are written so that
/// SQLite needs no statistics (`notifications::plans` pins its plans without them).
///
/// Herald's tables are those of the schema it works in that its role owns (the migrations
/// created them): anything else there is someone else's to maintain. A table whose lock is
/// not free at once (a vacuum or an index build holds it) is left for the next turn rather
/// than waited for, so no connection waits and autovacuum is not cancelled by the wait.
pub async fn refresh_statistics(db: &Db) -> Result<Vec<String>> {
    use sqlx::Connection as _;
    let Pool::Postgres(pool) = db.writer() else {
        return Ok(Vec::new());
    };
    // ANALYZE may run inside a transaction, which holds the turn until it is done.
    let mut tx = pool.begin().await?;
    let ours: bool =
        sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)").bind(STATISTICS_LOCK).fetch_one(&mut *tx).await?;
    if !ours {
        return Ok(Vec::new());
    }
    // Shorter than `deadlock_timeout` (1 s by default), after which a waiting ANALYZE would
    // cancel an autovacuum of the same table.
    sqlx::query("SET LOCAL lock_timeout = '500ms'").execute(&mut *tx).await?;
    let stale: Vec<String> = sqlx::query_scalar(
        "SELECT t.relname::text FROM pg_stat_user_tables t JOIN pg_class c ON c.oid = t.relid
         WHERE t.schemaname = current_schema() AND pg_has_role(c.relowner, 'USAGE')
           AND t.n_mod_since_analyze > 50 + 0.1 * GREATEST(t.n_live_tup, 0)
         ORDER BY t.relname",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut analyzed = Vec::with_capacity(stale.len());
    for table in stale {
        // One savepoint per table: a table that cannot be analyzed now leaves the others be.
        let mut one = tx.begin().await?;
        match analyze(&mut one, &table).await {
            Ok(()) => {
                one.commit().await?;
                analyzed.push(table);
            }
            Err(e) => {
                one.rollback().await?;
                tracing::debug!(table, error = %e, "statistics left for the next turn");
            }
        }
    }
    tx.commit().await?;
    Ok(analyzed)
}

/// Analyzes `table` and merges its GIN indexes' pending entries: new entries of a GIN index
/// (search's trigrams) wait in a pending list that every search reads through until a vacuum
/// merges it, which autovacuum would do too.
async fn analyze(c: &mut sqlx::PgConnection, table: &str) -> std::result::Result<(), sqlx::Error> {
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    sqlx::query(&format!("ANALYZE {quoted}")).execute(&mut *c).await?;
    sqlx::query(
        "SELECT gin_clean_pending_list(i.indexrelid) FROM pg_index i
         JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
         WHERE i.indrelid = $1::regclass AND a.amname = 'gin'",
    )
    .bind(&quoted)
    .execute(&mut *c)
    .await?;
    Ok(())
}
