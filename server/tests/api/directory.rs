use herald_core::directory::{groups_of, import_catalog, list_groups, resolve_recipients};
use herald_model::EntityRef;
use serde_json::json;

use crate::both;
use crate::helpers::{Backend, spawn_app_with, to};

fn r(s: &str) -> EntityRef {
    s.parse().unwrap()
}

both!(re_importing_updates_without_duplicating, |app| async {
    let again = "
kind: User
metadata: {name: bob, annotations: {slack.com/user-id: U123}}
spec: {profile: {displayName: Robert, email: robert@example.com}, memberOf: [frontend]}
";
    import_catalog(&app.db, again).await.unwrap();
    import_catalog(&app.db, again).await.unwrap();
    let users = herald_core::directory::list_users(&app.db).await.unwrap();
    let bobs: Vec<_> = users.iter().filter(|u| u.user_ref == "user:default/bob").collect();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].display_name.as_deref(), Some("Robert"));
    assert!(bobs[0].annotations.contains("slack.com/user-id"));
    // Bob's own memberOf replaced platform with frontend.
    assert_eq!(
        groups_of(&app.db, &r("user:default/bob")).await.unwrap(),
        [r("group:default/engineering"), r("group:default/frontend")]
    );
    let platform = resolve_recipients(&app.db, &[r("group:default/platform")], &[]).await.unwrap();
    assert_eq!(platform, [r("user:default/alice")]);
    let groups = list_groups(&app.db).await.unwrap();
    assert_eq!(groups.iter().filter(|g| g.group_ref == "group:default/platform").count(), 1);
});

both!(group_cycles_resolve_without_looping, |app| async {
    import_catalog(
        &app.db,
        "
kind: Group
metadata: {name: a}
spec: {type: team, children: [b], members: [u1]}
---
kind: Group
metadata: {name: b}
spec: {type: team, children: [a], members: [u2]}
",
    )
    .await
    .unwrap();
    let users = resolve_recipients(&app.db, &[r("group:a")], &[]).await.unwrap();
    assert_eq!(users, [r("user:default/u1"), r("user:default/u2")]);
    let t = app.service_token("external:ci").await;
    assert_eq!(app.publish(&t, to(&["group:b"]), json!({"title": "loop"})).await.len(), 2);
});

both!(bad_catalog_files_are_refused_whole, |app| async {
    let before = herald_core::directory::count_users(&app.db).await.unwrap();
    let err =
        import_catalog(&app.db, "kind: User\nmetadata: {name: ok1}\n---\nkind: User\nmetadata: {name: 'bad name'}\n")
            .await
            .unwrap_err();
    assert!(err.to_string().contains("bad name"), "{err}");
    assert_eq!(
        herald_core::directory::count_users(&app.db).await.unwrap(),
        before,
        "nothing of a failed import is kept"
    );
});

#[tokio::test]
async fn configured_catalog_paths_are_imported_at_start() {
    let dir = std::env::temp_dir().join(format!("herald-catalog-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("org.yaml");
    std::fs::write(&file, "kind: User\nmetadata: {name: zoe}\nspec: {profile: {email: zoe@example.com}}\n").unwrap();
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let path = file.clone();
        let app = spawn_app_with(backend, move |s| s.catalog_paths = vec![path]).await;
        assert!(herald_core::directory::get_user(&app.db, &r("user:default/zoe")).await.unwrap().is_some());
        app.cleanup().await;
    }
    std::fs::remove_dir_all(dir).unwrap();
}

both!(retention_deletes_old_notifications_but_keeps_saved_ones, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let old = app.publish(&t, to(&["user:default/alice"]), json!({"title": "old"})).await;
    let old_saved = app.publish(&t, to(&["user:default/alice"]), json!({"title": "old but saved"})).await;
    let old_broadcast =
        app.publish(&t, json!({"type": "broadcast"}), json!({"title": "old broadcast saved by bob"})).await;
    app.publish(&t, to(&["user:default/alice"]), json!({"title": "new"})).await;
    let bob = app.user_token("bob").await;
    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [old_saved[0]["id"]], "saved": true}))
        .await;
    app.post("/api/notifications/notifications/update", &bob, json!({"ids": [old_broadcast[0]["id"]], "saved": true}))
        .await;
    let long_ago = herald_core::time::now_ms() - 400 * 24 * 3_600_000;
    for n in [&old, &old_saved, &old_broadcast] {
        herald_core::with_pool!(app.db.writer(), |c| sqlx::query(
            "UPDATE notifications SET created = $1 WHERE id = $2"
        )
        .bind(long_ago)
        .bind(n[0]["id"].as_str().unwrap())
        .execute(c)
        .await
        .map(|_| ()))
        .unwrap();
    }
    let cleaned = herald_core::maintenance::clean_up(&app.db, 365, 24 * 3_600_000).await.unwrap();
    assert_eq!(cleaned.notifications, 1);
    let list = app.get("/api/notifications/notifications", &alice).await.body;
    let titles: Vec<&str> =
        list["notifications"].as_array().unwrap().iter().map(|n| n["payload"]["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["new", "old broadcast saved by bob", "old but saved"]);
    assert_eq!(
        herald_core::maintenance::clean_up(&app.db, 0, 24 * 3_600_000).await.unwrap().notifications,
        0,
        "0 keeps everything"
    );
});
