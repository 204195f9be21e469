//! The durable outbox: forwarding notifications to email, Slack and webhooks.
//!
//! Deliveries are written in the same transaction as the notification they forward
//! ([`enqueue`]), so a stored notification always has its deliveries and a rolled-back one
//! has none. Senders [`claim`] due deliveries with a lease — `FOR UPDATE SKIP LOCKED` on
//! PostgreSQL, so instances never take the same row; SQLite has one writer, so its
//! `UPDATE … RETURNING` is already exclusive — then report [`delivered`] or [`failed`]. A
//! sender that dies mid-send leaves its lease to expire and the delivery is sent again with
//! the same id, which receivers see (Message-ID, `X-Herald-Delivery`) and can deduplicate.

use std::collections::BTreeMap;

use herald_model::Notification;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::db::{Backend, Db, Tx};
use crate::time::now_ms;
use crate::{Error, Result, with_pool, with_tx};

/// The email channel's id.
pub const EMAIL: &str = "Email";
/// The Slack channel's id.
pub const SLACK: &str = "Slack";
/// The webhook channel's id.
pub const WEBHOOK: &str = "Webhook";

/// Where a delivery stands.
pub mod status {
    /// Waiting to be sent (or being sent, while leased).
    pub const PENDING: &str = "pending";
    /// Held for the recipient's email digest until its period ends.
    pub const DIGEST: &str = "digest";
    /// Folded into a digest delivery.
    pub const MERGED: &str = "merged";
    /// Sent.
    pub const DELIVERED: &str = "delivered";
    /// Given up on: attempts exhausted or a permanent error; `last_error` says why.
    pub const DEAD: &str = "dead";
}

/// What a delivery carries.
pub mod kind {
    /// A notification seen for the first time.
    pub const NEW: &str = "new";
    /// A scope update of a notification sent before.
    pub const UPDATE: &str = "update";
    /// An email digest listing several notifications.
    pub const DIGEST: &str = "digest";
}

/// A delivery to write.
#[derive(Clone, Debug)]
pub struct NewDelivery {
    pub channel: &'static str,
    pub kind: &'static str,
    pub user_ref: Option<String>,
    pub target: String,
    pub notification: Notification,
    /// For an email digest: hold the delivery until then.
    pub digest_until: Option<i64>,
}

/// One delivery as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    pub id: String,
    pub channel: String,
    pub kind: String,
    pub notification_id: String,
    pub user_ref: Option<String>,
    pub target: String,
    #[serde(skip)]
    pub payload: String,
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub delivered_at: Option<i64>,
}

impl Delivery {
    /// The notifications it carries: one, or a digest's list.
    pub fn notifications(&self) -> Result<Vec<Notification>> {
        if self.kind == kind::DIGEST {
            Ok(serde_json::from_str(&self.payload)?)
        } else {
            Ok(vec![serde_json::from_str(&self.payload)?])
        }
    }
}

const COLUMNS: &str = "id, channel, kind, notification_id, user_ref, target, payload, status, attempts, \
     next_attempt_at, last_error, created_at, updated_at, delivered_at";

