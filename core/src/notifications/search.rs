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
//! instance's indexer adds them a few hundred at a time ([`catch_up`]), and a search first
//! indexes whatever the indexer has not reached yet ([`indexed_now`]), so it finds every
//! notification stored before it began, with the index's own matching (the trigram
//! tokenizer's case folding, which nothing outside SQLite reproduces exactly). Searches are
//! rare next to publishes: they take the writer for a moment instead of every publish.
//!
//! A search's count is one lookup per match. On SQLite the personal matches are looked up in
//! `notification_facets` (migration 0009), a narrow copy of the columns filters read, rather
//! than in the notifications' wide rows, which hold the same matches on about four times as
//! many pages.

use super::{Bind, Filter, Sql};
use crate::db::{Backend, Db};
use crate::{Result, with_pool, with_tx};

/// The shortest text the trigram index can find.
const TRIGRAM: usize = 3;

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

/// Before a search on SQLite: indexes the notifications the instance's indexer has not
/// reached yet, so that the search's reads, which begin after this returns, find them all.
/// Nothing to do on PostgreSQL, for texts the index cannot find, or when nothing is behind
/// (one read).
pub(super) async fn indexed_now(db: &Db, f: &Filter) -> Result<()> {
    if f.search.as_deref().is_some_and(indexed) {
        catch_up_search(db).await?;
    }
    Ok(())
}

/// Brings SQLite's search index up to date with the notifications stored since it last caught
/// up, [`CATCH_UP_BATCH`] to a transaction, and returns how many it added. The instance runs
/// it in the background, and a search runs it first ([`indexed_now`]). Nothing to do on
/// PostgreSQL.
pub async fn catch_up_search(db: &Db) -> Result<u64> {
    let mut added = 0;
    loop {
        let n = catch_up(db, CATCH_UP_BATCH).await?;
        added += n;
        if n < CATCH_UP_BATCH as u64 {
            return Ok(added);
        }
        // Between batches, the publishes queued for the writer go first.
        tokio::task::yield_now().await;
    }
}

/// Notifications the indexer adds in one transaction: enough that the index's work per
/// notification is several times less than one at a time, few enough that the writer, which
/// publishes wait for, is held for a few milliseconds only.
const CATCH_UP_BATCH: i64 = 256;

