//! No loss under faults: a Herald killed with SIGKILL in the middle of a publishing load
//! keeps every notification it acknowledged, with its event, and starts again by itself.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;

use crate::helpers::{free_port, herald_command, serve_binary};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_publishing_load_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("herald-kill-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    std::fs::write(
        dir.join("herald.toml"),
        format!("listen = \"127.0.0.1:{port}\"\n[limits]\npublish_per_minute = 0\n"),
    )
    .unwrap();
    let out = herald_command(&dir, &["token", "create", "--service", "external:load"]).output().unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    herald_command(&dir, &["user", "add", "user:default/dave"]).output().unwrap();

    let mut server = serve_binary(&dir, port).await;
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let client = reqwest::Client::new();
    let mut publishers = Vec::new();
    for worker in 0..8 {
        let (client, token, acknowledged) = (client.clone(), token.clone(), acknowledged.clone());
        publishers.push(tokio::spawn(async move {
            for i in 0.. {
                let r = client
                    .post(format!("http://127.0.0.1:{port}/api/notifications/notifications"))
                    .bearer_auth(&token)
                    .json(&json!({"recipients": {"type": "entity", "entityRef": "user:default/dave"},
                                  "payload": {"title": format!("load {worker}-{i}")}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status().is_success() => {
                        let body: serde_json::Value = r.json().await.unwrap_or_default();
                        if let Some(id) = body[0]["id"].as_str() {
                            acknowledged.lock().unwrap().push(id.to_string());
                        }
                    }
                    // The server is gone: stop.
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill().unwrap(); // SIGKILL, mid-load
    server.wait().unwrap();
    for p in publishers {
        let _ = p.await;
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 50, "the load ran ({} acknowledged)", acknowledged.len());

    // Restart needs no manual step; every acknowledged notification is there, with its event.
    let mut again = serve_binary(&dir, port).await;
    let db = herald_core::Db::connect(&format!("sqlite:{}", dir.join("data/herald.db").display()), &Default::default())
        .await
        .unwrap();
    let stored: Vec<String> =
        herald_core::with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT id FROM notifications").fetch_all(c).await)
            .unwrap();
    let events: Vec<String> = herald_core::with_pool!(db.reader(), |c| sqlx::query_scalar(
        "SELECT payload FROM events WHERE kind = 'notification'"
    )
    .fetch_all(c)
    .await)
    .unwrap();
    let stored: std::collections::HashSet<String> = stored.into_iter().collect();
    let logged: std::collections::HashSet<String> = events
        .iter()
        .filter_map(|p| serde_json::from_str::<serde_json::Value>(p).ok()?["id"].as_str().map(str::to_string))
        .collect();
    for id in &acknowledged {
        assert!(stored.contains(id), "acknowledged {id} was lost");
        assert!(logged.contains(id), "acknowledged {id} has no event");
    }
    let r = client.get(format!("http://127.0.0.1:{port}/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "ready again after the restart");
    db.close().await;
    again.kill().unwrap();
    again.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
