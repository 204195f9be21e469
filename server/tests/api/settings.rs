use serde_json::json;

use crate::both;
use crate::helpers::{Backend, spawn_app_with, to};

both!(settings_list_received_origins_and_partial_posts_never_wipe, |app| async {
    let ci = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    app.publish(&ci, to(&["user:default/alice"]), json!({"title": "x", "topic": "builds"})).await;
    let s = app.get("/api/notifications/settings", &alice).await.body;
    assert_eq!(
        s,
        json!({"channels": [{"id": "Web", "origins": [{"id": "external:ci", "enabled": true, "topics": [{"id": "builds", "enabled": true}]}]}]})
    );

    let r = app
        .post(
            "/api/notifications/settings",
            &alice,
            json!({"channels": [{"id": "Web", "origins": [{"id": "external:ci", "enabled": false}]}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["channels"][0]["origins"][0]["enabled"], false);
    assert_eq!(r.body["channels"][0]["origins"][0]["topics"][0]["enabled"], false, "topics follow a disabled origin");

    for partial in [
        json!({}),
        json!({"channels": []}),
        json!({"channels": [{"id": "Web", "origins": []}]}),
        json!({"channels": [{"id": "Web"}]}),
    ] {
        let r = app.post("/api/notifications/settings", &alice, partial.clone()).await;
        assert_eq!(r.status, 200, "{partial}: {:?}", r.body);
        assert_eq!(r.body["channels"][0]["origins"][0]["enabled"], false, "{partial} must not wipe settings");
    }
    let r =
        app.post("/api/notifications/settings", &alice, json!({"channels": [{"id": "Pigeon", "origins": []}]})).await;
    assert_eq!(r.status, 400);
    assert!(r.message().contains("Pigeon"));
    let r = app
        .post("/api/notifications/settings", &alice, json!({"channels": [{"id": "Web", "origins": [{"id": "x"}]}]}))
        .await;
    assert_eq!(r.status, 400, "enabled is required");

    // Bob's settings are his own.
    let bob = app.user_token("bob").await;
    app.publish(&ci, to(&["user:default/bob"]), json!({"title": "y"})).await;
    assert_eq!(app.get("/api/notifications/settings", &bob).await.body["channels"][0]["origins"][0]["enabled"], true);
});

#[tokio::test]
async fn administrator_defaults_make_origins_opt_in() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let app = spawn_app_with(backend, |s| {
            s.notifications.default_settings = serde_json::from_value(json!({
                "channels": [{"id": "Web", "origins": [{"id": "plugin:digest", "enabled": false}]}]
            }))
            .unwrap();
        })
        .await;
        let t = app.service_token("plugin:digest").await;
        let alice = app.user_token("alice").await;
        let s = app.get("/api/notifications/settings", &alice).await.body;
        assert_eq!(s["channels"][0]["origins"][0], json!({"id": "plugin:digest", "enabled": false, "topics": []}));
        assert_eq!(app.publish(&t, to(&["user:default/alice"]), json!({"title": "x"})).await.len(), 0);
        app.post(
            "/api/notifications/settings",
            &alice,
            json!({"channels": [{"id": "Web", "origins": [{"id": "plugin:digest", "enabled": true}]}]}),
        )
        .await;
        assert_eq!(
            app.publish(&t, to(&["user:default/alice", "user:default/bob"]), json!({"title": "x"})).await.len(),
            1
        );
        app.cleanup().await;
    }
}
