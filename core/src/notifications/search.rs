//! The `search` filter: a case-insensitive substring of a notification's title or
//! description, found through a trigram index (migration 0007) instead of by reading every
//! row of the inbox.
//!
//! On SQLite the index is an FTS5 table with the `trigram` tokenizer: a text quoted as one
//! phrase matches exactly the rows that hold it in either column, in any case. On PostgreSQL
//! the condition stays a `LIKE` on the lower-cased columns, which `pg_trgm`'s GIN indexes
//! answer: one over the personal notifications that holds each row's recipient beside its
//! trigrams (`btree_gin`, PostgreSQL's migration 0010), so that a user's search reads and
//! rechecks only that user's matches, and one over the broadcasts. A text shorter than three
//! characters has no trigram and is matched by a `LIKE` scan on both engines (on SQLite,
//! `LOWER` folds only ASCII letters).
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
//! SQLite's index is keyed by owner (migration 0011): one user's matches, or the broadcasts',
//! are one range of keys, which FTS5 reads without looking anything up, and an archived
//! notification's key lies in its own part of its owner's range. Owners are numbered as they
//! are first indexed; those that come after the numbers ran out share one last range
//! (migration 0013), from which a search keeps the user's own rows. So a search that filters
//! only on archiving and snoozing, the inbox's own view, is counted from the index alone
//! ([`count`]): the matches in the range, less those snoozed now (found through the snoozed
//! rows' index) and, for broadcasts, less those the user archived or snoozed (found through
//! the user's state rows). A search with other conditions looks each of the user's matches up
//! in `notification_facets` (migration 0009), a narrow copy of the columns filters read,
//! rather than in the notifications' wide rows.

use super::{Archived, Bind, Filter, ListQuery, OrderField, Snoozed, Sql, state_conditions};
use crate::db::{Backend, Db};
use crate::{Result, with_pool, with_tx};
use herald_model::{EntityRef, Notification};

/// The shortest text the trigram index can find.
const TRIGRAM: usize = 3;

/// Whether SQLite finds `text` through its search index (else by a scan).
pub(super) fn indexed(text: &str) -> bool {
    text.chars().count() >= TRIGRAM
}

/// A search's condition on each half of the inbox: on the user's own notifications `n` and on
/// the broadcasts `n`.
pub(super) struct Condition {
    /// On the user's own notifications: among the user's matches.
    pub personal: String,
    /// On the broadcasts: among the broadcasts' matches.
    pub broadcast: String,
    /// Whether the rows should be found from the index's matches, so that the caller keeps the
    /// planner off the inbox's own indexes.
    pub from_matches: bool,
}

/// The conditions on a notification `n` that its title or description holds `text`, ignoring
/// case. `archived` is the filter's: the user's matches are read from that part of the user's
/// range only, and with `newest` from that key up only (see [`newest_page`]).
///
/// SQLite has no statistics to choose between a user's inbox index and the matches, so the
/// caller chooses with the count (see `notifications::list`): with `walk` (many matches) the
/// inbox is walked in its order and each row is looked up among the matches; otherwise the
/// matches are read and sorted.
pub(super) fn condition(sql: &mut Sql, text: &str, walk: bool, archived: Archived, newest: Option<i64>) -> Condition {
    if sql.backend == Backend::Sqlite && indexed(text) {
        let phrase = phrase(sql, text);
        // `+ 0` keeps the planner from finding the rows through their rowids.
        let rowid = if walk { "n.rowid + 0" } else { "n.rowid" };
        return Condition {
            personal: format!("{rowid} IN ({})", matches(sql, &phrase, Owner::User, archived, newest)),
            broadcast: format!("{rowid} IN ({})", matches(sql, &phrase, Owner::Broadcasts, Archived::Any, None)),
            from_matches: !walk,
        };
    }
    let escaped = text.to_lowercase().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    let p = sql.bind(Bind::Text(format!("%{escaped}%")));
    let condition =
        format!("(LOWER(n.title) LIKE {p} ESCAPE '\\' OR LOWER(COALESCE(n.description, '')) LIKE {p} ESCAPE '\\')");
    Condition { personal: condition.clone(), broadcast: condition, from_matches: false }
}

/// Binds `text` as one FTS5 phrase ([`quoted`]).
fn phrase(sql: &mut Sql, text: &str) -> String {
    sql.bind(Bind::Text(quoted(text)))
}

/// `text` as one FTS5 phrase: quotes inside it are doubled, nothing else is syntax.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// Whose entries of the index a search reads.
#[derive(Clone, Copy)]
enum Owner {
    /// The user bound as `$1`.
    User,
    Broadcasts,
}

