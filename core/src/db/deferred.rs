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
use crate::Result;

/// Most rows in one statement: 12 × 256 parameters stay far under both engines' limits
/// (SQLite 32,766, PostgreSQL 65,535).
const MOST_ROWS: usize = 256;

/// A new row of `notifications`.
#[derive(Debug)]
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
}

impl Deferred {
    pub(crate) fn is_empty(&self) -> bool {
        self.notifications.is_empty() && self.events.is_empty()
    }
}

const NOTIFICATIONS: &str = "INSERT INTO notifications
    (id, user_ref, origin, created, title, description, link, severity, topic, scope, icon, metadata) VALUES ";
const EVENTS: &str = "INSERT INTO events (user_ref, kind, payload, created_at) VALUES ";

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

    /// Writes what the transaction holds back; [`with_tx!`](crate::with_tx) calls it before
    /// every statement and [`Tx::commit`] before committing.
    pub async fn flush(&mut self) -> Result<()> {
        if self.deferred.is_empty() {
            return Ok(());
        }
        let Deferred { notifications, events } = std::mem::take(&mut self.deferred);
        for rows in chunks(&notifications) {
            let sql = values(NOTIFICATIONS, 12, rows.len());
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
            let sql = values(EVENTS, 4, rows.len());
            insert_rows!(&mut self.inner, &sql, rows, |q, r| q
                .bind(&r.user_ref)
                .bind(&r.kind)
                .bind(&r.payload)
                .bind(r.created_at));
        }
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

/// `insert` followed by `rows` tuples of `width` placeholders, numbered from `$1`.
fn values(insert: &str, width: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(insert.len() + rows * width * 5);
    sql.push_str(insert);
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for column in 0..width {
            if column > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&(row * width + column + 1).to_string());
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn placeholders_number_every_field_once() {
        assert_eq!(values("INSERT INTO t (a, b) VALUES ", 2, 2), "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4)");
    }
}
