//! Inserts a transaction holds back and writes together, many rows to one statement.
//!
//! Every statement costs a round trip: on SQLite to the connection's own thread (two thread
//! wake-ups, see [`super::readers`]), on PostgreSQL to the server. A batch of publishes (see
//! [`crate::group_commit`]) inserted one notification and one event per statement, so the one
//! writer every publish waits for spent most of its time on those trips. Inserts that nothing
//! in the transaction reads back are therefore kept in the [`Tx`] and written as multi-row
//! `INSERT`s just before the transaction's next statement ([`with_tx!`](crate::with_tx)
//! flushes first) and at the latest before it commits. The transaction sees the same rows, in
//! the same order, as if each had been inserted at once: event ids still follow the order in
//! which the events were logged.

use super::{Tx, TxInner};
use crate::{Error, Result};

/// Most rows in one statement: 12 × 256 parameters stay far under both engines' limits
/// (SQLite 32,766, PostgreSQL 65,535).
const MOST_ROWS: usize = 256;

/// A new row of `notifications`.
#[derive(Debug)]
#[cfg_attr(test, derive(PartialEq, sqlx::FromRow))]
pub(crate) struct NotificationRow {
    pub id: String,
    pub user_ref: Option<String>,
    pub origin: String,
    pub created: i64,
    pub title: String,
    pub description: Option<String>,
    pub link: Option<String>,
    pub severity: i16,
    pub topic: Option<String>,
    pub scope: Option<String>,
    pub icon: Option<String>,
    pub metadata: Option<String>,
}

/// A new entry of the event log.
#[derive(Debug)]
#[cfg_attr(test, derive(PartialEq, sqlx::FromRow))]
pub(crate) struct EventRow {
    pub user_ref: Option<String>,
    pub kind: String,
    pub payload: String,
    pub created_at: i64,
}

/// What a transaction has yet to insert.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    notifications: Vec<NotificationRow>,
    events: Vec<EventRow>,
    /// A flush failed part of the way: some rows may be written and the rest are gone, so the
    /// transaction must not commit.
    failed: bool,
}

const NOTIFICATIONS: &str = "INSERT INTO notifications
    (id, user_ref, origin, created, title, description, link, severity, topic, scope, icon, metadata) VALUES ";
/// The columns of [`NOTIFICATIONS`].
const NOTIFICATION_COLUMNS: usize = 12;
const EVENTS: &str = "INSERT INTO events (user_ref, kind, payload, created_at) VALUES ";
/// The columns of [`EVENTS`].
const EVENT_COLUMNS: usize = 4;

/// Runs one statement over `rows`, binding each row's fields in order, on either engine.
macro_rules! insert_rows {
    ($inner:expr, $sql:expr, $rows:expr, |$q:ident, $r:ident| $bind:expr) => {
        match $inner {
            TxInner::Sqlite(t) => {
                let mut $q = sqlx::query($sql);
                for $r in $rows {
                    $q = $bind;
                }
                $q.execute(&mut **t).await?;
            }
            TxInner::Postgres(t) => {
                let mut $q = sqlx::query($sql);
                for $r in $rows {
                    $q = $bind;
                }
                $q.execute(&mut **t).await?;
            }
        }
    };
}

impl Tx {
    /// Inserts `row` into `notifications` with the transaction's next statement or commit.
    pub(crate) fn defer_notification(&mut self, row: NotificationRow) {
        self.deferred.notifications.push(row);
    }

    /// Appends `row` to the event log with the transaction's next statement or commit.
    pub(crate) fn defer_event(&mut self, row: EventRow) {
        self.deferred.events.push(row);
    }

    /// Writes what the transaction holds back once it is a full statement's worth, so that a
    /// publish to many users does not keep all of them in memory until it commits.
    pub(crate) async fn flush_if_full(&mut self) -> Result<()> {
        if self.deferred.notifications.len() >= MOST_ROWS || self.deferred.events.len() >= MOST_ROWS {
            self.flush().await?;
        }
        Ok(())
    }

