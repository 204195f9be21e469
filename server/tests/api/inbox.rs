use serde_json::{Value, json};

use crate::both;
use crate::helpers::{Backend, TestApp, everyone, spawn_app, to};

const LIST: &str = "/api/notifications/notifications";

fn titles(r: &Value) -> Vec<String> {
    r["notifications"].as_array().unwrap().iter().map(|n| n["payload"]["title"].as_str().unwrap().to_string()).collect()
}

async fn seed(app: &TestApp) -> (String, String) {
    let ci = app.service_token("external:ci").await;
    let pager = app.service_token("external:pager").await;
    app.publish(
        &ci,
        to(&["user:default/alice"]),
        json!({"title": "Build failed", "severity": "high", "topic": "builds", "description": "cargo TEST step"}),
    )
    .await;
    app.publish(
        &ci,
        to(&["user:default/alice"]),
        json!({"title": "Deploy done", "severity": "low", "topic": "deploys"}),
    )
    .await;
    app.publish(
        &pager,
        to(&["user:default/alice"]),
        json!({"title": "Incident opened", "severity": "critical", "topic": "incidents"}),
    )
    .await;
    app.publish(&ci, everyone(), json!({"title": "Maintenance", "topic": "announcements"})).await;
    app.publish(&ci, to(&["user:default/bob"]), json!({"title": "Bob only", "topic": "secret-topic"})).await;
    (app.user_token("alice").await, app.user_token("bob").await)
}

// Both databases agree where the notifications without a topic go: before every topic, and
// after every one in reverse (an empty topic is stored as none).
both!(notifications_without_a_topic_sort_before_every_topic, |app| async {
    let ci = app.service_token("external:ci").await;
    for (title, topic) in
        [("Older, no topic", None), ("Zeta", Some("zeta")), ("Alpha", Some("alpha")), ("Blank", Some("  "))]
    {
        let mut payload = json!({"title": title});
        if let Some(topic) = topic {
            payload["topic"] = json!(topic);
        }
        app.publish(&ci, to(&["user:default/alice"]), payload).await;
    }
    let alice = app.user_token("alice").await;
    let sorted = |direction: &str| format!("{LIST}?orderField=topic,{direction}");
    assert_eq!(titles(&app.get(&sorted("asc"), &alice).await.body), ["Blank", "Older, no topic", "Alpha", "Zeta"]);
    assert_eq!(titles(&app.get(&sorted("desc"), &alice).await.body), ["Zeta", "Alpha", "Blank", "Older, no topic"]);
});

// A page reads its rows otherwise than the notification's own address does (on SQLite each
// row comes as one JSON array): both must show every field alike, the user's state included.
both!(a_page_shows_each_notification_as_its_own_address_does, |app| async {
    let ci = app.service_token("external:ci").await;
    let full = json!({
        "title": "Deploy \"api\" failed", "description": "Line one\nline two: \u{fc}n\u{ef}code \u{2713} \\ / \t",
        "link": "https://ci.example.com/builds/7?a=1&b=2", "severity": "critical", "topic": "deploys",
        "scope": "deploy-api", "icon": "rocket", "metadata": {"build": 42, "tags": ["a", "b"], "nested": {"x": null}},
    });
    let personal = app.publish(&ci, to(&["user:default/alice"]), full).await[0]["id"].as_str().unwrap().to_string();
    let bare = app.publish(&ci, to(&["user:default/alice"]), json!({"title": "Bare"})).await;
    let broadcast = app.publish(&ci, everyone(), json!({"title": "Maintenance", "description": "tonight"})).await;
    let broadcast = broadcast[0]["id"].as_str().unwrap().to_string();
    let alice = app.user_token("alice").await;
    let update = json!({"ids": [personal, broadcast], "read": true, "saved": true});
    assert_eq!(app.post("/api/notifications/notifications/update", &alice, update).await.status, 200);
    let page = app.get(LIST, &alice).await.body;
    let listed = page["notifications"].as_array().unwrap();
    assert_eq!(listed.len(), 3, "{page}");
    for n in listed {
        let own = app.get(&format!("{LIST}/{}", n["id"].as_str().unwrap()), &alice).await.body;
        assert_eq!(n, &own);
    }
    let shown = |id: &str| listed.iter().find(|n| n["id"] == id).unwrap().clone();
    let personal = shown(&personal);
    assert_eq!(personal["payload"]["metadata"]["tags"], json!(["a", "b"]));
    assert_eq!(personal["payload"]["icon"], "rocket");
    assert_eq!(personal["payload"]["scope"], "deploy-api");
    assert!(personal["read"].is_string() && personal["saved"].is_string(), "{personal}");
    assert!(shown(&broadcast)["saved"].is_string());
    assert!(shown(bare[0]["id"].as_str().unwrap())["read"].is_null());
});

