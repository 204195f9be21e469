//! The inbox counts kept per user (`core::notifications::counts`) agree with counting the
//! rows, through every kind of write: publishing, scope replacement, state changes, snoozes
//! that fall due and wake, and retention; and so do searches through the search index.

use herald_core::notifications::{self, Archived, Filter, ListQuery, PublishRequest, Snoozed, StateChange};
use herald_model::{EntityRef, Severity};
use serde_json::json;

use crate::both;
use crate::helpers::{TestApp, spawn_quiet};

/// A small deterministic generator: the test must fail the same way every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

async fn publish(app: &TestApp, to: Option<&str>, payload: serde_json::Value) {
    let recipients = match to {
        Some(user) => json!({"type": "entity", "entityRef": user}),
        None => json!({"type": "broadcast"}),
    };
    let req: PublishRequest = serde_json::from_value(json!({"recipients": recipients, "payload": payload})).unwrap();
    notifications::publish(&app.db, &app.publish, "external:counts", &req).await.unwrap();
}

fn payload(rng: &mut Lcg, i: usize) -> serde_json::Value {
    let severity = ["low", "normal", "high", "critical"][rng.next(4) as usize];
    let mut p = json!({"title": format!("n{i}"), "severity": severity});
    if rng.next(2) == 0 {
        p["description"] = json!(format!("Step {}", rng.next(30)));
    }
    if let Some(topic) = [None, Some("a"), Some("b"), Some("c")][rng.next(4) as usize] {
        p["topic"] = json!(topic);
    }
    // Some replace an earlier one with the same scope, changing its severity and topic.
    if rng.next(3) == 0 {
        p["scope"] = json!(format!("s{}", rng.next(5)));
    }
    p
}

/// Every combination of the dimensions the counts keep.
fn filters() -> Vec<Filter> {
    let mut all = Vec::new();
    for read in [None, Some(false), Some(true)] {
        for saved in [None, Some(true)] {
            for archived in [Archived::Exclude, Archived::Only, Archived::Any] {
                for snoozed in [Snoozed::Hide, Snoozed::Any] {
                    for minimum_severity in [None, Some(Severity::High)] {
                        for topic in [None, Some("a".to_string())] {
                            all.push(Filter {
                                read,
                                saved,
                                archived,
                                snoozed,
                                minimum_severity,
                                topic: topic.clone(),
                                ..Filter::default()
                            });
                        }
                    }
                }
            }
        }
    }
    all
}

/// Compares, for `user`, every filter's count from the tallies with a count of the rows
/// (a `created_after` of 0 matches everything and makes `list` count rows).
async fn assert_consistent(app: &TestApp, user: &EntityRef, when: &str) {
    for filter in filters() {
        let q = ListQuery { filter: filter.clone(), limit: 0, ..ListQuery::default() };
        let scanned = ListQuery { filter: Filter { created_after: Some(0), ..filter.clone() }, ..q.clone() };
        let (_, tallied) = notifications::list(&app.db, user, &q).await.unwrap();
        let (_, counted) = notifications::list(&app.db, user, &scanned).await.unwrap();
        assert_eq!(tallied, counted, "{when}: {user} under {filter:?}");
        let topics = notifications::topics(&app.db, user, &filter).await.unwrap();
        let scanned_topics = notifications::topics(&app.db, user, &scanned.filter).await.unwrap();
        assert_eq!(topics, scanned_topics, "{when}: {user}'s topics under {filter:?}");
    }
    let status = notifications::status(&app.db, user).await.unwrap();
    let count = |read| async move {
        let filter = Filter { read: Some(read), created_after: Some(0), ..Filter::default() };
        notifications::list(&app.db, user, &ListQuery { filter, limit: 0, ..ListQuery::default() }).await.unwrap().1
    };
    assert_eq!((status.unread, status.read), (count(false).await, count(true).await), "{when}: {user}'s status");
}

async fn ids(app: &TestApp, user: &EntityRef) -> Vec<String> {
    let filter = Filter { archived: Archived::Any, snoozed: Snoozed::Any, ..Filter::default() };
    let q = ListQuery { filter, limit: 1000, ..ListQuery::default() };
    notifications::list(&app.db, user, &q).await.unwrap().0.into_iter().map(|n| n.id).collect()
}

async fn check(app: &TestApp, users: &[EntityRef], when: &str) {
    for user in users {
        assert_consistent(app, user, when).await;
        assert_search_agrees(app, user, when).await;
    }
}

