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
    // Visitors are sent to sign in, and back afterwards.
    // (Leptos answers a redirect as 302 to browsers, which ask for text/html.)
    let res = app.client.get(format!("{}/?view=unread", app.base)).header("accept", "text/html").send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], "/signin?next=/%3Fview=unread");
    let res = app.client.get(format!("{}/signin", app.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<title>Sign in · Herald</title>"), "{html}");
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

both!(metrics_move_when_notifications_are_published_and_streamed, |app| async {
    let t = app.service_token("external:metrics").await;
    let alice = app.user_token("alice").await;
    let mut tab = crate::helpers::SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    tab.next_of("status", std::time::Duration::from_secs(5)).await.unwrap();
    app.publish(
        &t,
        crate::helpers::to(&["group:default/platform"]),
        serde_json::json!({"title": "m", "severity": "high", "scope": "s1"}),
    )
    .await;
    app.publish(
        &t,
        crate::helpers::to(&["group:default/platform"]),
        serde_json::json!({"title": "m2", "severity": "high", "scope": "s1"}),
    )
    .await;
    tab.next_of("notification", std::time::Duration::from_secs(5)).await.unwrap();
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let value = |prefix: &str| -> f64 {
        text.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
    };
    assert_eq!(
        value(r#"herald_notifications_published_total{origin="external:metrics",severity="high",recipients="entity"}"#),
        2.0,
        "{text}"
    );
    assert_eq!(value(r#"herald_notifications_stored_total{origin="external:metrics",severity="high"}"#), 2.0);
    assert_eq!(value(r#"herald_notifications_upserted_total{origin="external:metrics",severity="high"}"#), 2.0);
    assert!(value("herald_sse_streams_open") >= 1.0);
    assert!(value(r#"herald_sse_events_sent_total{kind="notification"}"#) >= 1.0);
    assert!(
        value(r#"herald_http_requests_total{method="POST",route="/api/notifications/notifications",status="200"}"#)
            >= 2.0,
        "{text}"
    );
    assert!(text.contains("herald_http_request_duration_seconds_bucket"));
});