both!(lists_filter_and_sort_like_backstage, |app| async {
    let (alice, _) = seed(&app).await;
    let all = app.get(LIST, &alice).await.body;
    assert_eq!(all["totalCount"], 4);
    assert_eq!(
        titles(&all),
        ["Maintenance", "Incident opened", "Deploy done", "Build failed"],
        "newest first by default"
    );

    let q = |s: &str| format!("{LIST}?{s}");
    assert_eq!(titles(&app.get(&q("minimumSeverity=high"), &alice).await.body), ["Incident opened", "Build failed"]);
    assert_eq!(titles(&app.get(&q("topic=deploys"), &alice).await.body), ["Deploy done"]);
    assert_eq!(
        titles(&app.get(&q("search=test"), &alice).await.body),
        ["Build failed"],
        "search is case-insensitive over descriptions"
    );
    assert_eq!(titles(&app.get(&q("search=MAINT"), &alice).await.body), ["Maintenance"]);
    assert_eq!(
        titles(&app.get(&q("search=100%25"), &alice).await.body),
        Vec::<String>::new(),
        "LIKE wildcards are literal"
    );
    assert_eq!(titles(&app.get(&q("orderField=severity,desc"), &alice).await.body)[0], "Incident opened");
    assert_eq!(titles(&app.get(&q("orderField=severity,asc"), &alice).await.body)[0], "Deploy done");
    assert_eq!(
        titles(&app.get(&q("orderField=title,asc"), &alice).await.body),
        ["Build failed", "Deploy done", "Incident opened", "Maintenance"]
    );
    assert_eq!(titles(&app.get(&q("orderField=created,asc"), &alice).await.body)[0], "Build failed");
    assert_eq!(
        titles(&app.get(&q("orderField=origin,asc&orderField=title,desc"), &alice).await.body),
        ["Maintenance", "Deploy done", "Build failed", "Incident opened"]
    );
    assert_eq!(app.get(&q("orderField=topic,asc&orderField=updated,desc"), &alice).await.status, 200);
    assert_eq!(
        titles(&app.get(&q("orderField=topic,asc"), &alice).await.body),
        ["Maintenance", "Build failed", "Deploy done", "Incident opened"]
    );
    assert_eq!(
        titles(&app.get(&q("orderField=topic,desc"), &alice).await.body),
        ["Incident opened", "Deploy done", "Build failed", "Maintenance"]
    );
    let page = app.get(&q("limit=2&offset=1"), &alice).await.body;
    assert_eq!(
        (page["totalCount"].as_i64(), titles(&page)),
        (Some(4), vec!["Incident opened".to_string(), "Deploy done".to_string()])
    );
    // An offset past any inbox, as large as the parameter goes: an empty page, with or without
    // a search (through the index, or a scan for a short text).
    for search in ["", "&search=maint", "&search=e"] {
        let beyond = app.get(&q(&format!("offset={}{search}", i64::MAX)), &alice).await;
        assert_eq!(beyond.status, 200, "{search}: {:?}", beyond.body);
        assert!(titles(&beyond.body).is_empty() && beyond.body["totalCount"].as_i64() > Some(0), "{search}");
    }
    let future = app.get(&q("createdAfter=2999-01-01T00:00:00.000Z"), &alice).await.body;
    assert_eq!(future["totalCount"], 0);
    assert_eq!(app.get(&q("createdAfter=2000-01-01"), &alice).await.body["totalCount"], 4);

    for bad in [
        "orderField=password",
        "orderField=created,sideways",
        "createdAfter=yesterday",
        "minimumSeverity=urgent",
        "read=maybe",
        "limit=-1",
        "offset=x",
    ] {
        let r = app.get(&q(bad), &alice).await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        assert!(!r.message().to_lowercase().contains("sql"), "no SQL leaks: {}", r.message());
    }
});