/// Where a key's owner number starts: above the archived flag and the rowid.
const OWNER_SHIFT: u32 = 41;
/// The owner part of the keys of every recipient that came after the numbers ran out, and so
/// has none of its own: the highest that keeps keys positive, given to nobody (migration 0013).
const SHARED: i64 = (1 << (63 - OWNER_SHIFT)) - 1;
/// The highest number a recipient is given.
const NUMBERED_AT_MOST: i64 = SHARED - 1;
/// A key's archived flag, set while a personal notification is archived.
const ARCHIVED: i64 = 1 << 40;
/// A key's low bits, the notification's rowid.
const ROWID: i64 = ARCHIVED - 1;

/// Where a user's entries lie in SQLite's search index, looked up before a search's queries
/// are built ([`indexed_now`]), so that they bound the index's keys with numbers. SQLite
/// checks a virtual table's key range again on every row the table returns, and a range
/// written as a lookup of the owner's number ran that lookup's code on every match: a count
/// of 10,000 matches took 1.9 ms instead of 0.5.
#[derive(Clone, Copy, Debug)]
pub(super) struct UserKeys {
    /// The range's first key: the owner's number, or the shared range's, shifted into place.
    base: i64,
    /// Whether the range is the user's own, not the shared one of the recipients that came
    /// after the numbers ran out (migration 0013), whose other owners' entries a search skips.
    own: bool,
}

/// The lowest and highest key, as SQL, of `owner`'s entries in the part of its range that
/// `archived` selects. A user without a number reads the shared range, which holds other
/// users' entries too: whoever reads it keeps the user's own rows (see [`counted`]).
fn keys(sql: &mut Sql, owner: Owner, archived: Archived) -> (String, String) {
    let (low, high) = match archived {
        Archived::Exclude => (0, ROWID),
        Archived::Only => (ARCHIVED, ARCHIVED | ROWID),
        Archived::Any => (0, ARCHIVED | ROWID),
    };
    match owner {
        Owner::Broadcasts => (low.to_string(), high.to_string()),
        Owner::User => {
            let UserKeys { base, .. } = user_keys(sql);
            (sql.bind(Bind::Int(base + low)), sql.bind(Bind::Int(base + high)))
        }
    }
}

/// The keys `sql`'s user was found to have.
fn user_keys(sql: &Sql) -> UserKeys {
    sql.keys.expect("a search's keys are looked up (`indexed_now`) before its queries are built")
}

/// The rowids of `owner`'s notifications, in the part `archived` selects (and from the key
/// `from` up), that hold the bound `phrase`.
fn matches(sql: &mut Sql, phrase: &str, owner: Owner, archived: Archived, from: Option<i64>) -> String {
    let (mut low, high) = keys(sql, owner, archived);
    if let Some(from) = from {
        low = format!("MAX({low}, {from})");
    }
    format!(
        "SELECT rowid & {ROWID} FROM notifications_search
         WHERE notifications_search MATCH {phrase} AND rowid BETWEEN {low} AND {high}"
    )
}

/// How many of `owner`'s notifications, in the part `archived` selects, hold `phrase`: a walk
/// of the index's match list over the owner's keys, nothing looked up — unless the owner is a
/// user without a number, whose range is shared: then each match in it is looked up.
fn counted(sql: &mut Sql, phrase: &str, owner: Owner, archived: Archived) -> String {
    if let Owner::User = owner
        && !user_keys(sql).own
    {
        let matches = matches(sql, phrase, owner, archived, None);
        return format!("(SELECT COUNT(*) FROM notifications m WHERE m.user_ref = $1 AND m.rowid IN ({matches}))");
    }
    let (low, high) = keys(sql, owner, archived);
    format!(
        "(SELECT COUNT(*) FROM notifications_search
          WHERE notifications_search MATCH {phrase} AND rowid BETWEEN {low} AND {high})"
    )
}

