//! The event log: every change a user's open tabs must learn, with strictly increasing ids.
//! Live streams replay from it after a reconnect (`Last-Event-ID`) and the bus reads it to
//! fan new events out.

use std::sync::OnceLock;

use bytes::Bytes;
use herald_model::EntityRef;

use crate::db::{Db, EventRow, Tx, TxInner};
use crate::{Result, with_pool};

/// The PostgreSQL `NOTIFY` channel that tells every instance new events were committed.
pub const NOTIFY_CHANNEL: &str = "herald_events";

/// Serialises event-log writers on PostgreSQL (an arbitrary, fixed advisory-lock key).
const EVENT_LOCK: i64 = 0x4845_5241_4c44; // "HERALD"

/// One entry of the log.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    /// The user it concerns; `None` for a broadcast, which concerns everyone.
    pub user_ref: Option<String>,
    /// `notification` or `update`.
    pub kind: String,
    /// JSON: the notification, or the ids and their new state.
    pub payload: String,
    /// The event as its transport sends it, encoded by the first stream that sends it. The
    /// bus shares one `Event` among all its streams, so a broadcast to 10,000 streams is
    /// encoded once, and each stream sends the same bytes.
    #[sqlx(skip)]
    encoded: OnceLock<Bytes>,
}

impl Event {
    /// An event as the log holds it (id, whom it concerns, kind and JSON payload).
    pub fn new(id: i64, user_ref: Option<String>, kind: impl Into<String>, payload: impl Into<String>) -> Event {
        Event { id, user_ref, kind: kind.into(), payload: payload.into(), encoded: OnceLock::new() }
    }

    /// Whether `user` should receive this event.
    pub fn concerns(&self, user: &EntityRef) -> bool {
        self.user_ref.as_deref().is_none_or(|u| u == user.as_str())
    }

    /// The event encoded by `encode`, which runs once per event however many streams ask.
    pub fn encoded(&self, encode: impl FnOnce(&Event) -> Bytes) -> Bytes {
        self.encoded.get_or_init(|| encode(self)).clone()
    }
}

/// Events are equal when their contents are: whether one was encoded yet does not matter.
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.id, &self.user_ref, &self.kind, &self.payload) == (other.id, &other.user_ref, &other.kind, &other.payload)
    }
}

impl Eq for Event {}

/// Appends an event inside `tx`.
///
/// Readers follow the log by id, so ids must become visible in order. SQLite has one writer,
/// so they do. On PostgreSQL a sequence hands out ids at insert time, and a transaction that
/// got a lower id could commit after one with a higher id — a reader would skip it. A
/// transaction-scoped advisory lock taken before the insert makes id order commit order.
pub(crate) async fn log_event(
    tx: &mut Tx,
    user: Option<&EntityRef>,
    kind: &str,
    payload: &str,
    now: i64,
) -> Result<()> {
    lock(tx).await?;
    if let TxInner::Postgres(t) = &mut tx.inner
        && !tx.logged_event
    {
        // Delivered to every listening instance when (and only if) the transaction commits.
        sqlx::query("SELECT pg_notify($1, '')").bind(NOTIFY_CHANNEL).execute(&mut **t).await?;
    }
    // Written with the transaction's next statement or commit, in the order logged.
    tx.defer_event(EventRow {
        user_ref: user.map(|u| u.as_str().to_string()),
        kind: kind.to_string(),
        payload: payload.to_string(),
        created_at: now,
    });
    tx.logged_event = true;
    tx.flush_if_full().await
}

/// Takes the event-log lock for the rest of `tx` on PostgreSQL (SQLite's one writer already
/// serialises writers). Held until the transaction ends; taking it again is free.
pub(crate) async fn lock(tx: &mut Tx) -> Result<()> {
    if let TxInner::Postgres(t) = &mut tx.inner
        && !tx.log_locked
    {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(EVENT_LOCK).execute(&mut **t).await?;
        tx.log_locked = true;
    }
    Ok(())
}

/// Events after `after`, oldest first, at most `limit`; only those concerning `user` when
/// given.
pub async fn since(db: &Db, after: i64, user: Option<&EntityRef>, limit: i64) -> Result<Vec<Event>> {
    Ok(with_pool!(db.reader(), |c| sqlx::query_as::<_, Event>(
        "SELECT id, user_ref, kind, payload FROM events
         WHERE id > $1 AND ($2 IS NULL OR user_ref = $2 OR user_ref IS NULL)
         ORDER BY id LIMIT $3"
    )
    .bind(after)
    .bind(user.map(EntityRef::as_str))
    .bind(limit)
    .fetch_all(c)
    .await)?)
}

/// The oldest and newest ids still in the log (`None` when it is empty).
pub async fn bounds(db: &Db) -> Result<Option<(i64, i64)>> {
    let (min, max) = with_pool!(db.reader(), |c| sqlx::query_as::<_, (Option<i64>, Option<i64>)>(
        "SELECT MIN(id), MAX(id) FROM events"
    )
    .fetch_one(c)
    .await)?;
    Ok(min.zip(max))
}
