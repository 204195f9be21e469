//! Server functions that change notifications, shared by the inbox, toasts and detail page.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Sets read/saved/archived on the signed-in user's notifications (`None` leaves a state as
/// it is). The same core function backs `POST /api/notifications/notifications/update`.
#[server(endpoint = "notifications/state", input = Json)]
pub async fn set_state(
    ids: Vec<String>,
    read: Option<bool>,
    saved: Option<bool>,
    archived: Option<bool>,
) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_user};
    use herald_core::notifications::{StateChange, update};
    let hub = hub()?;
    let user = require_user().await?;
    update(&hub.db, &user, &ids, StateChange { read, saved, archived }).await.map_err(fail)?;
    Ok(())
}

/// One state change from a row's form (works without JavaScript: the form posts here and
/// the browser is sent back to the inbox).
#[server(endpoint = "notifications/state-form")]
pub async fn set_state_form(id: String, field: String, value: String) -> Result<(), ServerFnError> {
    let on = value == "true";
    let (read, saved, archived) = match field.as_str() {
        "read" => (Some(on), None, None),
        "saved" => (None, Some(on), None),
        "archived" => (None, None, Some(on)),
        other => return Err(ServerFnError::new(format!("unknown field '{other}'"))),
    };
    set_state(vec![id], read, saved, archived).await
}

/// Marks every notification matching the inbox's current filters read.
#[server(endpoint = "notifications/mark-all-read")]
pub async fn mark_all_read(query: crate::pages::InboxQuery) -> Result<usize, ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    herald_core::notifications::mark_all_read(&hub.db, &user, &filter_of(&query)).await.map_err(fail)
}

/// The core filter an inbox URL stands for.
#[cfg(feature = "ssr")]
pub fn filter_of(q: &crate::pages::InboxQuery) -> herald_core::notifications::Filter {
    use herald_core::notifications::{Archived, Filter};
    let now = herald_core::time::now_ms();
    Filter {
        search: Some(q.q.trim().to_string()).filter(|s| !s.is_empty()),
        read: (q.view == "unread").then_some(false),
        saved: (q.view == "saved").then_some(true),
        archived: if q.view == "done" { Archived::Only } else { Archived::Exclude },
        created_after: match q.since.as_str() {
            "24h" => Some(now - 24 * 3_600_000),
            "7d" => Some(now - 7 * 24 * 3_600_000),
            _ => None,
        },
        minimum_severity: q.severity.parse().ok(),
        topic: Some(q.topic.clone()).filter(|t| !t.is_empty()),
        ids: None,
    }
}

/// The core order an inbox `sort` stands for.
#[cfg(feature = "ssr")]
pub fn order_of(sort: &str) -> Vec<(herald_core::notifications::OrderField, bool)> {
    use herald_core::notifications::OrderField;
    match sort {
        "oldest" => vec![(OrderField::Created, false)],
        "severity" => vec![(OrderField::Severity, true)],
        "topic" => vec![(OrderField::Topic, false)],
        "origin" => vec![(OrderField::Origin, false)],
        _ => vec![],
    }
}