/// A scalar SQL expression: how many of the user `$1`'s notifications match `f`, counted from
/// SQLite's index, when `f` filters on nothing but the text, archiving, and hiding or not
/// hiding snoozed ones (as the inbox's own views do); `None` otherwise.
pub(super) fn count(sql: &mut Sql, f: &Filter) -> Option<String> {
    // Named one by one, so that a new condition cannot be left out of this choice unseen.
    let Filter { search, read, saved, archived: _, snoozed, created_after, minimum_severity, topic } = f;
    let text = search.as_deref()?;
    let other = read.is_some()
        || saved.is_some()
        || created_after.is_some()
        || minimum_severity.is_some()
        || topic.is_some()
        || *snoozed == Snoozed::Only;
    if sql.backend != Backend::Sqlite || !indexed(text) || other {
        return None;
    }
    let phrase = phrase(sql, text);
    let now = sql.now();
    let mut personal = counted(sql, &phrase, Owner::User, f.archived);
    if f.snoozed == Snoozed::Hide {
        // Snoozed now: few, found through their own index (`+ 0` keeps the planner from
        // starting at the matches instead).
        let archived = match f.archived {
            Archived::Exclude => " AND n.archived IS NULL",
            Archived::Only => " AND n.archived IS NOT NULL",
            Archived::Any => "",
        };
        let matches = matches(sql, &phrase, Owner::User, f.archived, None);
        personal = format!(
            "({personal} - (SELECT COUNT(*) FROM notifications n
              WHERE n.user_ref = $1 AND n.snoozed_until > {now}{archived}
                AND n.rowid + 0 IN ({matches})))"
        );
    }
    // A broadcast the user never touched is not archived and not snoozed: the matches count,
    // less the touched ones whose state the filter excludes, or, for archived ones only, the
    // touched ones that are.
    let state = super::counts::and(&state_conditions(f, "s", &now));
    let matches = matches(sql, &phrase, Owner::Broadcasts, Archived::Any, None);
    let touched = format!(
        "SELECT COUNT(*) FROM broadcast_status s CROSS JOIN notifications n
         WHERE s.user_ref = $1 AND n.id = s.notification_id AND n.user_ref IS NULL
           AND n.rowid + 0 IN ({matches})"
    );
    let broadcasts = if f.archived == Archived::Only {
        format!("({touched} AND {state})")
    } else {
        format!("({} - ({touched} AND NOT ({state})))", counted(sql, &phrase, Owner::Broadcasts, Archived::Any))
    };
    Some(format!("{personal} + {broadcasts}"))
}

/// How many of the newest matches a search's page checks rows against, per row it shows:
/// enough that rows the filter's state hides rarely leave the page short.
const NEWEST_PER_ROW: i64 = 4;
/// The fewest newest matches a search's page checks rows against.
const NEWEST_AT_LEAST: i64 = 256;

/// Whether a row of the user `$1` stored before the rowid `$4` sorts before the row created
/// at `$2` with the id `$3`, newest first: read through the inbox's index, from the newest
/// rows down to that row.
pub(super) const OLDER_SOONER: &str = "SELECT EXISTS (SELECT 1 FROM notifications n
     WHERE n.user_ref = $1 AND n.created >= $2 AND (n.created > $2 OR n.id > $3) AND n.rowid < $4)";

/// A page of a search with many matches on SQLite, in the inbox's own order (newest first),
/// found without reading all of the user's matches; `None` when it cannot be (see below) and
/// the caller reads the page the usual way.
///
/// Walking the inbox for a page checks each row against a lookup of the user's matches,
/// which SQLite builds per query: 10,000 entries for a common word in a large inbox, most of
/// the page's time. The index returns a user's matches in key order, which within one part
/// of the range is the order they were stored in, nearly the inbox's (a notification's time
/// is taken just before it is stored). So the lookup is built from the newest matches only,
/// [`NEWEST_PER_ROW`] times as many as the page shows, at least [`NEWEST_AT_LEAST`]
/// (`from`, the key of the oldest of them, bounds the lookup); the page is exact if no
/// row of the user stored before the oldest of them sorts before the page's last row, which
/// the inbox's own index tells by reading the rows newer than that last row, as the walk
/// itself did. When one does (a time later than its place in storage says: publishes that
/// took their times in one order and reached the writer in the other), or the page came
/// out short, the usual page is read instead. Archived::Any spans two parts of the range,
/// whose keys do not follow storage order, and is left to the usual page.
pub(super) async fn newest_page(
    db: &Db,
    user: &EntityRef,
    owner_keys: Option<UserKeys>,
    q: &ListQuery,
) -> Result<Option<Vec<Notification>>> {
    // Keys only for a search SQLite's index answers (see `indexed_now`).
    let (Some(text), Some(_)) = (q.filter.search.as_deref(), owner_keys) else { return Ok(None) };
    let newest_first = q.order.is_empty() || q.order == [(OrderField::Created, true)];
    if !newest_first || q.filter.archived == Archived::Any {
        return Ok(None);
    }
    let limit = q.limit.clamp(0, super::limits::PAGE);
    let newest = NEWEST_PER_ROW.saturating_mul(q.offset.saturating_add(limit)).max(NEWEST_AT_LEAST);
    let mut sql = Sql::for_user(Backend::Sqlite, user, owner_keys);
    let phrase = phrase(&mut sql, text);
    let (low, high) = keys(&mut sql, Owner::User, q.filter.archived);
    let offset = sql.bind(Bind::Int(newest - 1));
    let from = format!(
        "SELECT rowid FROM notifications_search
         WHERE notifications_search MATCH {phrase} AND rowid BETWEEN {low} AND {high}
         ORDER BY rowid DESC LIMIT 1 OFFSET {offset}"
    );
    let from: Option<i64> =
        with_pool!(db.reader(), |c| bind_all!(sqlx::query_scalar(&from), &sql.binds).fetch_optional(c).await)?;
    // Fewer matches than that: the lookup of them all is as small.
    let Some(from) = from else { return Ok(None) };
    let (text, binds) = super::page_sql(Backend::Sqlite, user, owner_keys, q, true, Some(from))?;
    let page = super::fetch_page(db, &q.filter, &text, &binds).await?;
    let Some(last) = page.last().filter(|_| page.len() as i64 == limit) else { return Ok(None) };
    let older_sooner = with_pool!(db.reader(), |c| sqlx::query_scalar::<_, bool>(OLDER_SOONER)
        .bind(user.as_str())
        .bind(last.created.timestamp_millis())
        .bind(&last.id)
        .bind(from & ROWID)
        .fetch_one(c)
        .await)?;
    Ok((!older_sooner).then_some(page))
}

