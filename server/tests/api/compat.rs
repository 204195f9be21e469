//! Shapes that Backstage clients depend on.

use serde_json::json;

use crate::both;
use crate::helpers::to;

both!(notifications_have_backstages_json_shape, |app| async {
    let t = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let n = app
        .publish(&t, to(&["user:default/alice"]), json!({"title": "t", "description": "d", "link": "https://x.example/", "severity": "critical", "topic": "tp", "scope": "sc", "icon": "docs", "metadata": {"build": 7}}))
        .await;
    let n = &n[0];
    for key in ["id", "user", "created", "origin", "payload", "read", "saved"] {
        assert!(n.get(key).is_some(), "missing {key}: {n}");
    }
    assert_eq!(
        n["payload"],
        json!({"title": "t", "description": "d", "link": "https://x.example/", "severity": "critical", "topic": "tp", "scope": "sc", "icon": "docs", "metadata": {"build": 7}})
    );
    let created = n["created"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created).is_ok(), "{created}");
    let list = app.get("/api/notifications/notifications", &alice).await.body;
    assert_eq!(list["notifications"][0], *n);
    assert!(list["totalCount"].is_i64());
});