/// Searches through the index agree with reading every notification of `user` and matching
/// the text here.
async fn assert_search_agrees(app: &TestApp, user: &EntityRef, when: &str) {
    let every = Filter { archived: Archived::Any, snoozed: Snoozed::Any, ..Filter::default() };
    let q = |filter: Filter| ListQuery { filter, limit: 1000, ..ListQuery::default() };
    let (all, _) = notifications::list(&app.db, user, &q(every.clone())).await.unwrap();
    for text in ["n1", "N12", "n3", "STEP 2", "ep 1"] {
        let holds = |s: &str| s.to_lowercase().contains(&text.to_lowercase());
        let mut expected: Vec<String> = all
            .iter()
            .filter(|n| holds(&n.payload.title) || n.payload.description.as_deref().is_some_and(holds))
            .map(|n| n.id.clone())
            .collect();
        let filter = Filter { search: Some(text.to_string()), ..every.clone() };
        let (found, total) = notifications::list(&app.db, user, &q(filter)).await.unwrap();
        let mut found: Vec<String> = found.into_iter().map(|n| n.id).collect();
        expected.sort();
        found.sort();
        assert_eq!((found, total), (expected.clone(), expected.len() as i64), "{when}: {user} searching {text:?}");
    }
    // Under every filter, a search counts the filter's rows that hold the text (on SQLite
    // the count reads its own copy of the columns filters read: migration 0009).
    let text = "ep 1";
    for filter in filters() {
        let (rows, _) = notifications::list(&app.db, user, &q(filter.clone())).await.unwrap();
        let holds = |s: &str| s.to_lowercase().contains(text);
        let expected = rows
            .iter()
            .filter(|n| holds(&n.payload.title) || n.payload.description.as_deref().is_some_and(holds))
            .count();
        let searched = ListQuery { limit: 0, ..q(Filter { search: Some(text.into()), ..filter.clone() }) };
        let (_, total) = notifications::list(&app.db, user, &searched).await.unwrap();
        assert_eq!(total, expected as i64, "{when}: {user} searching {text:?} under {filter:?}");
    }
}

// On a quiet app: the snoozes this test makes due must stay due until it has counted them.
both!(counts_agree_with_the_rows_through_every_write, spawn_quiet, |app| async {
    let users: Vec<EntityRef> = ["user:default/alice", "user:default/bob"].iter().map(|u| u.parse().unwrap()).collect();
    let mut rng = Lcg(7);
    for i in 0..80 {
        let to = if i % 9 == 0 { None } else { Some(users[rng.next(2) as usize].as_str()) };
        publish(&app, to, payload(&mut rng, i)).await;
    }
    check(&app, &users, "after publishing").await;

    for round in 0..6 {
        for user in &users {
            let all = ids(&app, user).await;
            let chosen: Vec<String> = all.iter().filter(|_| rng.next(3) == 0).cloned().collect();
            let flip = |on: u64| Some(on == 0);
            let change = match rng.next(4) {
                0 => StateChange { read: flip(rng.next(2)), ..StateChange::default() },
                1 => StateChange { saved: flip(rng.next(2)), read: flip(rng.next(2)), ..StateChange::default() },
                2 => StateChange { archived: flip(rng.next(2)), ..StateChange::default() },
                _ => StateChange {
                    snoozed_until: Some(Some(herald_core::time::now_ms() + 3_600_000)),
                    ..StateChange::default()
                },
            };
            notifications::update(&app.db, user, &chosen, change).await.unwrap();
        }
        publish(&app, Some(users[0].as_str()), payload(&mut rng, 100 + round)).await;
        check(&app, &users, &format!("after round {round} of state changes")).await;
    }

    // Snoozes fall due: back in the inbox before the timer wakes them, and after.
    let due = "UPDATE notifications SET snoozed_until = 1 WHERE snoozed_until IS NOT NULL AND severity >= 3";
    herald_core::with_pool!(app.db.writer(), |c| sqlx::query(due).execute(c).await.map(|r| r.rows_affected())).unwrap();
    check(&app, &users, "with due snoozes").await;
    notifications::wake_snoozed(&app.db).await.unwrap();
    check(&app, &users, "after waking").await;

    // Retention removes old notifications.
    let age = "UPDATE notifications SET created = 1 WHERE severity = 1 OR topic = 'b'";
    herald_core::with_pool!(app.db.writer(), |c| sqlx::query(age).execute(c).await.map(|r| r.rows_affected())).unwrap();
    let cleaned = herald_core::maintenance::clean_up(&app.db, 1, 3_600_000).await.unwrap();
    assert!(cleaned.notifications > 0, "retention had something to remove");
    check(&app, &users, "after retention").await;
});