both!(read_saved_and_done_states_filter_and_count, |app| async {
    let (alice, _) = seed(&app).await;
    let all = app.get(LIST, &alice).await.body;
    let id_of = |t: &str| {
        all["notifications"].as_array().unwrap().iter().find(|n| n["payload"]["title"] == t).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (build, maint, deploy) = (id_of("Build failed"), id_of("Maintenance"), id_of("Deploy done"));

    let r =
        app.post("/api/notifications/notifications/update", &alice, json!({"ids": [build, maint], "read": true})).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert!(r.body.as_array().unwrap().iter().all(|n| n["read"].is_string()));
    assert_eq!(app.get("/api/notifications/status", &alice).await.body, json!({"unread": 2, "read": 2}));
    assert_eq!(titles(&app.get(&format!("{LIST}?read=false"), &alice).await.body), ["Incident opened", "Deploy done"]);
    assert_eq!(titles(&app.get(&format!("{LIST}?read=true"), &alice).await.body), ["Maintenance", "Build failed"]);

    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [maint], "saved": true})).await;
    assert_eq!(titles(&app.get(&format!("{LIST}?saved=true"), &alice).await.body), ["Maintenance"]);
    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [maint], "read": false, "saved": false}))
        .await;
    assert_eq!(app.get("/api/notifications/status", &alice).await.body, json!({"unread": 3, "read": 1}));

    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [deploy], "archived": true})).await;
    assert_eq!(app.get(LIST, &alice).await.body["totalCount"], 3, "done items leave the inbox");
    assert_eq!(titles(&app.get(&format!("{LIST}?archived=true"), &alice).await.body), ["Deploy done"]);
    assert!(app.get(&format!("/api/notifications/notifications/{deploy}"), &alice).await.body["archived"].is_string());
    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [deploy], "archived": false})).await;
    assert_eq!(app.get(LIST, &alice).await.body["totalCount"], 4);

    let topics = app.get("/api/notifications/topics", &alice).await.body;
    assert_eq!(topics, json!({"topics": ["announcements", "builds", "deploys", "incidents"]}));
    let topics = app.get("/api/notifications/topics?minimumSeverity=high", &alice).await.body;
    assert_eq!(topics, json!({"topics": ["builds", "incidents"]}));
});

both!(one_user_never_sees_or_changes_another_users_notifications, |app| async {
    let (alice, bob) = seed(&app).await;
    let bobs = app.get(LIST, &bob).await.body;
    assert_eq!(titles(&bobs), ["Bob only", "Maintenance"]);
    let bob_only = bobs["notifications"][0]["id"].as_str().unwrap().to_string();
    let maint = bobs["notifications"][1]["id"].as_str().unwrap().to_string();

    let r = app.get(&format!("{LIST}/{bob_only}"), &alice).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.body["error"]["name"], "NotFoundError");
    let r = app
        .post(
            "/api/notifications/notifications/update",
            &alice,
            json!({"ids": [bob_only], "read": true, "saved": true, "archived": true}),
        )
        .await;
    assert_eq!(r.body, json!([]), "ids alice cannot see are ignored");
    let still = app.get(&format!("{LIST}/{bob_only}"), &bob).await.body;
    assert!(still["read"].is_null() && still["saved"].is_null() && still.get("archived").is_none());
    assert!(
        !app.get("/api/notifications/topics", &alice).await.body["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t == "secret-topic")
    );
    assert_eq!(app.get(&format!("{LIST}?search=Bob"), &alice).await.body["totalCount"], 0);

    // A broadcast read by alice stays unread for bob.
    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [maint], "read": true, "saved": true}))
        .await;
    let for_bob = app.get(&format!("{LIST}/{maint}"), &bob).await.body;
    assert!(for_bob["read"].is_null() && for_bob["saved"].is_null());
    assert_eq!(app.get("/api/notifications/status", &bob).await.body, json!({"unread": 2, "read": 0}));
    assert_eq!(app.get("/api/notifications/status", &alice).await.body["read"], 1);
});

both!(paging_never_repeats_or_skips_ties, |app| async {
    let t = app.service_token("external:ci").await;
    let carol = app.user_token("carol").await;
    // One request to a group stores its rows with the same timestamp: a worst case for paging.
    for i in 0..12 {
        app.publish(
            &t,
            to(&["user:default/carol", "user:default/dave"]),
            json!({"title": format!("n{i:02}"), "severity": if i % 2 == 0 { "high" } else { "low" }}),
        )
        .await;
    }
    app.publish(&t, everyone(), json!({"title": "b"})).await;
    for order in ["", "&orderField=severity,desc", "&orderField=title,asc", "&orderField=created,asc"] {
        let mut seen = Vec::new();
        for offset in (0..13).step_by(5) {
            let page = app.get(&format!("{LIST}?limit=5&offset={offset}{order}"), &carol).await.body;
            assert_eq!(page["totalCount"], 13);
            seen.extend(
                page["notifications"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()),
            );
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (13, 13), "order {order:?}");
    }
});

