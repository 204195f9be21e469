//! The plans the databases choose for the inbox's queries. A query that reads the wrong index
//! still answers correctly, only thousands of times slower on a large inbox; these tests pin
//! the plans that keep the work proportional to the answer. SQLite keeps no statistics here,
//! so its plans follow from the SQL alone; PostgreSQL's follow from its statistics, which
//! autovacuum gathers and Herald refreshes itself (`maintenance::refresh_statistics`).

use super::*;
use crate::db::{drop_scratch_postgres, execute, scratch_postgres};

/// A database holding an inbox, so that the plans are those of a database in use.
async fn database() -> (Db, std::path::PathBuf) {
    let (db, dir) = crate::db::scratch_sqlite("plans", true).await;
    let fill = "INSERT INTO notifications (id, user_ref, origin, created, title, severity)
         WITH RECURSIVE i (k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < 20000)
         SELECT 'n' || k, CASE WHEN k % 100 = 0 THEN NULL ELSE 'user:default/alice' END, 'external:test', k,
                'notification ' || k, 1 + k % 4
         FROM i";
    with_pool!(db.writer(), |c| sqlx::query(fill).execute(c).await.map(|r| r.rows_affected())).unwrap();
    (db, dir)
}

/// SQLite's plan for `text`, one step per line.
async fn plan(db: &Db, (text, binds): (String, Vec<Bind>)) -> String {
    let explain = format!("EXPLAIN QUERY PLAN {text}");
    let steps = with_pool!(db.reader(), |c| bind_all!(sqlx::query_as::<_, (i64, i64, i64, String)>(&explain), &binds)
        .fetch_all(c)
        .await)
    .unwrap();
    steps.into_iter().map(|(_, _, _, detail)| detail).collect::<Vec<_>>().join("\n")
}

/// How the plan finds the user's own notifications: its first step on `n` (the personal half
/// comes first in every inbox query).
fn personal(plan: &str) -> &str {
    plan.lines().find(|l| l.starts_with("SEARCH n ") || *l == "SCAN n" || l.starts_with("SCAN n ")).unwrap_or_default()
}

fn alice() -> EntityRef {
    "user:default/alice".parse().unwrap()
}

