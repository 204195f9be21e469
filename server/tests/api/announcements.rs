//! Announcements: composed by administrators, published as notifications (a broadcast for
//! everyone), edited as scope updates, scheduled, expired and withdrawn, with read receipts.

use std::time::Duration;

use herald_core::announcements::{self, Draft, Intent};
use herald_model::{EntityRef, Severity};
use serde_json::{Value, json};

use crate::both;
use crate::helpers::TestApp;

const LIST: &str = "/api/notifications/notifications";

fn admin() -> EntityRef {
    "user:default/alice".parse().unwrap()
}

fn draft(title: &str, audience: &[&str]) -> Draft {
    Draft {
        title: title.into(),
        body: Some("Read **this**.".into()),
        severity: Severity::High,
        everyone: audience.is_empty(),
        audience: audience.iter().map(|s| s.to_string()).collect(),
        forward: true,
        ..Draft::default()
    }
}

async fn titles(app: &TestApp, token: &str) -> Vec<String> {
    let body: Value = app.get(LIST, token).await.body;
    body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["payload"]["title"].as_str().unwrap().to_string())
        .collect()
}

/// Changes an announcement's stored row behind Herald's back: `set` is the `SET` clause.
async fn tamper(app: &TestApp, id: &str, set: &str) {
    let sql = format!("UPDATE announcements SET {set} WHERE id = $1");
    herald_core::with_pool!(app.db.writer(), |c| sqlx::query(&sql)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))
    .unwrap();
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never happened: {what}");
}

both!(an_announcement_reaches_its_audience_is_edited_read_and_withdrawn, |app| async {
    let ctx = app.publish_context();
    let (bob, carol) = (app.user_token("bob").await, app.user_token("carol").await);
    assert_eq!(announcements::reach(&app.db, false, &["group:default/platform".into()], &[]).await.unwrap(), 2);
    assert_eq!(announcements::reach(&app.db, true, &[], &[]).await.unwrap(), 4);

    let a = announcements::save(
        &app.db,
        &ctx,
        &admin(),
        None,
        &draft("Migration deadline", &["group:default/platform"]),
        Intent::Publish,
    )
    .await
    .unwrap();
    assert_eq!(a.state, "published");
    assert_eq!((a.recipients, a.read), (2, 0));
    assert_eq!(titles(&app, &bob).await, ["Migration deadline"]);
    assert!(titles(&app, &carol).await.is_empty(), "not in the audience");
    let n = &app.get(LIST, &bob).await.body["notifications"][0];
    assert_eq!(n["origin"], "herald:announcements");
    let id = n["id"].as_str().unwrap().to_string();
    app.post("/api/notifications/notifications/update", &bob, json!({"ids": [id], "read": true})).await;
    let a = announcements::get(&app.db, &a.id).await.unwrap();
    assert_eq!((a.recipients, a.read), (2, 1), "read receipts follow");
    let receipts = announcements::receipts(&app.db, &a.id).await.unwrap();
    assert!(receipts.iter().any(|(u, r)| u == "user:default/bob" && r.is_some()));
    assert!(receipts.iter().any(|(u, r)| u == "user:default/alice" && r.is_none()));

    // An edit is a scope update: the same notification, changed and unread again.
    let edited = announcements::save(
        &app.db,
        &ctx,
        &admin(),
        Some(&a.id),
        &draft("Migration deadline moved", &["group:default/platform"]),
        Intent::Publish,
    )
    .await
    .unwrap();
    let list = app.get(LIST, &bob).await.body;
    assert_eq!(list["totalCount"], 1);
    assert_eq!(list["notifications"][0]["id"], id.as_str());
    assert_eq!(list["notifications"][0]["payload"]["title"], "Migration deadline moved");
    assert!(list["notifications"][0]["read"].is_null());
    let err = announcements::save(
        &app.db,
        &ctx,
        &admin(),
        Some(&a.id),
        &draft("x", &["group:default/platform"]),
        Intent::Draft,
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("publish the edit"), "{err}");

    announcements::withdraw(&app.db, &edited.id).await.unwrap();
    assert!(titles(&app, &bob).await.is_empty(), "withdrawn: gone from inboxes");
    assert_eq!(announcements::get(&app.db, &a.id).await.unwrap().state, "withdrawn");
    assert!(
        announcements::save(&app.db, &ctx, &admin(), Some(&a.id), &draft("x", &[]), Intent::Publish).await.is_err()
    );

    // To everyone: one broadcast, whatever the number of users.
    let all =
        announcements::save(&app.db, &ctx, &admin(), None, &draft("All hands", &[]), Intent::Publish).await.unwrap();
    assert_eq!(titles(&app, &carol).await, ["All hands"]);
    let stored: i64 = herald_core::with_pool!(app.db.reader(), |c| sqlx::query_scalar(
        "SELECT COUNT(*) FROM notifications WHERE scope = $1"
    )
    .bind(format!("announcement:{}", all.id))
    .fetch_one(c)
    .await)
    .unwrap();
    assert_eq!(stored, 1);
    assert_eq!(announcements::get(&app.db, &all.id).await.unwrap().recipients, 4);
    assert_eq!(announcements::list(&app.db).await.unwrap().len(), 2);
});

