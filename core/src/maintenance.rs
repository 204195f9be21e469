//! Periodic clean-up: notification retention, the event-log replay window, expired
//! idempotency keys and sessions.

use crate::db::Db;
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