/// Adds to SQLite's search index up to `most` of the notifications stored since it last
/// caught up, oldest first, in one transaction; returns how many. On PostgreSQL, whose
/// trigram indexes are written with the rows, nothing is behind.
async fn catch_up(db: &Db, most: i64) -> Result<u64> {
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
    use crate::with_pool;
    use herald_model::EntityRef;

    async fn database() -> (Db, std::path::PathBuf) {
        crate::db::scratch_sqlite("search", true).await
    }

    fn alice() -> EntityRef {
        "user:default/alice".parse().unwrap()
    }

    /// Stores a notification for `user` (`None`: a broadcast) straight into the table, as the
    /// CLI or another instance would, with nobody indexing it.
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

    /// The rowids the index itself finds for `text`, in order.
    async fn in_index(db: &Db, text: &str) -> Vec<i64> {
        let mut rowids: Vec<i64> = with_pool!(db.reader(), |c| sqlx::query_scalar(
            "SELECT rowid FROM notifications_search WHERE notifications_search MATCH $1"
        )
        .bind(format!("\"{text}\""))
        .fetch_all(c)
        .await)
        .unwrap();
        rowids.sort();
        rowids
    }

    /// The index holds exactly the notifications at or below the mark, each with its text as
    /// it is now: its structure is sound, and a phrase finds the rows a scan finds. (FTS5's
    /// check against the table itself would count the rows above the mark as missing. The
    /// texts are ones whose case Rust's `to_lowercase` folds as the index does.)
    async fn assert_index_agrees(db: &Db) {
        run(db, "INSERT INTO notifications_search (notifications_search) VALUES ('integrity-check')").await;
        let below = "SELECT rowid, title, description FROM notifications
                     WHERE rowid <= (SELECT indexed FROM search_progress)";
        let rows: Vec<(i64, String, Option<String>)> =
            with_pool!(db.reader(), |c| sqlx::query_as(below).fetch_all(c).await).unwrap();
        for text in ["über", "deploy", "about", "renamed", "again"] {
            let holds = |s: &str| s.to_lowercase().contains(text);
            let scanned: Vec<i64> = rows
                .iter()
                .filter(|(_, title, description)| holds(title) || description.as_deref().is_some_and(holds))
                .map(|(rowid, ..)| *rowid)
                .collect();
            assert_eq!(in_index(db, text).await, scanned, "{text:?}");
        }
    }

    #[tokio::test]
    async fn a_search_first_indexes_what_the_indexer_has_not_reached() {
        let (db, dir) = database().await;
        store(&db, "a1", Some("user:default/alice"), "Über deploy").await;
        store(&db, "b1", Some("user:default/bob"), "über secret").await;
        store(&db, "x1", None, "ÜBER everyone").await;
        store(&db, "a2", Some("user:default/alice"), "Something else").await;
        assert_eq!(indexed_up_to(&db).await, 0);

        // Any case, beyond ASCII, never another user's; found through the index.
        let expected = (vec!["ÜBER everyone".to_string(), "Über deploy".to_string()], 2);
        assert_eq!(found(&db, "üBer").await, expected);
        assert_eq!(indexed_up_to(&db).await, 4, "the search indexed what was behind");
        assert_eq!(found(&db, "about something").await, (vec!["Something else".to_string()], 1));
        assert_eq!(catch_up_search(&db).await.unwrap(), 0, "nothing left for the indexer");

        store(&db, "a3", Some("user:default/alice"), "über later").await;
        assert_eq!(in_index(&db, "über").await, [1, 2, 3], "not indexed by being stored");
        assert_index_agrees(&db).await;
        assert_eq!(found(&db, "über").await.0, ["über later", "ÜBER everyone", "Über deploy"]);
        assert_eq!(indexed_up_to(&db).await, 5);
        assert_index_agrees(&db).await;
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn the_index_follows_changes_on_either_side_of_its_mark() {
        let (db, dir) = database().await;
        for k in 1..=3 {
            store(&db, &format!("i{k}"), Some("user:default/alice"), &format!("deploy {k}")).await;
        }
        catch_up_search(&db).await.unwrap();
        for k in 4..=6 {
            store(&db, &format!("i{k}"), Some("user:default/alice"), &format!("deploy {k}")).await;
        }
        // Rows 1–3 are indexed, 4–6 are not: rename and delete one of each. The triggers must
        // change the index for the first two only (FTS5 cannot delete what it does not hold).
        run(&db, "UPDATE notifications SET title = 'renamed ' || id, description = NULL WHERE id IN ('i1', 'i4')")
            .await;
        run(&db, "DELETE FROM notifications WHERE id IN ('i2', 'i5')").await;
        assert_eq!(indexed_up_to(&db).await, 3);
        assert_index_agrees(&db).await;
        let titles = |titles: &[&str]| (titles.iter().map(|t| t.to_string()).collect::<Vec<_>>(), titles.len() as i64);
        assert_eq!(found(&db, "deploy").await, titles(&["deploy 6", "deploy 3"]));
        assert_eq!(found(&db, "renamed").await, titles(&["renamed i4", "renamed i1"]));
        assert_eq!(indexed_up_to(&db).await, 6);
        assert_index_agrees(&db).await;

        // With the newest row deleted too, the next takes the rowid after the highest left (5),
        // at or below the mark: indexed as it is stored.
        run(&db, "DELETE FROM notifications WHERE id = 'i6'").await;
        store(&db, "again", Some("user:default/alice"), "deploy again").await;
        assert_eq!(in_index(&db, "again").await, [5]);
        assert_index_agrees(&db).await;
        assert_eq!(found(&db, "again").await, titles(&["deploy again"]));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn a_multi_row_insert_straddling_the_mark_is_indexed_below_it_only() {
        let (db, dir) = database().await;
        for k in 1..=4 {
            store(&db, &format!("i{k}"), Some("user:default/alice"), &format!("deploy {k}")).await;
        }
        catch_up_search(&db).await.unwrap();
        store(&db, "i5", Some("user:default/alice"), "deploy 5").await;
        store(&db, "i6", Some("user:default/alice"), "deploy 6").await;
        // Rows 3–6 deleted (two indexed, two not): the next rows take rowids 3–6 again, as one
        // statement, the way a batch's held-back inserts are written.
        run(&db, "DELETE FROM notifications WHERE id IN ('i3', 'i4', 'i5', 'i6')").await;
        run(
            &db,
            "INSERT INTO notifications (id, user_ref, origin, created, title, severity) VALUES
             ('r3', 'user:default/alice', 'external:test', 10, 'renamed 3', 2),
             ('r4', 'user:default/alice', 'external:test', 11, 'renamed 4', 2),
             ('r5', 'user:default/alice', 'external:test', 12, 'renamed 5', 2),
             ('r6', 'user:default/alice', 'external:test', 13, 'renamed 6', 2)",
        )
        .await;
        assert_eq!(indexed_up_to(&db).await, 4);
        assert_eq!(in_index(&db, "renamed").await, [3, 4], "at or below the mark, indexed as stored");
        assert_index_agrees(&db).await;
        assert_eq!(found(&db, "renamed").await.1, 4);
        assert_eq!(in_index(&db, "renamed").await, [3, 4, 5, 6]);
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
        assert_index_agrees(&db).await;
        assert_eq!(found(&db, "deploy").await.1, 600);
        assert_eq!(indexed_up_to(&db).await, 600);
        assert_index_agrees(&db).await;
        std::fs::remove_dir_all(dir).ok();
    }
}
