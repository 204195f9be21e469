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
//! SQLite's index is written behind the notifications (migration 0010): indexing them in the
//! transaction that stores them cost each transaction a new index segment, about as much
//! writing as the notifications themselves, on the one writer every publish waits for. The
//! instance's indexer adds them a few hundred at a time ([`catch_up`]); a search reads the
//! few stored since ([`Unindexed`]), so it finds every notification at once.
//!
//! A search's count is one lookup per match. On SQLite the personal matches are looked up in
//! `notification_facets` (migration 0009), a narrow copy of the columns filters read, rather
//! than in the notifications' wide rows, which hold the same matches on about four times as
//! many pages.

use herald_model::EntityRef;

use super::{Bind, Filter, Sql};
use crate::db::{Backend, Db};
use crate::{Error, Result, with_pool, with_tx};

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
/// the caller keeps the planner off the inbox's own indexes. `unindexed` are the matches the
/// index does not hold yet ([`unindexed`]).
///
/// SQLite has no statistics to choose between a user's inbox index and the matches, so the
/// caller chooses with the count (see `notifications::list`): with `walk` (many matches) the
/// inbox is walked in its order and each row is looked up among the matches; otherwise the
/// matches are read and sorted.
pub(super) fn condition(sql: &mut Sql, text: &str, walk: bool, unindexed: &Unindexed) -> (String, bool) {
    if sql.backend == Backend::Sqlite && indexed(text) {
        // One FTS5 phrase: quotes inside it are doubled, nothing else is syntax.
        let phrase = sql.bind(Bind::Text(format!("\"{}\"", text.replace('"', "\"\""))));
        let mut matches = format!("SELECT rowid FROM notifications_search WHERE notifications_search MATCH {phrase}");
        if !unindexed.0.is_empty() {
            // One JSON array, so that the statement's text (and its prepared form) does not
            // depend on how many there are.
            let rowids = sql.bind(Bind::Text(serde_json::to_string(&unindexed.0).expect("integers serialize")));
            matches.push_str(&format!(" UNION ALL SELECT value FROM json_each({rowids})"));
        }
        // `+ 0` keeps the planner from finding the rows through their rowids.
        let rowid = if walk { "n.rowid + 0" } else { "n.rowid" };
        return (format!("{rowid} IN ({matches})"), !walk);
    }
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let p = sql.bind(Bind::Text(format!("%{escaped}%")));
    let condition =
        format!("(LOWER(n.title) LIKE {p} ESCAPE '\\' OR LOWER(COALESCE(n.description, '')) LIKE {p} ESCAPE '\\')");
    (condition, false)
}

/// The rowids of the notifications a search for `f` must find that SQLite's index does not
/// hold yet: the user's own and the broadcasts stored since the indexer last caught up whose
/// title or description holds the text. Empty on PostgreSQL and for texts the index cannot
/// find.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Unindexed(pub(super) Vec<i64>);

/// Reads the notifications stored since the index last caught up and keeps those a search
/// for `f` finds (see [`Unindexed`]). The indexer keeps them few: those of the last fraction
/// of a second.
pub(super) async fn unindexed(db: &Db, user: &EntityRef, f: &Filter) -> Result<Unindexed> {
    let Some(text) = f.search.as_deref().filter(|t| db.backend() == Backend::Sqlite && indexed(t)) else {
        return Ok(Unindexed::default());
    };
    let rows: Vec<(i64, String, Option<String>)> = with_pool!(db.reader(), |c| sqlx::query_as(
        "SELECT rowid, title, description FROM notifications
         WHERE rowid > (SELECT indexed FROM search_progress) AND COALESCE(user_ref, $1) = $1"
    )
    .bind(user.as_str())
    .fetch_all(c)
    .await)?;
    let text = fold(text);
    let holds = |s: &str| fold(s).contains(&text);
    Ok(Unindexed(
        rows.into_iter()
            .filter(|(_, title, description)| holds(title) || description.as_deref().is_some_and(holds))
            .map(|(rowid, ..)| rowid)
            .collect(),
    ))
}

/// Case folded as the trigram index folds it (FTS5's Unicode case folding, without removing
/// diacritics), so that a notification is found by the same texts before and after it is
/// indexed.
fn fold(s: &str) -> String {
    s.to_lowercase()
}

/// Notifications the indexer adds in one transaction: enough that the index's work per
/// notification is several times less than one at a time, few enough that the writer, which
/// publishes wait for, is held for a few milliseconds only.
pub(super) const CATCH_UP_BATCH: i64 = 256;

