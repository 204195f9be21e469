//! The `search` filter: a case-insensitive substring of a notification's title or
//! description, found through a trigram index (migration 0007) instead of by reading every
//! row of the inbox.
//!
//! On SQLite the index is an FTS5 table with the `trigram` tokenizer: a text quoted as one
//! phrase matches exactly the rows that hold it in either column, in any case. On PostgreSQL
//! the condition stays a `LIKE` on the lower-cased columns, which `pg_trgm`'s GIN indexes
//! answer. A text shorter than three characters has no trigram and is matched by a `LIKE`
//! scan on both engines (on SQLite, `LOWER` folds only ASCII letters).
//!
//! A search's count is one lookup per match. On SQLite the personal matches are looked up in
//! `notification_facets` (migration 0009), a narrow copy of the columns filters read, rather
//! than in the notifications' wide rows, which hold the same matches on about four times as
//! many pages.

use super::{Bind, Filter, Sql};
use crate::db::Backend;
use crate::{Error, Result};

/// The shortest text the trigram index can find.
const TRIGRAM: usize = 3;

/// Rejects a search no stored text can hold: PostgreSQL's text has no NUL character, and
/// SQLite's FTS5 reads a phrase only up to one.
pub(super) fn check(f: &Filter) -> Result<()> {
    match &f.search {
        Some(text) if text.contains('\0') => Err(Error::Invalid("search must not contain NUL characters".into())),
        _ => Ok(()),
    }
}

/// Whether SQLite finds `text` through its search index (else by a scan).
pub(super) fn indexed(text: &str) -> bool {
    text.chars().count() >= TRIGRAM
}

/// A condition on the notification `n`: its title or description holds `text`, ignoring
/// case; and whether the rows should be found from the search index's matches, so that
/// the caller keeps the planner off the inbox's own indexes.
///
/// SQLite has no statistics to choose between a user's inbox index and the matches, so the
/// caller chooses with the count (see `notifications::list`): with `walk` (many matches) the
/// inbox is walked in its order and each row is looked up among the matches; otherwise the
/// matches are read and sorted.
pub(super) fn condition(sql: &mut Sql, text: &str, walk: bool) -> (String, bool) {
    if sql.backend == Backend::Sqlite && indexed(text) {
        // One FTS5 phrase: quotes inside it are doubled, nothing else is syntax.
        let phrase = sql.bind(Bind::Text(format!("\"{}\"", text.replace('"', "\"\""))));
        // `+ 0` keeps the planner from finding the rows through their rowids.
        let rowid = if walk { "n.rowid + 0" } else { "n.rowid" };
        let condition =
            format!("{rowid} IN (SELECT rowid FROM notifications_search WHERE notifications_search MATCH {phrase})");
        return (condition, !walk);
    }
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let p = sql.bind(Bind::Text(format!("%{escaped}%")));
    let condition =
        format!("(LOWER(n.title) LIKE {p} ESCAPE '\\' OR LOWER(COALESCE(n.description, '')) LIKE {p} ESCAPE '\\')");
    (condition, false)
}