#[tokio::test]
async fn lookups_by_id_never_walk_the_inbox() {
    let (db, dir) = database().await;
    // As many ids as a page's bulk action sends: the more ids, the more the planner is tempted
    // to read the user's rows instead.
    let ids: Vec<String> = (1..=20).map(|k| format!("n{k}")).collect();
    let p = plan(&db, by_ids_sql(Backend::Sqlite, &alice(), &ids)).await;
    assert_eq!(personal(&p), "SEARCH n USING INDEX sqlite_autoindex_notifications_1 (id=?)", "{p}");
    assert_eq!(p.matches("SEARCH n ").count(), 1, "{p}");
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn a_search_page_checks_the_rows_newer_than_its_last_through_the_inbox_index() {
    let (db, dir) = database().await;
    let binds =
        vec![Bind::Text(alice().as_str().into()), Bind::Int(19_000), Bind::Text("n19000".into()), Bind::Int(100)];
    let p = plan(&db, (search::OLDER_SOONER.to_string(), binds)).await;
    assert_eq!(
        personal(&p),
        "SEARCH n USING COVERING INDEX notifications_user_created (user_ref=? AND created>?)",
        "{p}"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn searches_go_through_the_index_unless_the_count_says_to_walk() {
    let (db, dir) = database().await;
    let q = ListQuery { filter: Filter { search: Some("deploy".into()), ..Filter::default() }, ..ListQuery::default() };
    let from_matches = "SEARCH n USING INTEGER PRIMARY KEY (rowid=?)";
    let walking = "SEARCH n USING INDEX notifications_user_created (user_ref=?)";
    let search_index = "notifications_search VIRTUAL TABLE";

    // The inbox's own view is counted from the index alone, over the user's keys and the
    // broadcasts'; only the snoozed rows and the user's touched broadcasts are looked up.
    let keys = search::indexed_now(&db, &alice(), &q.filter).await.unwrap();
    assert!(keys.is_some());
    let counted = plan(&db, count_sql(Backend::Sqlite, &alice(), keys, &q.filter)).await;
    let ranges = counted.lines().filter(|l| l.contains(search_index) && l.ends_with("M2><")).count();
    assert!(ranges >= 2, "count:\n{counted}");
    assert_eq!(
        personal(&counted),
        "SEARCH n USING INDEX notifications_user_snoozed (user_ref=? AND snoozed_until>?)",
        "count:\n{counted}"
    );
    assert!(counted.contains("SEARCH s USING INDEX broadcast_status_user (user_ref=?)"), "count:\n{counted}");
    // The user's keys are numbers looked up before: SQLite checks a virtual table's range
    // again on each row it returns, and a lookup of the owner in the range's bounds ran for
    // every match.
    assert!(!counted.contains("search_owners"), "count:\n{counted}");
    // With another condition, the count looks the user's matches up among the narrow facets,
    // not the wide rows.
    let unread = Filter { read: Some(false), ..q.filter.clone() };
    let count = count_sql(Backend::Sqlite, &alice(), keys, &unread);
    assert!(count.0.contains("FROM notification_facets n WHERE +n.user_ref = $1"), "count:\n{}", count.0);
    let counted = plan(&db, count).await;
    assert_eq!(personal(&counted), from_matches, "count:\n{counted}");
    assert!(counted.contains(search_index), "count:\n{counted}");
    let sorted = plan(&db, page_sql(Backend::Sqlite, &alice(), keys, &q, false, None).unwrap()).await;
    assert_eq!(personal(&sorted), from_matches, "few matches:\n{sorted}");
    let walked = plan(&db, page_sql(Backend::Sqlite, &alice(), keys, &q, true, None).unwrap()).await;
    assert_eq!(personal(&walked), walking, "many matches:\n{walked}");
    assert!(walked.contains(search_index) && !walked.contains(from_matches), "many matches:\n{walked}");
    assert!(!sorted.contains("search_owners") && !walked.contains("search_owners"), "{sorted}\n{walked}");

    // Too short for trigrams: a scan, walked in order.
    let short = ListQuery { filter: Filter { search: Some("de".into()), ..Filter::default() }, ..q };
    let scanned = plan(&db, page_sql(Backend::Sqlite, &alice(), None, &short, false, None).unwrap()).await;
    assert_eq!(personal(&scanned), walking, "short text:\n{scanned}");
    assert!(!scanned.contains(search_index), "short text:\n{scanned}");
    std::fs::remove_dir_all(dir).ok();
}

/// The inbox's sorts as it pages them (most urgent first, with and without a minimum
/// severity; by topic), each with the index that holds the user's rows in its order. (Its
/// sort by origin has none: see SQLite's migration 0014.)
fn sorted_pages() -> Vec<(ListQuery, &'static str)> {
    let sorted = |field, descending, minimum_severity| ListQuery {
        filter: Filter { minimum_severity, ..Filter::default() },
        order: vec![(field, descending)],
        ..ListQuery::default()
    };
    vec![
        (sorted(OrderField::Severity, true, None), "notifications_user_severity"),
        (sorted(OrderField::Severity, true, Some(herald_model::Severity::High)), "notifications_user_severity"),
        (sorted(OrderField::Topic, false, None), "notifications_user_topic"),
    ]
}

#[tokio::test]
async fn pages_sorted_as_the_inbox_sorts_read_it_in_that_order() {
    let (db, dir) = database().await;
    for (q, index) in sorted_pages() {
        let p = plan(&db, page_sql(Backend::Sqlite, &alice(), None, &q, false, None).unwrap()).await;
        // The user's rows come in the page's order and stop at its end. A sort of them (even
        // one severity at a time, "RIGHT PART OF ORDER BY") reads every row of the most
        // urgent severity, or the whole inbox, to return a page. (Sorting the page's rows as
        // they are merged with the broadcasts' is cheap.)
        let own = p.split("CO-ROUTINE p").nth(1).and_then(|rest| rest.split("SCAN p").next()).unwrap_or_default();
        assert!(own.contains(&format!("SEARCH n USING INDEX {index}")), "{:?}:\n{p}", q.order);
        assert!(!own.contains("TEMP B-TREE"), "{:?} {:?}:\n{p}", q.order, q.filter.minimum_severity);
    }
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test]
async fn counts_read_tallies_not_every_broadcast() {
    let (db, dir) = database().await;
    for filter in [
        Filter::default(),
        Filter { read: Some(false), ..Filter::default() },
        Filter { read: Some(true), minimum_severity: Some(herald_model::Severity::High), ..Filter::default() },
    ] {
        let p = plan(&db, count_sql(Backend::Sqlite, &alice(), None, &filter)).await;
        // The broadcasts' tallies and the user's own state rows, each through its key.
        assert!(!p.contains("notifications_broadcast_created") && !p.contains("SCAN n"), "{filter:?}:\n{p}");
        assert!(p.contains("broadcast_status_user"), "{filter:?}:\n{p}");
    }
    let p = plan(&db, status_sql(Backend::Sqlite, &alice())).await;
    assert!(!p.contains("notifications_broadcast_created") && !p.contains("SCAN n"), "status:\n{p}");
    std::fs::remove_dir_all(dir).ok();
}

/// `status` binds the user and the time to a text it built once for everyone: the statement
/// must name no other value.
#[test]
fn status_names_no_value_but_the_user_and_the_time() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let (text, binds) = status_sql(backend, &alice());
        assert!(matches!(binds.as_slice(), [Bind::Text(u), Bind::Int(_)] if u == alice().as_str()), "{binds:?}");
        assert_eq!(status_text(backend), text);
    }
}

/// A fresh PostgreSQL database (on the server the tests use) holding an inbox of 100,000
/// notifications (one in a hundred a broadcast; half about `deploy`, one in a thousand about
/// an `incident`), not yet analyzed; and the name to drop it by.
/// Large enough for PostgreSQL to prefer an index to reading the table, where it is right to.
async fn postgres_database() -> (Db, String) {
    let (db, name) = scratch_postgres("plans").await;
    // Without the tallies' triggers (not what is tested here), which would take ten times
    // as long as the rows themselves; and without autovacuum, where it runs, which could
    // analyze the table before the test has looked at it unanalyzed.
    let fill = [
        "ALTER TABLE notifications SET (autovacuum_enabled = false)",
        "ALTER TABLE notifications DISABLE TRIGGER USER",
        "INSERT INTO notifications (id, user_ref, origin, created, title, severity, topic)
         SELECT 'n' || k, CASE WHEN k % 100 = 0 THEN NULL ELSE 'user:default/alice' END, 'external:test', k,
                'notification ' || k, 1 + k % 4,
                CASE WHEN k % 1000 = 7 THEN 'incident' WHEN k % 2 = 0 THEN 'deploy' END
         FROM generate_series(1, 100000) AS k",
        "ALTER TABLE notifications ENABLE TRIGGER USER",
    ];
    for statement in fill {
        execute(&db, statement).await;
    }
    (db, name)
}

/// Runs Herald's statistics refresh until it has analyzed the notifications: PostgreSQL
/// reports the rows a session changed to its statistics views a moment after the session's
/// transaction, not at once.
async fn refreshed(db: &Db) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let analyzed = crate::maintenance::refresh_statistics(db).await.unwrap();
        if analyzed.iter().any(|t| t == "notifications") {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the statistics refresh never analyzed the notifications");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// PostgreSQL's plan for `text` (with its parameters bound, as the inbox runs it).
async fn postgres_plan(db: &Db, (text, binds): (String, Vec<Bind>)) -> String {
    let explain = format!("EXPLAIN {text}");
    let steps =
        with_pool!(db.reader(), |c| bind_all!(sqlx::query_scalar::<_, String>(&explain), &binds).fetch_all(c).await)
            .unwrap();
    steps.join("\n")
}

/// How many rows of `notifications` running `text` visits, kept or filtered out, read off
/// `EXPLAIN ANALYZE`.
async fn postgres_rows_read(db: &Db, (text, binds): (String, Vec<Bind>)) -> u64 {
    let explain = format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) {text}");
    let steps =
        with_pool!(db.reader(), |c| bind_all!(sqlx::query_scalar::<_, String>(&explain), &binds).fetch_all(c).await)
            .unwrap();
    rows_in_plan(&steps)
}

/// The rows of `notifications` an `EXPLAIN ANALYZE`'s lines say were visited.
fn rows_in_plan(steps: &[String]) -> u64 {
    let number = |line: &str, after: &str| -> u64 {
        let start = line.find(after).map(|i| i + after.len()).unwrap_or(line.len());
        line[start..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().unwrap_or(0)
    };
    // A node's line says how many rows it returned and how often it ran; the lines under it
    // how many it read and dropped.
    let (mut total, mut loops, mut on_notifications) = (0, 1, false);
    for line in steps {
        if line.contains("(actual rows=") {
            on_notifications = line.contains(" on notifications ");
            loops = number(line, " loops=");
            if on_notifications {
                total += number(line, "(actual rows=") * loops;
            }
        } else if on_notifications && line.contains("Rows Removed by") {
            total += number(line, ": ") * loops;
        }
    }
    total
}

#[tokio::test]
async fn postgres_pages_read_a_page_once_herald_refreshed_the_statistics() {
    let (db, name) = postgres_database().await;
    let first_page = || page_sql(Backend::Postgres, &alice(), None, &ListQuery::default(), false, None).unwrap();
    // Without statistics PostgreSQL takes the user's 99,000 rows for a few hundred and reads
    // and sorts them all for a page (as on a server whose autovacuum is off, or has not looked
    // yet since a burst of notifications).
    let before = postgres_rows_read(&db, first_page()).await;
    assert!(before > 99_000, "without statistics the page read {before} rows");

    refreshed(&db).await;
    // Now the page reads the newest rows in order and stops (plus the 1,000 broadcasts).
    let after = postgres_rows_read(&db, first_page()).await;
    assert!(after < 2_000, "the page read {after} rows:\n{}", postgres_plan(&db, first_page()).await);
    // Nothing changed since: the next refresh analyzes nothing.
    assert_eq!(crate::maintenance::refresh_statistics(&db).await.unwrap(), Vec::<String>::new());
    drop_scratch_postgres(db, name).await;
}

#[tokio::test]
async fn postgres_pages_sorted_as_the_inbox_sorts_read_a_page() {
    let (db, name) = postgres_database().await;
    refreshed(&db).await;
    for (q, _) in sorted_pages() {
        let page = page_sql(Backend::Postgres, &alice(), None, &q, false, None).unwrap();
        // A page of the user's rows and the 1,000 broadcasts (sorted: they are few), not the
        // user's every critical notification (24,750 of them) or every topic-less one.
        let read = postgres_rows_read(&db, page.clone()).await;
        assert!(read < 2_000, "{:?}: {read} rows:\n{}", q.order, postgres_plan(&db, page).await);
    }
    drop_scratch_postgres(db, name).await;
}

#[tokio::test]
async fn postgres_refresh_leaves_a_busy_table_for_the_next_turn() {
    let (db, name) = postgres_database().await;
    let crate::db::Pool::Postgres(pool) = db.writer() else { unreachable!("a PostgreSQL database") };
    // Wait until PostgreSQL's statistics views show the filled table as changed.
    let stale = "SELECT n_mod_since_analyze > 0 FROM pg_stat_user_tables WHERE relname = 'notifications'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !sqlx::query_scalar::<_, bool>(stale).fetch_one(pool).await.unwrap() {
        assert!(std::time::Instant::now() < deadline, "the statistics views never showed the new rows");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // A vacuum (or an index build) holds the lock ANALYZE needs.
    let mut vacuum = pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE notifications IN SHARE UPDATE EXCLUSIVE MODE").execute(&mut *vacuum).await.unwrap();
    let started = std::time::Instant::now();
    let analyzed = crate::maintenance::refresh_statistics(&db).await.unwrap();
    assert!(!analyzed.iter().any(|t| t == "notifications"), "{analyzed:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "the refresh waited for the lock");
    vacuum.rollback().await.unwrap();
    refreshed(&db).await;
    drop_scratch_postgres(db, name).await;
}

/// How many entries wait in the pending lists of the search's trigram indexes (read with
/// contrib's `pgstattuple`, which the tests' superuser may install).
async fn pending_trigrams(db: &Db) -> i64 {
    let pending = "SELECT CAST(SUM(g.pending_tuples) AS BIGINT) FROM (VALUES ('notifications_user_text'),
         ('notifications_broadcast_text')) AS i (name), LATERAL pgstatginindex(i.name::regclass) AS g";
    let crate::db::Pool::Postgres(pool) = db.writer() else { unreachable!("a PostgreSQL database") };
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pgstattuple").execute(pool).await.unwrap();
    sqlx::query_scalar(pending).fetch_one(pool).await.unwrap()
}

#[tokio::test]
async fn postgres_searches_read_the_users_own_matches_only() {
    let (db, name) = postgres_database().await;
    // Bob's inbox is full of deploys; alice has ten, in their descriptions, and so do five
    // broadcasts.
    let deploys = [
        "INSERT INTO notifications (id, user_ref, origin, created, title, severity)
         SELECT 'b' || k, 'user:default/bob', 'external:test', k, 'deploy ' || k, 2 FROM generate_series(1, 5000) AS k",
        "INSERT INTO notifications (id, user_ref, origin, created, title, description, severity)
         SELECT 'd' || k, CASE WHEN k <= 10 THEN 'user:default/alice' END, 'external:test', k, 'notification',
                'Deploy ' || k, 2
         FROM generate_series(1, 15) AS k",
    ];
    for statement in deploys {
        execute(&db, statement).await;
    }
    // The refresh merges what the insertions left in the indexes' pending lists, which every
    // search would otherwise read through.
    assert!(pending_trigrams(&db).await > 0, "the filling left nothing pending");
    refreshed(&db).await;
    assert_eq!(pending_trigrams(&db).await, 0, "the refresh left trigrams pending");
    let search = |text: &str| ListQuery {
        filter: Filter { search: Some(text.into()), ..Filter::default() },
        ..ListQuery::default()
    };
    let through_indexes = |p: &str| {
        p.contains("Bitmap Index Scan on notifications_user_text")
            && p.contains("Bitmap Index Scan on notifications_broadcast_text")
    };
    // The count and the page read alice's matches and the broadcasts', none of bob's 5,000.
    for (text, found) in [("deploy", 15), ("nowhere", 0)] {
        let q = search(text);
        assert_eq!(count(&db, &alice(), None, &q.filter).await.unwrap(), found);
        let counted = count_sql(Backend::Postgres, &alice(), None, &q.filter);
        let plan = postgres_plan(&db, counted.clone()).await;
        assert!(through_indexes(&plan), "count of {text}:\n{plan}");
        assert_eq!(postgres_rows_read(&db, counted).await, found as u64, "count of {text}:\n{plan}");
        let sorted = page_sql(Backend::Postgres, &alice(), None, &q, false, None).unwrap();
        let plan = postgres_plan(&db, sorted.clone()).await;
        assert!(through_indexes(&plan), "page of {text}:\n{plan}");
        assert_eq!(postgres_rows_read(&db, sorted).await, found as u64, "page of {text}:\n{plan}");
    }

    // Too short for trigrams: the inbox is walked in its order.
    let scanned =
        postgres_plan(&db, page_sql(Backend::Postgres, &alice(), None, &search("de"), false, None).unwrap()).await;
    assert!(
        !scanned.contains("notifications_user_text") && !scanned.contains("notifications_broadcast_text"),
        "short text:\n{scanned}"
    );
    drop_scratch_postgres(db, name).await;
}

/// Like [`postgres_rows_read`], for the generic plan: the one PostgreSQL keeps for a prepared
/// statement under `plan_cache_mode = force_generic_plan`, as on the readers of
/// [`Db::reader_planned_once`]. `EXPLAIN` with bound values plans for those values, so the
/// statement is prepared by name and executed with them as literals.
async fn postgres_generic_rows_read(db: &Db, (text, binds): (String, Vec<Bind>)) -> (u64, String) {
    let crate::db::Pool::Postgres(pool) = db.writer() else { unreachable!("a PostgreSQL database") };
    let mut conn = pool.acquire().await.unwrap();
    // Typed as sqlx binds them (a value the statement does not use has no type to infer).
    let (types, values): (Vec<_>, Vec<_>) = binds
        .iter()
        .map(|b| match b {
            Bind::Text(t) => ("text", format!("'{}'", t.replace('\'', "''"))),
            Bind::Int(i) => ("bigint", i.to_string()),
        })
        .unzip();
    let (types, values) = (types.join(", "), values.join(", "));
    sqlx::query("SET plan_cache_mode = force_generic_plan").execute(&mut *conn).await.unwrap();
    sqlx::query(&format!("PREPARE generic ({types}) AS {text}")).execute(&mut *conn).await.unwrap();
    let explain = format!("EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) EXECUTE generic ({values})");
    let steps: Vec<String> = sqlx::query_scalar(&explain).fetch_all(&mut *conn).await.unwrap();
    sqlx::query("DEALLOCATE generic").execute(&mut *conn).await.unwrap();
    sqlx::query("RESET plan_cache_mode").execute(&mut *conn).await.unwrap();
    (rows_in_plan(&steps), steps.join("\n"))
}

/// The `plan_cache_mode` of the connections `pool` lends.
async fn mode(pool: crate::db::Pool<'_>) -> String {
    with_pool!(pool, |c| sqlx::query_scalar::<_, String>("SHOW plan_cache_mode").fetch_one(c).await).unwrap()
}

#[tokio::test]
async fn postgres_generic_plans_of_plain_filters_read_a_page() {
    let (db, name) = postgres_database().await;
    refreshed(&db).await;
    assert_eq!(mode(db.reader_planned_once()).await, "force_generic_plan");
    assert_eq!(mode(db.reader()).await, "auto");

    // The filters `readers_for` sends to the readers that plan once: all but a search, a
    // topic and the snoozed view, alone and together, each value as common as a page or rarer.
    let with = |f: fn(&mut Filter)| {
        let mut filter = Filter::default();
        f(&mut filter);
        filter
    };
    let plain = [
        Filter::default(),
        with(|f| f.read = Some(false)),
        with(|f| f.read = Some(true)),
        with(|f| f.saved = Some(true)),
        with(|f| f.archived = Archived::Only),
        with(|f| (f.snoozed, f.archived) = (Snoozed::Any, Archived::Any)),
        with(|f| f.minimum_severity = Some(Severity::Critical)),
        with(|f| f.minimum_severity = Some(Severity::High)),
        with(|f| f.minimum_severity = Some(Severity::Low)),
        with(|f| f.created_after = Some(99_990)),
        with(|f| f.created_after = Some(1)),
        with(|f| (f.minimum_severity, f.read) = (Some(Severity::Critical), Some(false))),
    ];
    for filter in plain {
        assert_eq!(mode(readers_for(&db, &filter)).await, "force_generic_plan", "{filter:?}");
        for (order, newest_first) in [(vec![], true), (vec![(OrderField::Severity, true)], false)] {
            let q = ListQuery { filter: filter.clone(), order, ..ListQuery::default() };
            for walk in [false, true] {
                let page = page_sql(Backend::Postgres, &alice(), None, &q, walk, None).unwrap();
                let custom = postgres_rows_read(&db, page.clone()).await;
                let (generic, plan) = postgres_generic_rows_read(&db, page).await;
                // No more than the plan for the values (which reads all of a filter that
                // matches none of alice's rows); newest first, a page's rows in order and
                // the broadcasts at most.
                let most = if newest_first { (custom + 100).max(2_000) } else { custom + 100 };
                assert!(generic <= most, "{filter:?} walk {walk}: {generic} rows, custom {custom}:\n{plan}");
            }
        }
        let counted = count_sql(Backend::Postgres, &alice(), None, &filter);
        let custom = postgres_rows_read(&db, counted.clone()).await;
        let (generic, plan) = postgres_generic_rows_read(&db, counted).await;
        assert!(generic <= custom, "count of {filter:?}: {generic} rows, custom {custom}:\n{plan}");
    }
    let (generic, plan) = postgres_generic_rows_read(&db, status_sql(Backend::Postgres, &alice())).await;
    assert_eq!(generic, 0, "the status reads the tallies:\n{plan}");

    // A search, a topic or the snoozed view keeps plans for its values. (The snoozed view's
    // generic plan walks every row of the table for the few that are snoozed: the time now
    // it compares with could make them all.) A rare topic's page sorted by severity, under
    // its generic plan, walks the inbox in that order for the topic's 100 rows.
    let rare_topic = ListQuery {
        filter: Filter { topic: Some("incident".into()), ..Filter::default() },
        order: vec![(OrderField::Severity, true)],
        ..ListQuery::default()
    };
    let page = page_sql(Backend::Postgres, &alice(), None, &rare_topic, false, None).unwrap();
    let custom = postgres_rows_read(&db, page.clone()).await;
    let (generic, plan) = postgres_generic_rows_read(&db, page).await;
    assert!(custom <= 200 && generic > 10 * custom, "rare topic: generic {generic} rows, custom {custom}:\n{plan}");
    for filter in [
        Filter { snoozed: Snoozed::Only, ..Filter::default() },
        Filter { topic: Some("incident".into()), ..Filter::default() },
        Filter { search: Some("notification 19".into()), ..Filter::default() },
        Filter { search: Some("notification 19".into()), topic: Some("deploy".into()), ..Filter::default() },
    ] {
        assert_eq!(mode(readers_for(&db, &filter)).await, "auto", "{filter:?}");
    }
    drop_scratch_postgres(db, name).await;
}
