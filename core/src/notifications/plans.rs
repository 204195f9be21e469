//! The plans SQLite chooses for the inbox's queries. SQLite keeps no statistics here, so a
//! query that reads the wrong index still answers correctly, only thousands of times slower
//! on a large inbox; these tests pin the plans that keep the work proportional to the answer.

use super::*;

/// A database holding an inbox, so that the plans are those of a database in use.
async fn database() -> (Db, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("herald-plans-{}", uuid::Uuid::new_v4().simple()));
    let db = Db::connect(&format!("sqlite:{}", dir.join("t.db").display()), &Default::default()).await.unwrap();
    db.migrate().await.unwrap();
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
    plan.lines().find(|l| l.starts_with("SEARCH n ") || l.starts_with("SCAN n")).unwrap_or_default()
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
async fn searches_go_through_the_index_unless_the_count_says_to_walk() {
    let (db, dir) = database().await;
    let q = ListQuery { filter: Filter { search: Some("deploy".into()), ..Filter::default() }, ..ListQuery::default() };
    let from_matches = "SEARCH n USING INTEGER PRIMARY KEY (rowid=?)";
    let walking = "SEARCH n USING INDEX notifications_user_created (user_ref=?)";
    let search_index = "notifications_search VIRTUAL TABLE";

    let counted = plan(&db, count_sql(Backend::Sqlite, &alice(), &q.filter)).await;
    assert_eq!(personal(&counted), from_matches, "count:\n{counted}");
    assert!(counted.contains(search_index), "count:\n{counted}");
    let sorted = plan(&db, page_sql(Backend::Sqlite, &alice(), &q, false).unwrap()).await;
    assert_eq!(personal(&sorted), from_matches, "few matches:\n{sorted}");
    let walked = plan(&db, page_sql(Backend::Sqlite, &alice(), &q, true).unwrap()).await;
    assert_eq!(personal(&walked), walking, "many matches:\n{walked}");
    assert!(walked.contains(search_index) && !walked.contains(from_matches), "many matches:\n{walked}");

    // Too short for trigrams: a scan, walked in order.
    let short = ListQuery { filter: Filter { search: Some("de".into()), ..Filter::default() }, ..q };
    let scanned = plan(&db, page_sql(Backend::Sqlite, &alice(), &short, false).unwrap()).await;
    assert_eq!(personal(&scanned), walking, "short text:\n{scanned}");
    assert!(!scanned.contains(search_index), "short text:\n{scanned}");
    std::fs::remove_dir_all(dir).ok();
}