// A due announcement that fails to publish (here its stored link is no longer acceptable)
// holds back neither the others due with it nor the expiries. It is marked failed with the
// reason, is not tried again, and is published once an administrator saves it again.
both!(one_announcement_that_cannot_be_published_holds_back_no_other, |app| async {
    let ctx = app.publish_context();
    let bob = app.user_token("bob").await;
    let mut ids = Vec::new();
    for title in ["Broken", "Fine 1", "Fine 2"] {
        let mut d = draft(title, &["user:default/bob"]);
        d.publish_at = Some(herald_core::time::now_ms() + 60_000);
        ids.push(announcements::save(&app.db, &ctx, &admin(), None, &d, Intent::Schedule).await.unwrap().id);
    }
    // All due at once, the broken one first in the table.
    herald_core::with_pool!(app.db.writer(), |c| sqlx::query(
        "UPDATE announcements SET publish_at = 0,
             link = CASE WHEN id = $1 THEN 'javascript:alert(1)' ELSE link END"
    )
    .bind(&ids[0])
    .execute(c)
    .await
    .map(|r| r.rows_affected()))
    .unwrap();
    let _ = announcements::run_due(&app.db, &ctx).await.unwrap();
    eventually("the others are published", async || {
        let mut t = titles(&app, &bob).await;
        t.sort();
        t == ["Fine 1", "Fine 2"]
    })
    .await;
    // The background timer may have claimed it first: its outcome is the same.
    eventually("the broken one is marked failed", async || {
        announcements::get(&app.db, &ids[0]).await.unwrap().state == "failed"
    })
    .await;
    let broken = announcements::get(&app.db, &ids[0]).await.unwrap();
    let why = broken.failure.as_deref().unwrap_or_default();
    assert!(why.contains("payload.link"), "the reason is kept: {why:?}");
    assert_eq!(broken.recipients, 1, "failed ones show whom they would reach");

    // Not tried again, not even once a claim would have lapsed.
    tamper(&app, &ids[0], "updated_at = 0").await;
    assert_eq!(announcements::run_due(&app.db, &ctx).await.unwrap(), (0, 0));
    let still = announcements::get(&app.db, &ids[0]).await.unwrap();
    assert_eq!((still.state.as_str(), still.updated_at), ("failed", 0));

    // Saved again with a good link, it is published and the reason is gone.
    let mut fixed = draft("Broken, then fixed", &["user:default/bob"]);
    fixed.link = Some("https://example.com/fixed".into());
    let fixed = announcements::save(&app.db, &ctx, &admin(), Some(&ids[0]), &fixed, Intent::Publish).await.unwrap();
    assert_eq!((fixed.state.as_str(), fixed.failure), ("published", None));
    assert!(titles(&app, &bob).await.contains(&"Broken, then fixed".to_string()));

    // A failed one can be withdrawn instead.
    let mut other = draft("Broken again", &["user:default/bob"]);
    other.publish_at = Some(herald_core::time::now_ms() + 60_000);
    let other = announcements::save(&app.db, &ctx, &admin(), None, &other, Intent::Schedule).await.unwrap();
    tamper(&app, &other.id, "publish_at = 0, link = 'javascript:alert(1)'").await;
    let _ = announcements::run_due(&app.db, &ctx).await.unwrap();
    eventually("the second broken one is marked failed", async || {
        announcements::get(&app.db, &other.id).await.unwrap().state == "failed"
    })
    .await;
    announcements::withdraw(&app.db, &other.id).await.unwrap();
    assert_eq!(announcements::get(&app.db, &other.id).await.unwrap().state, "withdrawn");
});