/// Before a search on SQLite: indexes the notifications the instance's indexer has not
/// reached yet, so that the search's reads, which begin after this returns, find them all,
/// and looks up where `user`'s entries lie in the index, for the search's queries. Nothing to
/// do (`None`) on PostgreSQL or for texts the index cannot find; nothing to index when nothing
/// is behind (one read).
pub(super) async fn indexed_now(db: &Db, user: &EntityRef, f: &Filter) -> Result<Option<UserKeys>> {
    if db.backend() != Backend::Sqlite || !f.search.as_deref().is_some_and(indexed) {
        return Ok(None);
    }
    catch_up_search(db).await?;
    let number: Option<i64> =
        with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT number FROM search_owners WHERE user_ref = $1")
            .bind(user.as_str())
            .fetch_optional(c)
            .await)?;
    Ok(Some(UserKeys { base: number.unwrap_or(SHARED) << OWNER_SHIFT, own: number.is_some() }))
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
    // Each new recipient is numbered first, while numbers last (each is the highest plus one;
    // the room left is counted once, before the first): a notification's key starts with its
    // owner's number (migration 0011), or the shared range's (migration 0013).
    let number = format!(
        "INSERT INTO search_owners (user_ref)
         SELECT DISTINCT n.user_ref FROM notifications n
         WHERE n.rowid > (SELECT indexed FROM search_progress) AND n.rowid <= $1 AND n.user_ref IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM search_owners o WHERE o.user_ref = n.user_ref)
         LIMIT MAX(0, {NUMBERED_AT_MOST} - (SELECT COALESCE(MAX(number), 0) FROM search_owners))"
    );
    with_tx!(&mut tx, |c| sqlx::query(&number).bind(upto).execute(c).await.map(|r| r.rows_affected()))?;
    let insert = format!(
        "INSERT INTO notifications_search (rowid, title, description)
         SELECT (CASE WHEN n.user_ref IS NULL THEN 0 ELSE COALESCE(o.number, {SHARED}) END << {OWNER_SHIFT})
                + CASE WHEN n.archived IS NOT NULL AND n.user_ref IS NOT NULL THEN {ARCHIVED} ELSE 0 END + n.rowid,
                n.title, n.description
         FROM notifications n LEFT JOIN search_owners o ON o.user_ref = n.user_ref
         WHERE n.rowid > (SELECT indexed FROM search_progress) AND n.rowid <= $1"
    );
    with_tx!(&mut tx, |c| sqlx::query(&insert).bind(upto).execute(c).await.map(|r| r.rows_affected()))?;
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
    use crate::db::execute;
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

    /// What alice finds searching `text`: the titles, newest first, and the total.
    async fn found(db: &Db, text: &str) -> (Vec<String>, i64) {
        let q = ListQuery { filter: Filter { search: Some(text.into()), ..Filter::default() }, ..ListQuery::default() };
        let (page, total) = list(db, &alice(), &q).await.unwrap();
        (page.into_iter().map(|n| n.payload.title).collect(), total)
    }

    /// What [`found`] should return: these titles, and as many in all.
    fn titles(titles: &[&str]) -> (Vec<String>, i64) {
        (titles.iter().map(|t| t.to_string()).collect(), titles.len() as i64)
    }

    async fn indexed_up_to(db: &Db) -> i64 {
        with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT indexed FROM search_progress").fetch_one(c).await)
            .unwrap()
    }

    /// The keys the index itself finds for `text`, in order.
    async fn keys_in_index(db: &Db, text: &str) -> Vec<i64> {
        let query = "SELECT rowid FROM notifications_search WHERE notifications_search MATCH $1";
        let mut keys: Vec<i64> =
            with_pool!(db.reader(), |c| sqlx::query_scalar(query).bind(format!("\"{text}\"")).fetch_all(c).await)
                .unwrap();
        keys.sort();
        keys
    }

    /// The rowids of the notifications the index finds for `text`, in order.
    async fn in_index(db: &Db, text: &str) -> Vec<i64> {
        let mut rowids: Vec<i64> = keys_in_index(db, text).await.into_iter().map(|k| k & ROWID).collect();
        rowids.sort();
        rowids
    }

    /// The index holds exactly the notifications at or below the mark, each with its text as
    /// it is now, under the key of its owner and archived state: its structure is sound, and
    /// a phrase finds the keys a scan computes. (FTS5's check against the table itself would
    /// count the rows above the mark as missing. The texts are ones whose case Rust's
    /// `to_lowercase` folds as the index does.)
    async fn assert_index_agrees(db: &Db) {
        execute(db, "INSERT INTO notifications_search (notifications_search) VALUES ('integrity-check')").await;
        let below = "SELECT n.rowid, n.user_ref, o.number, n.archived IS NOT NULL, n.title, n.description
                     FROM notifications n LEFT JOIN search_owners o ON o.user_ref = n.user_ref
                     WHERE n.rowid <= (SELECT indexed FROM search_progress)";
        type Below = (i64, Option<String>, Option<i64>, bool, String, Option<String>);
        let rows: Vec<Below> = with_pool!(db.reader(), |c| sqlx::query_as(below).fetch_all(c).await).unwrap();
        for text in ["über", "deploy", "about", "renamed", "again"] {
            let holds = |s: &str| s.to_lowercase().contains(text);
            let mut scanned: Vec<i64> = rows
                .iter()
                .filter(|(.., title, description)| holds(title) || description.as_deref().is_some_and(holds))
                .map(|(rowid, user, number, archived, ..)| match user {
                    None => *rowid,
                    Some(_) => {
                        let archived = if *archived { ARCHIVED } else { 0 };
                        (number.unwrap_or(SHARED) << OWNER_SHIFT) | archived | rowid
                    }
                })
                .collect();
            scanned.sort();
            assert_eq!(keys_in_index(db, text).await, scanned, "{text:?}");
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
        execute(&db, "UPDATE notifications SET title = 'renamed ' || id, description = NULL WHERE id IN ('i1', 'i4')")
            .await;
        execute(&db, "DELETE FROM notifications WHERE id IN ('i2', 'i5')").await;
        assert_eq!(indexed_up_to(&db).await, 3);
        assert_index_agrees(&db).await;
        assert_eq!(found(&db, "deploy").await, titles(&["deploy 6", "deploy 3"]));
        assert_eq!(found(&db, "renamed").await, titles(&["renamed i4", "renamed i1"]));
        assert_eq!(indexed_up_to(&db).await, 6);
        assert_index_agrees(&db).await;

        // With the newest row deleted too, the next takes the rowid after the highest left (5),
        // at or below the mark: indexed as it is stored.
        execute(&db, "DELETE FROM notifications WHERE id = 'i6'").await;
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
        execute(&db, "DELETE FROM notifications WHERE id IN ('i3', 'i4', 'i5', 'i6')").await;
        execute(
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
        execute(
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

    /// One of the test's notifications: whose (`None`: a broadcast), its title, and alice's
    /// state of it (for a broadcast, kept in her `broadcast_status` row).
    struct Row {
        id: &'static str,
        owner: Option<&'static str>,
        title: &'static str,
        read: bool,
        archived: bool,
        /// Milliseconds from now: snoozed until then (past: due, back in the inbox).
        snoozed: Option<i64>,
    }

    /// Sets `row`'s state as alice's, on the notification or in her broadcast state.
    async fn set_state(db: &Db, row: &Row) {
        let at = |on: bool| on.then_some(1_i64);
        let snoozed = row.snoozed.map(|d| crate::time::now_ms() + d);
        let statement = if row.owner.is_some() {
            "UPDATE notifications SET read = $2, archived = $3, snoozed_until = $4 WHERE id = $1"
        } else {
            "INSERT INTO broadcast_status (notification_id, user_ref, read, archived, snoozed_until)
             VALUES ($1, 'user:default/alice', $2, $3, $4)
             ON CONFLICT (notification_id, user_ref) DO UPDATE
             SET read = excluded.read, archived = excluded.archived, snoozed_until = excluded.snoozed_until"
        };
        with_pool!(db.writer(), |c| sqlx::query(statement)
            .bind(row.id)
            .bind(at(row.read))
            .bind(at(row.archived))
            .bind(snoozed)
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .unwrap();
    }

    #[tokio::test]
    async fn counts_from_the_index_agree_with_the_rows_in_every_state() {
        counts_agree_with_the_rows_in_every_state(false).await;
    }

    /// As above, with alice and bob numbered after the numbers ran out: their entries share
    /// one range, and neither finds the other's.
    #[tokio::test]
    async fn counts_in_the_shared_range_agree_with_the_rows_in_every_state() {
        counts_agree_with_the_rows_in_every_state(true).await;
    }

    /// Every filter of a search, counted and paged, against the rows it should find; with
    /// `shared`, the recipients are numbered after the numbers ran out.
    async fn counts_agree_with_the_rows_in_every_state(shared: bool) {
        let (db, dir) = database().await;
        if shared {
            run_out_of_numbers(&db).await;
        }
        let mine = Some("user:default/alice");
        let bob = Some("user:default/bob");
        let hour = 3_600_000;
        let mut rows = vec![
            Row { id: "a1", owner: mine, title: "deploy one", read: false, archived: false, snoozed: None },
            Row { id: "a2", owner: mine, title: "deploy two", read: true, archived: false, snoozed: None },
            Row { id: "a3", owner: mine, title: "deploy three", read: false, archived: true, snoozed: None },
            Row { id: "a4", owner: mine, title: "deploy four", read: false, archived: false, snoozed: Some(hour) },
            Row { id: "a5", owner: mine, title: "deploy five", read: true, archived: true, snoozed: Some(hour) },
            Row { id: "a6", owner: mine, title: "deploy six", read: false, archived: false, snoozed: Some(-hour) },
            Row { id: "a7", owner: mine, title: "nothing here", read: false, archived: true, snoozed: None },
            Row { id: "b1", owner: bob, title: "deploy for bob", read: false, archived: false, snoozed: None },
            Row { id: "b2", owner: bob, title: "deploy archived by bob", read: false, archived: true, snoozed: None },
            Row { id: "x1", owner: None, title: "deploy to all", read: false, archived: false, snoozed: None },
            Row { id: "x2", owner: None, title: "deploy read", read: true, archived: false, snoozed: None },
            Row { id: "x3", owner: None, title: "deploy archived", read: false, archived: true, snoozed: None },
            Row { id: "x4", owner: None, title: "deploy snoozed", read: false, archived: false, snoozed: Some(hour) },
            Row { id: "x5", owner: None, title: "deploy woke", read: false, archived: false, snoozed: Some(-hour) },
            Row { id: "x6", owner: None, title: "nothing for all", read: false, archived: true, snoozed: None },
        ];
        // The first half is indexed before its state is set (the triggers move archived keys),
        // the second after (the indexer files them under their state).
        let (early, late) = rows.split_at(8);
        for row in early {
            store(&db, row.id, row.owner, row.title).await;
        }
        catch_up_search(&db).await.unwrap();
        for row in late {
            store(&db, row.id, row.owner, row.title).await;
        }
        // x1 stays untouched: no state row.
        for row in rows.iter().filter(|r| r.owner.is_some() || r.read || r.archived || r.snoozed.is_some()) {
            set_state(&db, row).await;
        }
        catch_up_search(&db).await.unwrap();
        // Restored and archived again, after indexing: the key moves both ways.
        rows[2].archived = false;
        set_state(&db, &rows[2]).await;
        rows[0].archived = true;
        set_state(&db, &rows[0]).await;
        // An archived row deleted, and one restored and renamed in one statement (as a scope
        // update does), both indexed before.
        execute(&db, "DELETE FROM notifications WHERE id = 'a5'").await;
        rows.retain(|r| r.id != "a5");
        execute(
            &db,
            "UPDATE notifications SET archived = NULL, title = 'deploy renamed', description = NULL WHERE id = 'a7'",
        )
        .await;
        let renamed = rows.iter_mut().find(|r| r.id == "a7").unwrap();
        (renamed.title, renamed.archived) = ("deploy renamed", false);
        assert_index_agrees(&db).await;

        let now = crate::time::now_ms();
        for archived in [Archived::Exclude, Archived::Only, Archived::Any] {
            for snoozed in [Snoozed::Hide, Snoozed::Only, Snoozed::Any] {
                for read in [None, Some(false), Some(true)] {
                    for text in ["deploy", "DEPLOY T", "nothing", "absent"] {
                        let filter = Filter { search: Some(text.into()), read, archived, snoozed, ..Filter::default() };
                        let shows = |row: &&Row| {
                            let snoozed_now = row.snoozed.is_some_and(|d| d > 0);
                            row.owner != bob
                                && row.title.contains(&text.to_lowercase())
                                && read.is_none_or(|r| r == row.read)
                                && match archived {
                                    Archived::Exclude => !row.archived,
                                    Archived::Only => row.archived,
                                    Archived::Any => true,
                                }
                                && match snoozed {
                                    Snoozed::Hide => !snoozed_now,
                                    Snoozed::Only => snoozed_now,
                                    Snoozed::Any => true,
                                }
                        };
                        let mut expected: Vec<&str> = rows.iter().filter(shows).map(|r| r.title).collect();
                        expected.sort();
                        let q = ListQuery { filter: filter.clone(), limit: 100, ..ListQuery::default() };
                        let (page, total) = list(&db, &alice(), &q).await.unwrap();
                        let mut titles: Vec<&str> = page.iter().map(|n| n.payload.title.as_str()).collect();
                        titles.sort();
                        assert_eq!(titles, expected, "{filter:?}");
                        assert_eq!(total, expected.len() as i64, "{filter:?}");
                    }
                }
            }
        }
        assert!(crate::time::now_ms() - now < hour, "the snoozes stayed in the future");
        let expected = if shared { vec!["user:default/zed"] } else { vec!["user:default/alice", "user:default/bob"] };
        assert_eq!(numbered(&db).await, expected);
        std::fs::remove_dir_all(dir).ok();
    }

    /// Gives the last number to someone, as if every other had been given before.
    async fn run_out_of_numbers(db: &Db) {
        let zed =
            format!("INSERT INTO search_owners (number, user_ref) VALUES ({NUMBERED_AT_MOST}, 'user:default/zed')");
        execute(db, &zed).await;
    }

    /// The recipients with a number, by name.
    async fn numbered(db: &Db) -> Vec<String> {
        let query = "SELECT user_ref FROM search_owners ORDER BY user_ref";
        with_pool!(db.reader(), |c| sqlx::query_scalar(query).fetch_all(c).await).unwrap()
    }

    #[tokio::test]
    async fn recipients_after_the_numbers_ran_out_are_indexed_and_found() {
        let (db, dir) = database().await;
        run_out_of_numbers(&db).await;
        store(&db, "a1", Some("user:default/alice"), "deploy one").await;
        store(&db, "b1", Some("user:default/bob"), "deploy for bob").await;
        store(&db, "z1", Some("user:default/zed"), "deploy for zed").await;
        store(&db, "x1", None, "deploy to all").await;
        assert_eq!(found(&db, "deploy").await, titles(&["deploy to all", "deploy one"]));
        assert_eq!(numbered(&db).await, ["user:default/zed"], "no number for alice, none given twice");
        assert_index_agrees(&db).await;

        // Stored at or below the indexer's mark (the newest row deleted, its rowid taken
        // again): the trigger files it in the shared range too, and the publish succeeds.
        execute(&db, "DELETE FROM notifications WHERE id = 'x1'").await;
        store(&db, "a2", Some("user:default/alice"), "deploy two").await;
        assert_eq!(in_index(&db, "two").await, [4]);
        assert_index_agrees(&db).await;
        assert_eq!(found(&db, "deploy").await, titles(&["deploy two", "deploy one"]));
        assert_eq!(numbered(&db).await, ["user:default/zed"]);
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn the_last_numbers_go_to_as_many_new_recipients_as_they_fit() {
        let (db, dir) = database().await;
        let zed = format!(
            "INSERT INTO search_owners (number, user_ref) VALUES ({}, 'user:default/zed')",
            NUMBERED_AT_MOST - 1
        );
        execute(&db, &zed).await;
        for (id, user) in [("a1", "alice"), ("b1", "bob"), ("c1", "carol")] {
            store(&db, id, Some(&format!("user:default/{user}")), &format!("deploy for {user}")).await;
        }
        assert_eq!(catch_up(&db, CATCH_UP_BATCH).await.unwrap(), 3, "one batch");
        let numbered = numbered(&db).await;
        assert_eq!(numbered.len(), 2, "one number was left: {numbered:?}");
        assert_index_agrees(&db).await;
        assert_eq!(found(&db, "deploy").await, titles(&["deploy for alice"]));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn the_upgrade_leaves_the_recipient_numbered_last_its_keys() {
        let (db, dir) = crate::db::scratch_sqlite("search-upgrade-last", false).await;
        crate::db::migrate_sqlite_up_to(&db, 12).await;
        // Migration 0011 numbered up to 2^22 - 1, which is now the shared range's: alice
        // holds it, and her rows are indexed under it as they are stored.
        execute(&db, &format!("INSERT INTO search_owners (number, user_ref) VALUES ({SHARED}, 'user:default/alice')"))
            .await;
        execute(&db, "UPDATE search_progress SET indexed = 1000").await;
        store(&db, "a1", Some("user:default/alice"), "deploy one").await;
        store(&db, "x1", None, "deploy to all").await;

        db.migrate().await.unwrap();
        assert!(numbered(&db).await.is_empty(), "alice's number is the shared range's");
        assert_index_agrees(&db).await;
        assert_eq!(found(&db, "deploy").await, titles(&["deploy to all", "deploy one"]));
        std::fs::remove_dir_all(dir).ok();
    }

    #[tokio::test]
    async fn the_upgrade_files_what_was_indexed_under_its_owner() {
        let (db, dir) = crate::db::scratch_sqlite("search-upgrade", false).await;
        crate::db::migrate_sqlite_up_to(&db, 10).await;
        store(&db, "a1", Some("user:default/alice"), "deploy one").await;
        store(&db, "a2", Some("user:default/alice"), "deploy archived").await;
        store(&db, "b1", Some("user:default/bob"), "deploy for bob").await;
        store(&db, "x1", None, "deploy to all").await;
        execute(&db, "UPDATE notifications SET archived = 1 WHERE id = 'a2'").await;
        // Indexed as migration 0010 left it, keyed by rowid, up to the mark; one row above it.
        execute(&db, "INSERT INTO notifications_search (notifications_search) VALUES ('rebuild')").await;
        execute(&db, "UPDATE search_progress SET indexed = 4").await;
        store(&db, "a3", Some("user:default/alice"), "deploy later").await;

        db.migrate().await.unwrap();
        assert_eq!(indexed_up_to(&db).await, 4);
        assert_index_agrees(&db).await;
        let expected = ["deploy later", "deploy to all", "deploy one"].map(String::from).to_vec();
        assert_eq!(found(&db, "deploy").await, (expected, 3));
        let archived = Filter { search: Some("deploy".into()), archived: Archived::Only, ..Filter::default() };
        let q = ListQuery { filter: archived, ..ListQuery::default() };
        let (page, total) = list(&db, &alice(), &q).await.unwrap();
        assert_eq!((page[0].payload.title.as_str(), total), ("deploy archived", 1));
        std::fs::remove_dir_all(dir).ok();
    }

    /// The ids of the page the usual way finds for `q`, walking the inbox against all of
    /// alice's matches.
    async fn usual_page(db: &Db, q: &ListQuery) -> Vec<String> {
        let keys = indexed_now(db, &alice(), &q.filter).await.unwrap();
        let (text, binds) = super::super::page_sql(Backend::Sqlite, &alice(), keys, q, true, None).unwrap();
        super::super::fetch_page(db, &q.filter, &text, &binds).await.unwrap().into_iter().map(|n| n.id).collect()
    }

    #[tokio::test]
    async fn a_page_of_many_matches_reads_the_newest_only_when_that_is_exact() {
        let (db, dir) = database().await;
        // 2,000 of alice's, stored in the order of their times, three in five about a deploy.
        execute(
            &db,
            "INSERT INTO notifications (id, user_ref, origin, created, title, severity)
             WITH RECURSIVE i (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < 2000)
             SELECT printf('n%05d', k), 'user:default/alice', 'external:test', k,
                    CASE WHEN k % 5 < 3 THEN 'deploy ' ELSE 'other ' END || k, 2
             FROM i",
        )
        .await;
        catch_up_search(&db).await.unwrap();
        let q = |offset| ListQuery {
            filter: Filter { search: Some("deploy".into()), ..Filter::default() },
            offset,
            ..ListQuery::default()
        };
        let keys = indexed_now(&db, &alice(), &q(0).filter).await.unwrap();
        let newest_page = |q: ListQuery| {
            let db = &db;
            async move { newest_page(db, &alice(), keys, &q).await.unwrap() }
        };
        for offset in [0, 20, 200] {
            let newest = newest_page(q(offset)).await.expect("found from the newest matches");
            let ids: Vec<String> = newest.into_iter().map(|n| n.id).collect();
            assert_eq!(ids, usual_page(&db, &q(offset)).await, "offset {offset}");
        }
        // A page deeper than a quarter of the matches: the lookup of them all is as small.
        assert!(newest_page(q(400)).await.is_none());
        assert!(newest_page(q(i64::MAX)).await.is_none());

        // The first one stored now has the newest time: the newest matches in storage order
        // miss it, and the page is read the usual way.
        execute(&db, "UPDATE notifications SET created = 5000 WHERE id = 'n00001'").await;
        assert!(newest_page(q(0)).await.is_none());
        let (page, total) = list(&db, &alice(), &q(0)).await.unwrap();
        assert_eq!((page[0].id.as_str(), page.len(), total), ("n00001", 20, 1200));
        let ids: Vec<String> = page.into_iter().map(|n| n.id).collect();
        assert_eq!(ids, usual_page(&db, &q(0)).await);
        std::fs::remove_dir_all(dir).ok();
    }
}