    /// Writes what the transaction holds back; [`with_tx!`](crate::with_tx) calls it before
    /// running its body and [`Tx::commit`] before committing. After a failure the transaction
    /// can only be rolled back (dropped): every later flush, and so the commit, fails.
    pub async fn flush(&mut self) -> Result<()> {
        if self.deferred.failed {
            return Err(Error::Internal("an earlier write of this transaction failed".into()));
        }
        if self.deferred.notifications.is_empty() && self.deferred.events.is_empty() {
            return Ok(());
        }
        self.deferred.failed = true;
        let numbered = matches!(self.inner, TxInner::Postgres(_));
        let notifications = std::mem::take(&mut self.deferred.notifications);
        let events = std::mem::take(&mut self.deferred.events);
        for rows in chunks(&notifications) {
            let sql = values(NOTIFICATIONS, NOTIFICATION_COLUMNS, rows.len(), numbered);
            insert_rows!(&mut self.inner, &sql, rows, |q, r| q
                .bind(&r.id)
                .bind(&r.user_ref)
                .bind(&r.origin)
                .bind(r.created)
                .bind(&r.title)
                .bind(&r.description)
                .bind(&r.link)
                .bind(r.severity)
                .bind(&r.topic)
                .bind(&r.scope)
                .bind(&r.icon)
                .bind(&r.metadata));
        }
        for rows in chunks(&events) {
            let sql = values(EVENTS, EVENT_COLUMNS, rows.len(), numbered);
            insert_rows!(&mut self.inner, &sql, rows, |q, r| q
                .bind(&r.user_ref)
                .bind(&r.kind)
                .bind(&r.payload)
                .bind(r.created_at));
        }
        self.deferred.failed = false;
        Ok(())
    }
}

/// Splits `rows` into runs whose lengths are powers of two (at most [`MOST_ROWS`]), largest
/// first: each length is one SQL text, so a handful of prepared statements serve every batch.
fn chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        if rows.is_empty() {
            return None;
        }
        let len = rows.len().min(MOST_ROWS);
        let len = 1usize << len.ilog2();
        let (run, rest) = rows.split_at(len);
        rows = rest;
        Some(run)
    })
}

