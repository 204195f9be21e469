use crate::both;

both!(liveness_and_readiness_answer_json, |app| async {
    let r = app.call("GET", "/healthz", None, None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ok")));
    let r = app.call("GET", "/readyz", None, None).await;
    assert_eq!((r.status, r.body["status"].as_str()), (200, Some("ready")));
});

both!(readiness_fails_with_a_reason_when_the_database_is_gone, |app| async {
    app.db.close().await;
    let r = app.call("GET", "/readyz", None, None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.body["status"], "unavailable");
    assert!(r.body["reason"].as_str().unwrap().contains("database"));
    // The process itself is still alive.
    assert_eq!(app.call("GET", "/healthz", None, None).await.status, 200);
});

both!(the_shell_page_is_server_rendered, |app| async {
    let res = app.client.get(format!("{}/", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<title>Inbox · Herald</title>"), "{html}");
    assert!(html.contains("class=\"topbar\""));
    for label in ["Inbox", "Settings"] {
        assert!(html.contains(&format!(">{label}<")), "navigation lacks {label}");
    }
    assert!(html.contains("/pkg/herald.js"), "hydration script missing");
});

both!(unknown_pages_are_404_and_unknown_api_routes_answer_json, |app| async {
    let res = app.client.get(format!("{}/no/such/page", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let r = app.call("GET", "/api/notifications/no/such/route", None, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["name"], "NotFoundError");
    assert_eq!(r.body["request"]["url"], "/api/notifications/no/such/route");
    let r = app.call("DELETE", "/api/notifications/status", None, None).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.body["response"]["statusCode"], 405);
});