/// Adds to SQLite's search index up to `most` of the notifications stored since it last
/// caught up, oldest first, in one transaction; returns how many. On PostgreSQL, whose
/// trigram indexes are written with the rows, nothing is behind.
pub(super) async fn catch_up(db: &Db, most: i64) -> Result<u64> {
    const BEHIND: &str = "SELECT rowid FROM notifications WHERE rowid > (SELECT indexed FROM search_progress)";
    if db.backend() != Backend::Sqlite {
        return Ok(0);
    }
    // Asked through a reader first: an instance with nothing to index never takes the writer.
    let any = format!("SELECT EXISTS ({BEHIND})");
    let behind: bool = with_pool!(db.reader(), |c| sqlx::query_scalar(&any).fetch_one(c).await)?;
    if !behind {
        return Ok(0);
    }
    let mut tx = db.begin().await?;
    let next = format!("SELECT COUNT(*), MAX(rowid) FROM ({BEHIND} ORDER BY rowid LIMIT $1) AS b");
    let (count, upto): (i64, Option<i64>) = with_tx!(&mut tx, |c| sqlx::query_as(&next).bind(most).fetch_one(c).await)?;
    let Some(upto) = upto else { return Ok(0) };
    with_tx!(&mut tx, |c| sqlx::query(
        "INSERT INTO notifications_search (rowid, title, description)
         SELECT rowid, title, description FROM notifications
         WHERE rowid > (SELECT indexed FROM search_progress) AND rowid <= $1"
    )
    .bind(upto)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    with_tx!(&mut tx, |c| sqlx::query("UPDATE search_progress SET indexed = $1")
        .bind(upto)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    tx.commit().await?;
    Ok(count as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifications::{ListQuery, list};

    async fn database() -> (Db, std::path::PathBuf) {
        let dir = std::env::temp_dir().join(format!("herald-search-{}", uuid::Uuid::new_v4().simple()));
        let db = Db::connect(&format!("sqlite:{}", dir.join("t.db").display()), &Default::default()).await.unwrap();
        db.migrate().await.unwrap();
        (db, dir)
    }

    fn alice() -> EntityRef {
        "user:default/alice".parse().unwrap()
    }

    /// Stores a notification for `user` (`None`: a broadcast) straight into the table.
    async fn store(db: &Db, id: &str, user: Option<&str>, title: &str) {
        with_pool!(db.writer(), |c| sqlx::query(
            "INSERT INTO notifications (id, user_ref, origin, created, title, description, severity)
             VALUES ($1, $2, 'external:test', (SELECT COUNT(*) FROM notifications), $3, 'about ' || $3, 2)"
        )
        .bind(id)
        .bind(user)
        .bind(title)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
        .unwrap();
    }

    async fn run(db: &Db, statement: &str) {
        with_pool!(db.writer(), |c| sqlx::query(statement).execute(c).await.map(|r| r.rows_affected())).unwrap();
    }

    /// What alice finds searching `text`: the titles, newest first, and the total.
    async fn found(db: &Db, text: &str) -> (Vec<String>, i64) {
        let q = ListQuery { filter: Filter { search: Some(text.into()), ..Filter::default() }, ..ListQuery::default() };
        let (page, total) = list(db, &alice(), &q).await.unwrap();
        (page.into_iter().map(|n| n.payload.title).collect(), total)
    }

    async fn indexed_up_to(db: &Db) -> i64 {
        with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT indexed FROM search_progress").fetch_one(c).await)
            .unwrap()
    }

    /// The index holds exactly the notifications at or below the mark, each with its text as
    /// it is now: its structure is sound, and a phrase finds the rows a scan finds. (FTS5's
    /// check against the table itself would count the rows above the mark as missing.)
    async fn assert_index_agrees(db: &Db) {
        run(db, "INSERT INTO notifications_search (notifications_search) VALUES ('integrity-check')").await;
        let below = "SELECT rowid, title, description FROM notifications
                     WHERE rowid <= (SELECT indexed FROM search_progress)";
        let rows: Vec<(i64, String, Option<String>)> =
            with_pool!(db.reader(), |c| sqlx::query_as(below).fetch_all(c).await).unwrap();
        for text in ["über", "deploy", "about", "renamed", "again"] {
            let mut indexed: Vec<i64> = with_pool!(db.reader(), |c| sqlx::query_scalar(
                "SELECT rowid FROM notifications_search WHERE notifications_search MATCH $1"
            )
            .bind(format!("\"{text}\""))
            .fetch_all(c)
            .await)
            .unwrap();
            indexed.sort();
            let holds = |s: &str| fold(s).contains(text);
            let scanned: Vec<i64> = rows
                .iter()
                .filter(|(_, title, description)| holds(title) || description.as_deref().is_some_and(holds))
                .map(|(rowid, ..)| *rowid)
                .collect();
            assert_eq!(indexed, scanned, "{text:?}");
        }
    }

    #[tokio::test]
    async fn a_search_finds_notifications_before_and_after_they_are_indexed() {
        let (db, dir) = database().await;
        store(&db, "a1", Some("user:default/alice"), "Über deploy").await;
        store(&db, "b1", Some("user:default/bob"), "über secret").await;
        store(&db, "x1", None, "ÜBER everyone").await;
        store(&db, "a2", Some("user:default/alice"), "Something else").await;
        assert_eq!(indexed_up_to(&db).await, 0);

        // Not indexed yet: read and matched in any case, beyond ASCII; never another user's.
        let filter = Filter { search: Some("üBer".into()), ..Filter::default() };
        assert_eq!(unindexed(&db, &alice(), &filter).await.unwrap(), Unindexed(vec![1, 3]));
        let expected = (vec!["ÜBER everyone".to_string(), "Über deploy".to_string()], 2);
        assert_eq!(found(&db, "üBer").await, expected);
        assert_eq!(found(&db, "about something").await, (vec!["Something else".to_string()], 1));

        assert_eq!(crate::notifications::catch_up_search(&db).await.unwrap(), 4);
        assert_eq!(indexed_up_to(&db).await, 4);
        assert_eq!(unindexed(&db, &alice(), &filter).await.unwrap(), Unindexed::default());
        assert_eq!(found(&db, "üBer").await, expected, "the same, found through the index");
        assert_eq!(crate::notifications::catch_up_search(&db).await.unwrap(), 0, "nothing left");
        assert_index_agrees(&db).await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn the_index_follows_changes_on_either_side_of_its_mark() {
        let (db, dir) = database().await;
        for k in 1..=3 {
            store(&db, &format!("i{k}"), Some("user:default/alice"), &format!("deploy {k}")).await;
        }
        crate::notifications::catch_up_search(&db).await.unwrap();
        for k in 4..=6 {
            store(&db, &format!("i{k}"), Some("user:default/alice"), &format!("deploy {k}")).await;
        }
        // Rows 1–3 are indexed, 4–6 are not: rename and delete one of each.
        run(&db, "UPDATE notifications SET title = 'renamed ' || id, description = NULL WHERE id IN ('i1', 'i4')")
            .await;
        run(&db, "DELETE FROM notifications WHERE id IN ('i2', 'i5')").await;
        let deploys = |titles: &[&str]| (titles.iter().map(|t| t.to_string()).collect::<Vec<_>>(), titles.len() as i64);
        for pass in ["before catching up", "after"] {
            assert_eq!(found(&db, "deploy").await, deploys(&["deploy 6", "deploy 3"]), "{pass}");
            assert_eq!(found(&db, "renamed").await, deploys(&["renamed i4", "renamed i1"]), "{pass}");
            assert_index_agrees(&db).await;
            crate::notifications::catch_up_search(&db).await.unwrap();
        }

        // With the newest row deleted too, the next takes the rowid after the highest left (5),
        // at or below the mark: indexed at once.
        assert_eq!(indexed_up_to(&db).await, 6);
        run(&db, "DELETE FROM notifications WHERE id = 'i6'").await;
        store(&db, "again", Some("user:default/alice"), "deploy again").await;
        let rowid: i64 =
            with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT rowid FROM notifications WHERE id = 'again'")
                .fetch_one(c)
                .await)
            .unwrap();
        assert_eq!(rowid, 5);
        let filter = Filter { search: Some("again".into()), ..Filter::default() };
        assert_eq!(unindexed(&db, &alice(), &filter).await.unwrap(), Unindexed::default());
        assert_eq!(found(&db, "again").await, deploys(&["deploy again"]));
        assert_index_agrees(&db).await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn catching_up_goes_a_batch_to_a_transaction_oldest_first() {
        let (db, dir) = database().await;
        run(
            &db,
            "INSERT INTO notifications (id, user_ref, origin, created, title, severity)
             WITH RECURSIVE i (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < 600)
             SELECT 'n' || k, 'user:default/alice', 'external:test', k, 'deploy ' || k, 2 FROM i",
        )
        .await;
        assert_eq!(catch_up(&db, CATCH_UP_BATCH).await.unwrap(), 256);
        assert_eq!(indexed_up_to(&db).await, 256);
        assert_eq!(found(&db, "deploy").await.1, 600, "half indexed, half read");
        assert_eq!(crate::notifications::catch_up_search(&db).await.unwrap(), 344);
        assert_eq!(indexed_up_to(&db).await, 600);
        assert_eq!(found(&db, "deploy").await.1, 600);
        assert_index_agrees(&db).await;
        std::fs::remove_dir_all(dir).ok();
    }
}
