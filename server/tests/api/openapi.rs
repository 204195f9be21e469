//! The served OpenAPI description matches the router: every documented operation is
//! answered by a real route, and the routes people rely on are documented.

use serde_json::Value;

use crate::both;

both!(the_openapi_document_describes_every_route, |app| async {
    let doc: Value =
        app.client.get(format!("{}/api/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    let mut operations: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str()))
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    operations.sort();
    let expected = [
        ("get", "/api/deliveries"),
        ("get", "/api/notifications"),
        ("get", "/api/notifications/notifications"),
        ("get", "/api/notifications/notifications/{id}"),
        ("get", "/api/notifications/settings"),
        ("get", "/api/notifications/status"),
        ("get", "/api/notifications/stream"),
        ("get", "/api/notifications/topics"),
        ("get", "/api/notifications/{id}"),
        ("get", "/healthz"),
        ("get", "/metrics"),
        ("get", "/readyz"),
        ("post", "/api/deliveries/retry"),
        ("post", "/api/notifications"),
        ("post", "/api/notifications/notifications"),
        ("post", "/api/notifications/notifications/update"),
        ("post", "/api/notifications/settings"),
        ("post", "/api/notifications/update"),
    ];
    let expected: Vec<(String, String)> = expected.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    assert_eq!(operations, expected);

    // Every documented operation is a real route: it answers anything but "no such route".
    for (method, path) in &operations {
        let url = format!("{}{}", app.base, path.replace("{id}", "0190f0c2-7c1e-7f3a-9a51-3f0b8c2d1e4f"));
        let req = app.client.request(method.to_uppercase().parse().unwrap(), url);
        let req = if method == "post" { req.json(&serde_json::json!({})) } else { req };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        assert!(status != 405 && !body.contains("no such API route"), "{method} {path}: {status} {body}");
        if path.starts_with("/api/") {
            assert_eq!(status, 401, "{method} {path} must require credentials");
        }
    }

    // Schemas and examples are there for clients to use.
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "Notification",
        "NotificationPayload",
        "PublishRequest",
        "Recipients",
        "NotificationSettings",
        "ListResponse",
        "ErrorBody",
        "Severity",
    ] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    let publish = &doc["paths"]["/api/notifications/notifications"]["post"];
    assert!(!publish["requestBody"]["content"]["application/json"]["example"].is_null(), "{publish}");
    assert_eq!(doc["paths"]["/api/notifications"]["get"]["deprecated"], true);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
});