both!(snoozed_notifications_leave_the_inbox_and_return_unread, |app| async {
    let (alice, bob) = seed(&app).await;
    let all = app.get(LIST, &alice).await.body;
    let id_of = |t: &str| {
        all["notifications"].as_array().unwrap().iter().find(|n| n["payload"]["title"] == t).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (build, maint) = (id_of("Build failed"), id_of("Maintenance"));
    const UPDATE: &str = "/api/notifications/notifications/update";
    app.post(UPDATE, &alice, json!({"ids": [build, maint], "read": true})).await;

    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    let r = app.post(UPDATE, &alice, json!({"ids": [build], "snoozedUntil": past})).await;
    assert_eq!(r.status, 400, "a snooze must end in the future: {}", r.body);
    let r = app.post(UPDATE, &alice, json!({"ids": [build], "snoozedUntil": "tomorrow"})).await;
    assert_eq!(r.status, 400, "not a time: {}", r.body);

    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let r = app.post(UPDATE, &alice, json!({"ids": [build, maint], "snoozedUntil": soon})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.as_array().unwrap().iter().all(|n| n["snoozedUntil"].is_string()));
    assert_eq!(
        titles(&app.get(LIST, &alice).await.body),
        ["Incident opened", "Deploy done"],
        "snoozed rows leave the list"
    );
    assert_eq!(app.get("/api/notifications/status", &alice).await.body, json!({"unread": 2, "read": 0}));
    assert!(
        app.get(&format!("{LIST}/{build}"), &alice).await.body["snoozedUntil"].is_string(),
        "a snoozed notification is still there by id"
    );
    assert_eq!(
        titles(&app.get(LIST, &bob).await.body),
        ["Bob only", "Maintenance"],
        "snoozing a broadcast is personal"
    );

    // Nothing returns early...
    assert_eq!(herald_core::notifications::wake_snoozed(&app.db).await.unwrap(), 0);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    // ...and once due they are back (even before the waker runs) and then unread again.
    assert_eq!(app.get(LIST, &alice).await.body["totalCount"], 4);
    let mut stream = crate::helpers::SseClient::connect(&app.base, &alice, None, "").await.unwrap();
    assert_eq!(herald_core::notifications::wake_snoozed(&app.db).await.unwrap(), 2);
    assert_eq!(herald_core::notifications::wake_snoozed(&app.db).await.unwrap(), 0, "each returns once");
    let update = stream.next_of("update", std::time::Duration::from_secs(5)).await.expect("the tabs hear of it");
    assert_eq!(update.json()["read"], false);
    let back = app.get(LIST, &alice).await.body;
    assert_eq!(back["totalCount"], 4);
    assert!(
        back["notifications"].as_array().unwrap().iter().all(|n| n["read"].is_null() && n["snoozedUntil"].is_null())
    );
    assert_eq!(app.get("/api/notifications/status", &alice).await.body, json!({"unread": 4, "read": 0}));

    // A snooze can be ended by hand.
    let later = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    app.post(UPDATE, &alice, json!({"ids": [build], "snoozedUntil": later})).await;
    assert_eq!(app.get(LIST, &alice).await.body["totalCount"], 3);
    app.post(UPDATE, &alice, json!({"ids": [build], "snoozedUntil": null})).await;
    assert_eq!(app.get(LIST, &alice).await.body["totalCount"], 4);
});

both!(opening_a_link_marks_read_unless_the_user_said_not_to, |app| async {
    let ci = app.service_token("external:ci").await;
    let with_link = app
        .publish(&ci, to(&["user:default/alice"]), json!({"title": "Has a link", "link": "https://ci.example/runs/1"}))
        .await;
    let without = app.publish(&ci, to(&["user:default/alice"]), json!({"title": "No link"})).await;
    let (id, plain) = (with_link[0]["id"].as_str().unwrap(), without[0]["id"].as_str().unwrap());
    let alice = app.user_token("alice").await;
    let bob = app.user_token("bob").await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let open = |id: &str, token: Option<&str>| {
        let mut req = no_redirects.get(format!("{}/open/{id}", app.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    let location = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_string();

    let r = open(id, None).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("/signin?next=%2Fopen%2F{id}"), "a visitor signs in first");
    let r = open(id, Some(&bob)).await.unwrap();
    assert_eq!(location(&r), format!("/notifications/{id}"), "not Bob's: the detail page says not found");
    assert!(app.get(&format!("{LIST}/{id}"), &alice).await.body["read"].is_null(), "Bob changed nothing");

    let r = open(id, Some(&alice)).await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "https://ci.example/runs/1");
    assert!(app.get(&format!("{LIST}/{id}"), &alice).await.body["read"].is_string(), "opening marked it read");
    let r = open(plain, Some(&alice)).await.unwrap();
    assert_eq!(location(&r), format!("/notifications/{plain}"), "no link: the detail page");

    let user = herald_model::EntityRef::parse_with_default("alice", Some(herald_model::EntityKind::User)).unwrap();
    let prefs = herald_core::preferences::Preferences {
        mark_read_on_open: false,
        ..herald_core::preferences::Preferences::default()
    };
    herald_core::preferences::save(&app.db, &user, &prefs).await.unwrap();
    assert_eq!(herald_core::preferences::get(&app.db, &user).await.unwrap(), prefs);
    app.post("/api/notifications/notifications/update", &alice, json!({"ids": [id], "read": false})).await;
    let r = open(id, Some(&alice)).await.unwrap();
    assert_eq!(location(&r), "https://ci.example/runs/1");
    assert!(app.get(&format!("{LIST}/{id}"), &alice).await.body["read"].is_null(), "the preference is honoured");
});

both!(search_matches_text_literally_in_any_case_and_follows_every_change, |app| async {
    let ci = app.service_token("external:ci").await;
    let alice = app.user_token("alice").await;
    let mine = to(&["user:default/alice"]);
    app.publish(&ci, mine.clone(), json!({"title": "Über deploy \"quoted\" 50%_done", "description": "Ring the BELL"}))
        .await;
    app.publish(&ci, mine.clone(), json!({"title": "AB tests"})).await;
    app.publish(&ci, mine.clone(), json!({"title": "old title", "scope": "s1"})).await;
    app.publish(&ci, mine.clone(), json!({"title": "new title", "scope": "s1"})).await;
    app.publish(&ci, to(&["user:default/bob"]), json!({"title": "über secret"})).await;
    app.publish(&ci, everyone(), json!({"title": "Everyone's deploy window"})).await;

    let search = |text: &str| {
        let url =
            format!("{LIST}?search={}", url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>());
        let (app, alice, text) = (&app, &alice, text.to_string());
        async move {
            let r = app.get(&url, alice).await;
            assert_eq!(r.status, 200, "search {text:?}: {}", r.body);
            let mut found = titles(&r.body);
            found.sort();
            assert_eq!(r.body["totalCount"], found.len(), "search {text:?} counts what it lists");
            found
        }
    };
    let uber = "Über deploy \"quoted\" 50%_done";
    assert_eq!(search("über").await, [uber], "any case, beyond ASCII");
    assert_eq!(search("ÜBER DEPLOY").await, [uber]);
    assert_eq!(search("\"quoted\"").await, [uber], "quotes are text");
    assert_eq!(search("0%_d").await, [uber], "LIKE wildcards are text");
    assert_eq!(search("bell").await, [uber], "descriptions are searched");
    assert_eq!(search("deploy").await, ["Everyone's deploy window", uber], "broadcasts are searched");
    assert_eq!(search("ab").await, ["AB tests"], "texts too short for the index");
    assert_eq!(search("t").await.len(), 3);
    assert_eq!(search("\"").await, [uber]);
    assert_eq!(search("title").await, ["new title"], "a replaced notification is found by its new text");
    assert_eq!(search("old").await, Vec::<String>::new());
    assert_eq!(search("secret").await, Vec::<String>::new(), "never another user's");
    for syntax in ["deploy OR tests", "dep*", "NEAR(deploy tests)", "title:new", "-deploy", "(((", "^AB"] {
        assert_eq!(search(syntax).await, Vec::<String>::new(), "{syntax:?} is text, not query syntax");
    }
    for path in [LIST, "/api/notifications/topics"] {
        let r = app.get(&format!("{path}?search=de%00ploy"), &alice).await;
        assert_eq!(r.status, 400, "{path}: a NUL character is refused, not a server error: {}", r.body);
        assert!(r.body.to_string().contains("NUL"), "{}", r.body);
    }
});

/// SQLite's search index is written behind the notifications; a running instance catches it
/// up by itself, without a search asking (which would index them too).
#[tokio::test]
async fn the_instance_indexes_new_notifications_for_search_in_the_background() {
    let app = spawn_app(Backend::Sqlite).await;
    let ci = app.service_token("external:ci").await;
    for k in 0..3 {
        app.publish(&ci, to(&["user:default/alice"]), json!({"title": format!("deploy {k}")})).await;
    }
    search_index_caught_up(&app).await;
}

/// Waits until the instance's search indexer has indexed every notification (SQLite).
async fn search_index_caught_up(app: &TestApp) {
    let herald_core::db::Pool::Sqlite(pool) = app.db.writer() else { panic!("SQLite only") };
    for _ in 0..100 {
        let behind: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE rowid > (SELECT indexed FROM search_progress)",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if behind == 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the search index never caught up");
}