both!(concurrent_writers_neither_fail_nor_miscount, |app| async {
    let alice: EntityRef = "user:default/alice".parse().unwrap();
    let mut rng = Lcg(11);
    for i in 0..40 {
        publish(&app, Some(alice.as_str()), payload(&mut rng, i)).await;
    }
    let all = ids(&app, &alice).await;
    // Futures of one task, interleaved at every await: their transactions overlap.
    let updaters = (0..8u64).map(|t| {
        let (app, alice, mut ids) = (&app, &alice, all.clone());
        async move {
            // Each writer meets the same rows in its own order: on PostgreSQL, count rows
            // locked in different orders would deadlock without the inbox lock.
            let mut rng = Lcg(100 + t);
            for round in 0..10u64 {
                let by = rng.next(ids.len() as u64) as usize;
                ids.rotate_left(by);
                if t % 2 == 0 {
                    ids.reverse();
                }
                let change = if (t + round) % 3 == 0 {
                    StateChange { archived: Some(round % 2 == 0), ..StateChange::default() }
                } else {
                    StateChange {
                        read: Some(rng.next(2) == 0),
                        saved: Some(rng.next(2) == 0),
                        ..StateChange::default()
                    }
                };
                notifications::update(&app.db, alice, &ids[..20], change).await.expect("a state change");
            }
        }
    });
    let publishers = (0..2u64).map(|t| {
        let (app, alice) = (&app, &alice);
        async move {
            let mut rng = Lcg(200 + t);
            for i in 0..20 {
                publish(app, Some(alice.as_str()), payload(&mut rng, 1000 + i as usize)).await;
            }
        }
    });
    futures::future::join(futures::future::join_all(updaters), futures::future::join_all(publishers)).await;
    assert_consistent(&app, &alice, "after concurrent writers").await;
});

/// The page at offset 2 (limit 20) of `user`'s notifications under `filter`, as titles, and
/// how many match in all.
async fn third_page(app: &TestApp, user: &EntityRef, filter: Filter) -> (Vec<String>, i64) {
    let q = ListQuery { filter, limit: 20, offset: 2, ..ListQuery::default() };
    let (page, total) = notifications::list(&app.db, user, &q).await.unwrap();
    (page.into_iter().map(|n| n.payload.title).collect(), total)
}

/// What [`third_page`] should hold when the `titles` were published in order and those whose
/// index `keep` accepts match.
fn expected_third_page(titles: &[String], keep: impl Fn(usize) -> bool) -> (Vec<String>, i64) {
    let matching: Vec<&String> = titles.iter().enumerate().rev().filter(|(i, _)| keep(*i)).map(|(_, t)| t).collect();
    (matching.iter().skip(2).take(20).map(|t| t.to_string()).collect(), matching.len() as i64)
}

both!(severity_pages_agree_whichever_way_they_are_found, |app| async {
    let alice: EntityRef = "user:default/alice".parse().unwrap();
    // More `high` than `notifications::list` sorts (walked in order), few `critical` (looked
    // up through the index and sorted).
    for i in 0..1200usize {
        let severity = if i % 240 == 7 {
            "critical"
        } else if i % 12 == 0 {
            "low"
        } else {
            "high"
        };
        publish(&app, Some(alice.as_str()), json!({"title": format!("n{i}"), "severity": severity})).await;
    }
    let titles: Vec<String> = (0..1200).map(|i| format!("n{i}")).collect();
    let at_least =
        |severity| third_page(&app, &alice, Filter { minimum_severity: Some(severity), ..Filter::default() });
    assert_eq!(at_least(Severity::High).await, expected_third_page(&titles, |i| i % 12 != 0), "high, walked");
    assert_eq!(at_least(Severity::Critical).await, expected_third_page(&titles, |i| i % 240 == 7), "critical, sorted");
});

both!(search_pages_agree_whichever_way_they_are_found, |app| async {
    let alice: EntityRef = "user:default/alice".parse().unwrap();
    // More matches of "common" than `notifications::list` sorts (walked in order), few of
    // "rare" (looked up through the index and sorted); bob's never show.
    let titles: Vec<String> =
        (0..1200usize).map(|i| if i % 240 == 7 { format!("n{i} Rare") } else { format!("n{i}") }).collect();
    for (i, title) in titles.iter().enumerate() {
        let description = if i % 12 == 0 { "other" } else { "a COMMON word" };
        publish(&app, Some(alice.as_str()), json!({"title": title, "description": description})).await;
    }
    publish(&app, Some("user:default/bob"), json!({"title": "bob's rare common"})).await;
    let search = |text: &str| third_page(&app, &alice, Filter { search: Some(text.to_string()), ..Filter::default() });
    assert_eq!(search("common").await, expected_third_page(&titles, |i| i % 12 != 0), "common, walked");
    assert_eq!(search("rARe").await, expected_third_page(&titles, |i| i % 240 == 7), "rare, sorted");
});
