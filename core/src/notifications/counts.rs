//! The inbox's counts from the per-user tallies in `inbox_counts` (migration 0006) instead of
//! a scan over every notification of the user.
//!
//! Triggers keep the tallies exact, per user and per bucket: read, saved, archived, snoozed
//! (set or not), severity and topic. A count whose filter only names those dimensions is a
//! sum over a few dozen rows, however large the inbox. Two things the tallies cannot know are
//! handled here: a snooze that is due but not yet woken by the timer still counts as snoozed
//! in its bucket, so those few rows are counted from the notifications themselves (through
//! `notifications_user_snoozed`).
//!
//! Writers of notifications start their transactions with [`crate::db::Db::begin_inbox`], which on
//! PostgreSQL takes the event-log lock before any row is touched: the triggers' updates of a
//! busy user's tallies then never wait on each other, and cannot deadlock.
//!
//! Broadcasts are tallied once for everyone, by severity and topic, in `broadcast_counts`
//! (migration 0008); each user's state of them lives in `broadcast_status`, a row per
//! broadcast the user touched. A user's count of broadcasts is the tally of those that match
//! the filter's kind, less the touched ones whose state the filter excludes (or, when a
//! filter asks for a state an untouched broadcast lacks, such as read, only the touched ones
//! that have it): the work grows with what the user touched, not with every broadcast.

use super::{Archived, Bind, Filter, Snoozed, Sql, state_conditions};

/// Whether the personal half of a count under `f` can come from the tallies. Search and
/// dates are not dimensions of the tallies; snoozed views are counted from the snoozed
/// rows' own index.
pub(super) fn covers(f: &Filter) -> bool {
    f.search.is_none() && f.created_after.is_none() && f.snoozed != Snoozed::Only
}

/// The tallies of the user bound as `$1`.
const TALLIES: &str =
    "(SELECT read, saved, archived, snoozed, severity, topic, n FROM inbox_counts WHERE user_ref = $1) AS c";

/// Conditions of `f` on the tallies' columns (prefix `c.`) or a notification's (prefix
/// `n.`), snoozing aside.
fn conditions(sql: &mut Sql, f: &Filter, tallies: bool) -> Vec<String> {
    let flag = |column: &str, set: bool| {
        if tallies {
            format!("c.{column} = {}", i32::from(set))
        } else {
            format!("n.{column} {}", if set { "IS NOT NULL" } else { "IS NULL" })
        }
    };
    let mut c = Vec::new();
    if let Some(r) = f.read {
        c.push(flag("read", r));
    }
    if let Some(s) = f.saved {
        c.push(flag("saved", s));
    }
    match f.archived {
        Archived::Exclude => c.push(flag("archived", false)),
        Archived::Only => c.push(flag("archived", true)),
        Archived::Any => {}
    }
    c.extend(kind(sql, f, if tallies { "c" } else { "n" }));
    c
}

/// Conditions of `f` on a notification's kind, its severity and topic, in the columns of the
/// table aliased `p` (a tally's or a notification's).
fn kind(sql: &mut Sql, f: &Filter, p: &str) -> Vec<String> {
    let mut c = Vec::new();
    if let Some(s) = f.minimum_severity {
        c.push(format!("{p}.severity >= {}", super::severity_rank(s)));
    }
    if let Some(t) = &f.topic {
        c.push(format!("{p}.topic = {}", sql.bind(Bind::Text(t.clone()))));
    }
    c
}

/// `conds` joined by AND; true when there are none.
pub(super) fn and(conds: &[String]) -> String {
    if conds.is_empty() { "1 = 1".into() } else { conds.join(" AND ") }
}

/// The due snoozes of the user `$1` matching `f`: still tallied as snoozed, already back in
/// the inbox.
fn due(sql: &mut Sql, f: &Filter) -> String {
    let conds = conditions(sql, f, false);
    let now = sql.now();
    format!(
        "SELECT n.topic AS topic FROM notifications n
         WHERE n.user_ref = $1 AND n.snoozed_until IS NOT NULL AND n.snoozed_until <= {now} AND {}",
        and(&conds)
    )
}

/// A scalar SQL expression: how many of the user `$1`'s notifications match `f`, own and
/// broadcast, which [`covers`] must accept.
pub(super) fn total(sql: &mut Sql, f: &Filter) -> String {
    let personal = personal(sql, f);
    format!("{personal} + {}", broadcasts(sql, f))
}

/// A scalar SQL expression: how many of the user `$1`'s own notifications match `f`, which
/// [`covers`] must accept.
fn personal(sql: &mut Sql, f: &Filter) -> String {
    debug_assert!(covers(f));
    let mut conds = conditions(sql, f, true);
    let tallied = |conds: &[String]| {
        format!("(SELECT CAST(COALESCE(SUM(c.n), 0) AS BIGINT) FROM {TALLIES} WHERE {})", and(conds))
    };
    match f.snoozed {
        Snoozed::Any => tallied(&conds),
        _ => {
            conds.push("c.snoozed = 0".into());
            let due = due(sql, f);
            format!("({} + (SELECT COUNT(*) FROM ({due}) AS d))", tallied(&conds))
        }
    }
}

/// A query for the distinct topics ('' for none) of the user `$1`'s own notifications
/// matching `f`, which [`covers`] must accept.
pub(super) fn topics(sql: &mut Sql, f: &Filter) -> String {
    debug_assert!(covers(f));
    let mut conds = conditions(sql, f, true);
    if f.snoozed == Snoozed::Any {
        return format!(
            "SELECT c.topic AS topic FROM {TALLIES} WHERE {} GROUP BY c.topic HAVING SUM(c.n) > 0",
            and(&conds)
        );
    }
    conds.push("c.snoozed = 0".into());
    let due = due(sql, f);
    format!(
        "SELECT c.topic AS topic FROM {TALLIES} WHERE {} GROUP BY c.topic HAVING SUM(c.n) > 0
         UNION SELECT COALESCE(d.topic, '') FROM ({due}) AS d",
        and(&conds)
    )
}

/// A scalar SQL expression: how many broadcasts the user `$1` sees under `f`, which
/// [`covers`] must accept.
fn broadcasts(sql: &mut Sql, f: &Filter) -> String {
    debug_assert!(covers(f));
    let tallied = kind(sql, f, "c");
    let touched_kind = kind(sql, f, "n");
    let now = sql.now();
    let state = and(&state_conditions(f, "s", &now));
    // `CROSS JOIN` makes SQLite, which has no statistics, start from the user's state rows;
    // left to choose, it may walk every broadcast of a severity instead.
    let touched = format!(
        "SELECT COUNT(*) FROM broadcast_status s CROSS JOIN notifications n
         WHERE s.user_ref = $1 AND n.id = s.notification_id AND n.user_ref IS NULL AND {}",
        and(&touched_kind)
    );
    // A broadcast the user never touched is unread, not saved, not archived, not snoozed.
    let untouched_match = f.read != Some(true) && f.saved != Some(true) && f.archived != Archived::Only;
    if untouched_match {
        format!(
            "((SELECT CAST(COALESCE(SUM(c.n), 0) AS BIGINT) FROM broadcast_counts c WHERE {})
              - ({touched} AND NOT ({state})))",
            and(&tallied)
        )
    } else {
        format!("({touched} AND {state})")
    }
}