both!(announcements_are_scheduled_and_expire_on_time, |app| async {
    let ctx = app.publish_context();
    let bob = app.user_token("bob").await;
    let now = herald_core::time::now_ms();
    // Times are a minute away, then brought forward: a time a moment away could pass on a
    // loaded machine before the test looks ("not before its time" would see it published).
    let mut later = draft("Published on time", &["user:default/bob"]);
    later.publish_at = Some(now + 60_000);
    let a = announcements::save(&app.db, &ctx, &admin(), None, &later, Intent::Schedule).await.unwrap();
    assert_eq!(a.state, "scheduled");
    assert_eq!(announcements::run_due(&app.db, &ctx).await.unwrap(), (0, 0), "nothing is due yet");
    assert!(titles(&app, &bob).await.is_empty(), "not before its time");
    tamper(&app, &a.id, &format!("publish_at = {}", herald_core::time::now_ms())).await;
    eventually("the scheduled announcement arrives", async || titles(&app, &bob).await == ["Published on time"]).await;
    // Marked published just after its notifications commit, so a reader may see them first.
    eventually("it is marked published", async || {
        announcements::get(&app.db, &a.id).await.unwrap().state == "published"
    })
    .await;

    let mut short = draft("Short-lived", &["user:default/bob"]);
    short.expires_at = Some(herald_core::time::now_ms() + 60_000);
    let s = announcements::save(&app.db, &ctx, &admin(), None, &short, Intent::Publish).await.unwrap();
    assert!(titles(&app, &bob).await.contains(&"Short-lived".to_string()));
    assert_eq!(announcements::run_due(&app.db, &ctx).await.unwrap(), (0, 0), "nothing has expired yet");
    tamper(&app, &s.id, &format!("expires_at = {}", herald_core::time::now_ms())).await;
    eventually("it expires", async || !titles(&app, &bob).await.contains(&"Short-lived".to_string())).await;
    assert_eq!(announcements::get(&app.db, &s.id).await.unwrap().state, "expired");

    // A claim left by an instance that died between claiming and publishing is taken over.
    let mut orphan = draft("Claimed, then the instance died", &["user:default/bob"]);
    orphan.publish_at = Some(herald_core::time::now_ms() + 60_000);
    let o = announcements::save(&app.db, &ctx, &admin(), None, &orphan, Intent::Schedule).await.unwrap();
    tamper(&app, &o.id, "state = 'publishing', updated_at = 0").await;
    eventually("the orphaned claim is published", async || {
        titles(&app, &bob).await.contains(&"Claimed, then the instance died".to_string())
    })
    .await;
    assert_eq!(announcements::get(&app.db, &o.id).await.unwrap().state, "published");

    // What cannot be done is refused with a reason.
    let mut past = draft("Too late", &["user:default/bob"]);
    past.publish_at = Some(now - 1000);
    assert!(announcements::save(&app.db, &ctx, &admin(), None, &past, Intent::Schedule).await.is_err());
    assert!(
        announcements::save(
            &app.db,
            &ctx,
            &admin(),
            None,
            &Draft { everyone: false, ..draft("Nobody", &[]) },
            Intent::Publish
        )
        .await
        .is_err()
    );
    let mut hostile = draft("Hostile", &[]);
    hostile.link = Some("javascript:alert(1)".into());
    assert!(announcements::save(&app.db, &ctx, &admin(), None, &hostile, Intent::Publish).await.is_err());
});