/// Writes deliveries inside the notification's transaction.
pub async fn enqueue(tx: &mut Tx, deliveries: &[NewDelivery], now: i64) -> Result<()> {
    for d in deliveries {
        let (status, due) = match d.digest_until {
            Some(t) => (status::DIGEST, t),
            None => (status::PENDING, now),
        };
        let payload = serde_json::to_string(&d.notification)?;
        with_tx!(tx, |c| sqlx::query(
            "INSERT INTO deliveries (id, channel, kind, notification_id, user_ref, target, payload, status,
                 next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)"
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(d.channel)
        .bind(d.kind)
        .bind(&d.notification.id)
        .bind(&d.user_ref)
        .bind(&d.target)
        .bind(&payload)
        .bind(status)
        .bind(due)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Leases up to `limit` due deliveries of `channels` for `lease_ms`, counting the attempt.
/// `lease_id` identifies this claim: only it can complete them.
pub async fn claim(db: &Db, channels: &[&str], limit: i64, lease_ms: i64, lease_id: &str) -> Result<Vec<Delivery>> {
    if channels.is_empty() {
        return Ok(vec![]);
    }
    let now = now_ms();
    let list = (0..channels.len()).map(|i| format!("${}", i + 5)).collect::<Vec<_>>().join(", ");
    let lock = if db.backend() == Backend::Postgres { "FOR UPDATE SKIP LOCKED" } else { "" };
    let sql = format!(
        "UPDATE deliveries SET lease_id = $1, lease_until = $2, attempts = attempts + 1, updated_at = $3
         WHERE id IN (
             SELECT id FROM deliveries
             WHERE status = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until <= $3)
               AND channel IN ({list})
             ORDER BY next_attempt_at LIMIT $4 {lock})
         RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db.writer(), |c| {
        let mut q = sqlx::query_as::<_, Delivery>(&sql).bind(lease_id).bind(now + lease_ms).bind(now).bind(limit);
        for ch in channels {
            q = q.bind(*ch);
        }
        q.fetch_all(c).await
    })?)
}

/// Records a successful send. Returns `false` when the lease was lost (another sender has
/// the delivery now).
pub async fn delivered(db: &Db, id: &str, lease_id: &str) -> Result<bool> {
    let now = now_ms();
    let n = with_pool!(db.writer(), |c| sqlx::query(
        "UPDATE deliveries SET status = 'delivered', delivered_at = $1, updated_at = $1, lease_id = NULL,
             lease_until = NULL, last_error = NULL
         WHERE id = $2 AND lease_id = $3"
    )
    .bind(now)
    .bind(id)
    .bind(lease_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Records a failed send: retried at `retry_at`, or dead when `None`.
pub async fn failed(db: &Db, id: &str, lease_id: &str, error: &str, retry_at: Option<i64>) -> Result<bool> {
    let now = now_ms();
    let error: String = error.chars().take(2000).collect();
    let n = with_pool!(db.writer(), |c| sqlx::query(
        "UPDATE deliveries SET status = $1, next_attempt_at = $2, last_error = $3, updated_at = $4,
             lease_id = NULL, lease_until = NULL
         WHERE id = $5 AND lease_id = $6"
    )
    .bind(if retry_at.is_some() { status::PENDING } else { status::DEAD })
    .bind(retry_at.unwrap_or(now))
    .bind(&error)
    .bind(now)
    .bind(id)
    .bind(lease_id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Puts dead deliveries back in the queue with fresh attempts: those with `ids`, or every
/// dead one of `channel` (every dead one when both are empty). Returns how many.
pub async fn retry_dead(db: &Db, ids: &[String], channel: Option<&str>) -> Result<u64> {
    let now = now_ms();
    let mut sql = "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $1, updated_at = $1
                   WHERE status = 'dead'"
        .to_string();
    if channel.is_some() {
        sql.push_str(" AND channel = $2");
    }
    if !ids.is_empty() {
        let first = if channel.is_some() { 3 } else { 2 };
        let list = (0..ids.len()).map(|i| format!("${}", i + first)).collect::<Vec<_>>().join(", ");
        sql.push_str(&format!(" AND id IN ({list})"));
    }
    Ok(with_pool!(db.writer(), |c| {
        let mut q = sqlx::query(&sql).bind(now);
        if let Some(ch) = channel {
            q = q.bind(ch);
        }
        for id in ids {
            q = q.bind(id);
        }
        q.execute(c).await.map(|r| r.rows_affected())
    })?)
}

/// Which deliveries to list.
#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub status: Option<String>,
    pub channel: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

/// Deliveries newest first, with how many match.
pub async fn list(db: &Db, f: &ListFilter) -> Result<(Vec<Delivery>, i64)> {
    if let Some(s) = &f.status {
        let known = [status::PENDING, status::DIGEST, status::MERGED, status::DELIVERED, status::DEAD];
        if !known.contains(&s.as_str()) {
            return Err(Error::Invalid(format!("status '{s}' is not one of {}", known.join(", "))));
        }
    }
    let limit = f.limit.clamp(1, 1000);
    let cond = "($1 IS NULL OR status = $1) AND ($2 IS NULL OR channel = $2)";
    let rows_sql =
        format!("SELECT {COLUMNS} FROM deliveries WHERE {cond} ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4");
    let count_sql = format!("SELECT COUNT(*) FROM deliveries WHERE {cond}");
    Ok(with_pool!(db.reader(), |c| {
        let rows = sqlx::query_as::<_, Delivery>(&rows_sql)
            .bind(&f.status)
            .bind(&f.channel)
            .bind(limit)
            .bind(f.offset.max(0))
            .fetch_all(c)
            .await?;
        let total: i64 = sqlx::query_scalar(&count_sql).bind(&f.status).bind(&f.channel).fetch_one(c).await?;
        Ok::<_, sqlx::Error>((rows, total))
    })?)
}

/// The outbox at a glance, per channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ChannelStats {
    /// Deliveries waiting to be sent.
    pub pending: i64,
    /// Age of the oldest waiting one, in milliseconds.
    pub oldest_pending_ms: i64,
    pub dead: i64,
}

/// Depth, oldest age and dead count per channel.
pub async fn stats(db: &Db) -> Result<BTreeMap<String, ChannelStats>> {
    let now = now_ms();
    let rows = with_pool!(db.reader(), |c| sqlx::query_as::<_, (String, String, i64, Option<i64>)>(
        "SELECT channel, status, COUNT(*), MIN(created_at) FROM deliveries
         WHERE status IN ('pending', 'dead') GROUP BY channel, status"
    )
    .fetch_all(c)
    .await)?;
    let mut out: BTreeMap<String, ChannelStats> = BTreeMap::new();
    for (channel, st, count, oldest) in rows {
        let s = out.entry(channel).or_default();
        if st == status::PENDING {
            s.pending = count;
            s.oldest_pending_ms = oldest.map_or(0, |t| (now - t).max(0));
        } else {
            s.dead = count;
        }
    }
    Ok(out)
}

/// Folds every email digest whose period has ended into one pending delivery per recipient
/// listing its notifications. Claimed with `UPDATE … RETURNING`, so instances never fold one
/// twice. Returns how many digests were made.
pub async fn collect_digests(db: &Db) -> Result<usize> {
    let now = now_ms();
    let mut tx = db.begin().await?;
    let due = with_tx!(&mut tx, |c| sqlx::query_as::<_, (String, String, Option<String>, String, String)>(
        "UPDATE deliveries SET status = 'merged', updated_at = $1
         WHERE status = 'digest' AND next_attempt_at <= $1
         RETURNING id, channel, user_ref, target, payload"
    )
    .bind(now)
    .fetch_all(c)
    .await)?;
    let mut groups: BTreeMap<(String, Option<String>, String), Vec<Notification>> = BTreeMap::new();
    for (_, channel, user, target, payload) in due {
        groups.entry((channel, user, target)).or_default().push(serde_json::from_str(&payload)?);
    }
    let made = groups.len();
    for ((channel, user, target), mut list) in groups {
        list.sort_by_key(|n| std::cmp::Reverse(n.created));
        // A notification updated within the period is listed once, as it is now.
        let mut seen = std::collections::HashSet::new();
        list.retain(|n| seen.insert(n.id.clone()));
        let first = list.first().map(|n| n.id.clone()).unwrap_or_default();
        with_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO deliveries (id, channel, kind, notification_id, user_ref, target, payload, status,
                 next_attempt_at, created_at, updated_at)
             VALUES ($1, $2, 'digest', $3, $4, $5, $6, 'pending', $7, $7, $7)"
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&channel)
        .bind(&first)
        .bind(&user)
        .bind(&target)
        .bind(serde_json::to_string(&list)?)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    tx.commit().await?;
    Ok(made)
}

/// When failed deliveries are tried again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: i32,
    /// The wait after the first failure; each further failure doubles it.
    pub first_delay_ms: i64,
    /// The longest wait.
    pub max_delay_ms: i64,
}

impl Default for RetryPolicy {
    /// 8 attempts: waits of 15 s, 30 s, 1, 2, 4, 8 and 16 min — about 31 minutes in all.
    fn default() -> Self {
        RetryPolicy { max_attempts: 8, first_delay_ms: 15_000, max_delay_ms: 30 * 60_000 }
    }
}

impl RetryPolicy {
    /// When to try again after attempt number `attempts` failed (`None`: give up). The wait
    /// doubles with each attempt, with ±20% jitter so retries do not arrive in waves; a
    /// receiver's `Retry-After` wins when it asks for longer.
    pub fn next_attempt(&self, attempts: i32, retry_after_ms: Option<i64>, now: i64) -> Option<i64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let exp = (attempts - 1).clamp(0, 30) as u32;
        let base = self.first_delay_ms.saturating_mul(1i64 << exp).min(self.max_delay_ms);
        let jittered = (base as f64 * rand::thread_rng().gen_range(0.8..=1.2)) as i64;
        Some(now + jittered.max(retry_after_ms.unwrap_or(0)))
    }
}

/// The end of the digest period containing `now`: the next full hour, or the next `hour`
/// o'clock UTC for a daily digest.
pub fn digest_period_end(mode: &str, now: i64, daily_hour_utc: u32) -> Option<i64> {
    const HOUR: i64 = 3_600_000;
    match mode {
        "hourly" => Some((now / HOUR + 1) * HOUR),
        "daily" => {
            let day = now - now.rem_euclid(24 * HOUR);
            let at = day + i64::from(daily_hour_utc.min(23)) * HOUR;
            Some(if at > now { at } else { at + 24 * HOUR })
        }
        _ => None,
    }
}

/// The Slack message a target got for a notification: (conversation, ts).
pub async fn slack_message(db: &Db, notification_id: &str, target: &str) -> Result<Option<(String, String)>> {
    Ok(with_pool!(db.reader(), |c| sqlx::query_as::<_, (String, String)>(
        "SELECT channel, ts FROM slack_messages WHERE notification_id = $1 AND target = $2"
    )
    .bind(notification_id)
    .bind(target)
    .fetch_optional(c)
    .await)?)
}

/// Remembers the Slack message a target got, so a scope update edits it.
pub async fn save_slack_message(db: &Db, notification_id: &str, target: &str, channel: &str, ts: &str) -> Result<()> {
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO slack_messages (notification_id, target, channel, ts) VALUES ($1, $2, $3, $4)
         ON CONFLICT (notification_id, target) DO UPDATE SET channel = excluded.channel, ts = excluded.ts"
    )
    .bind(notification_id)
    .bind(target)
    .bind(channel)
    .bind(ts)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_about_half_an_hour_then_stop() {
        let p = RetryPolicy::default();
        let mut total = 0;
        for attempt in 1..8 {
            let wait = p.next_attempt(attempt, None, 0).unwrap();
            let base = 15_000 * (1 << (attempt - 1));
            assert!(wait >= base * 8 / 10 && wait <= base * 12 / 10, "attempt {attempt}: {wait}");
            total += base;
        }
        assert_eq!(total, 1_905_000, "about 31 minutes");
        assert_eq!(p.next_attempt(8, None, 0), None, "8 attempts, then dead");
        assert!(p.next_attempt(1, Some(120_000), 0).unwrap() >= 120_000, "Retry-After wins");
    }

    #[test]
    fn digests_end_at_the_next_hour_or_day() {
        const H: i64 = 3_600_000;
        let now = 10 * 24 * H + 5 * H + 1234;
        assert_eq!(digest_period_end("hourly", now, 8), Some(10 * 24 * H + 6 * H));
        assert_eq!(digest_period_end("daily", now, 8), Some(10 * 24 * H + 8 * H));
        assert_eq!(digest_period_end("daily", now, 4), Some(11 * 24 * H + 4 * H));
        assert_eq!(digest_period_end("immediate", now, 8), None);
    }
}