/// `insert` followed by `rows` tuples of `width` placeholders: numbered from `$1` when
/// `numbered` (PostgreSQL), else anonymous (`?`, SQLite), bound in the order they appear.
///
/// On SQLite, sqlx learns which argument a placeholder takes by asking SQLite for its name,
/// which SQLite finds by walking the statement's list of names from the start: a numbered
/// placeholder costs a walk as long as its number, quadratic over a statement of 3,072 (256
/// rows of 12). Anonymous placeholders have no names, and each takes the next argument.
fn values(insert: &str, width: usize, rows: usize, numbered: bool) -> String {
    let mut sql = String::with_capacity(insert.len() + rows * (width * 7 + 4));
    sql.push_str(insert);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            if numbered {
                sql.push('$');
                sql.push_str(&(row * width + column + 1).to_string());
            } else {
                sql.push('?');
            }
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;
    use crate::{with_pool, with_tx};

    async fn database() -> (Db, std::path::PathBuf) {
        crate::db::scratch_sqlite("deferred", true).await
    }

    /// The `i`th notification: every field set, and different from every other one's, so that
    /// a field written into another's column shows.
    fn notification(i: usize) -> NotificationRow {
        NotificationRow {
            id: format!("n{i:03}"),
            user_ref: Some(format!("user:default/u{i}")),
            origin: format!("external:o{i}"),
            created: 1_000 + i as i64,
            title: format!("Notification {i}"),
            description: Some(format!("description {i}")),
            link: Some(format!("https://example.com/{i}")),
            severity: 1 + (i % 4) as i16,
            topic: Some(format!("topic {i}")),
            scope: Some(format!("scope {i}")),
            icon: Some(format!("icon-{i}")),
            metadata: Some(format!("{{\"i\":{i}}}")),
        }
    }

    fn event(i: usize) -> EventRow {
        EventRow {
            user_ref: (i % 2 == 1).then(|| format!("user:default/u{i}")),
            kind: format!("kind {i}"),
            payload: i.to_string(),
            created_at: 2_000 + i as i64,
        }
    }

    /// More than one statement's worth of rows, in runs of 256, 32, 8 and 4: the statement after
    /// them sees them, and once committed every field is in its column, in the rows' order.
    async fn rows_keep_their_fields_and_order(db: &Db) {
        let mut tx = db.begin().await.unwrap();
        for i in 0..300 {
            tx.defer_notification(notification(i));
            tx.defer_event(event(i));
        }
        let seen = async {
            Ok::<i64, crate::Error>(with_tx!(&mut tx, |c| sqlx::query_scalar("SELECT COUNT(*) FROM notifications")
                .fetch_one(c)
                .await)?)
        }
        .await
        .unwrap();
        assert_eq!(seen, 300, "the statement after the rows sees them");
        tx.defer_event(event(300));
        tx.commit().await.unwrap();
        let notifications: Vec<NotificationRow> = with_pool!(db.reader(), |c| sqlx::query_as(
            "SELECT id, user_ref, origin, created, title, description, link, severity, topic, scope, icon, metadata
             FROM notifications ORDER BY created"
        )
        .fetch_all(c)
        .await)
        .unwrap();
        assert_eq!(notifications, (0..300).map(notification).collect::<Vec<_>>());
        let events: Vec<EventRow> = with_pool!(db.reader(), |c| sqlx::query_as(
            "SELECT user_ref, kind, payload, created_at FROM events ORDER BY id"
        )
        .fetch_all(c)
        .await)
        .unwrap();
        let expected: Vec<_> = (0..=300).map(event).collect();
        assert_eq!(events, expected, "every field in its column, ids in the order logged");
    }

    #[tokio::test]
    async fn held_back_rows_keep_their_fields_and_order_on_sqlite() {
        let (db, dir) = database().await;
        rows_keep_their_fields_and_order(&db).await;
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn held_back_rows_keep_their_fields_and_order_on_postgres() {
        let (db, name) = crate::db::scratch_postgres("deferred").await;
        rows_keep_their_fields_and_order(&db).await;
        crate::db::drop_scratch_postgres(db, name).await;
    }

    #[tokio::test]
    async fn a_transaction_whose_rows_failed_cannot_commit() {
        let (db, dir) = database().await;
        let mut tx = db.begin().await.unwrap();
        tx.defer_notification(notification(1));
        tx.defer_notification(notification(2));
        // The same id twice: the second run's statement fails after the first's succeeded.
        tx.defer_notification(notification(1));
        assert!(tx.flush().await.is_err());
        assert!(tx.flush().await.is_err(), "nothing left to write, but the rows are lost");
        assert!(tx.commit().await.is_err(), "half of the rows must not be committed");
        let stored: i64 =
            with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT COUNT(*) FROM notifications").fetch_one(c).await)
                .unwrap();
        assert_eq!(stored, 0);
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn rows_go_in_runs_of_powers_of_two() {
        let lengths = |n: usize| chunks(&vec![0; n]).map(<[_]>::len).collect::<Vec<_>>();
        assert_eq!(lengths(0), Vec::<usize>::new());
        assert_eq!(lengths(1), [1]);
        assert_eq!(lengths(37), [32, 4, 1]);
        assert_eq!(lengths(256), [256]);
        assert_eq!(lengths(600), [256, 256, 64, 16, 8]);
    }

    #[test]
    fn placeholders_take_every_field_once_in_order() {
        let insert = "INSERT INTO t (a, b) VALUES ";
        assert_eq!(values(insert, 2, 2, true), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
        assert_eq!(values(insert, 2, 2, false), "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
    }
}
