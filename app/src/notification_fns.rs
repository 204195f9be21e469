//! Server functions that change notifications, shared by the inbox, toasts and detail page.

use leptos::prelude::*;
use leptos::server_fn::codec::Json;

/// Sets read/saved/archived on the signed-in user's notifications (`None` leaves a state as
/// it is). The same core function backs `POST /api/notifications/notifications/update`.
#[server(endpoint = "notifications/state", input = Json, output = crate::codec::JsonText)]
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
    update(&hub.db, &user, &ids, StateChange { read, saved, archived, ..StateChange::default() })
        .await
        .map_err(fail)?;
    Ok(())
}

/// Snoozes the signed-in user's notifications: `choice` is `1h`, `tomorrow` (9:00),
/// `nextweek` (Monday 9:00) or `off` to end a snooze; `tz` is the browser's offset from UTC
/// in minutes east (0 without JavaScript).
#[server(endpoint = "notifications/snooze", input = Json, output = crate::codec::JsonText)]
pub async fn snooze(ids: Vec<String>, choice: String, tz: i32) -> Result<(), ServerFnError> {
    use crate::server::{fail, hub, require_user};
    use herald_core::notifications::{StateChange, update};
    let hub = hub()?;
    let user = require_user().await?;
    let until = match choice.as_str() {
        "off" => None,
        other => Some(
            snooze_until(other, herald_core::time::now_ms(), tz)
                .ok_or_else(|| ServerFnError::new(format!("unknown snooze choice '{other}'")))?,
        ),
    };
    update(&hub.db, &user, &ids, StateChange { snoozed_until: Some(until), ..StateChange::default() })
        .await
        .map_err(fail)?;
    Ok(())
}

/// A row's snooze menu as a form (works without JavaScript).
#[server(endpoint = "notifications/snooze-form", output = crate::codec::JsonText)]
pub async fn snooze_form(id: String, choice: String, tz: Option<i32>) -> Result<(), ServerFnError> {
    snooze(vec![id], choice, tz.unwrap_or(0)).await
}

/// Prefixes the ids in the bulk form's keys: the form decoder reads a key that starts with a
/// digit (as UUIDv7 ids do) as a list index.
pub const BULK_ID_PREFIX: &str = "id:";

/// The bulk bar as a form: `ids` are the checked rows (`ids[id:<id>]=on`), `action` the button
/// pressed. With JavaScript the bar calls [`set_state`] and [`snooze`] directly.
#[server(endpoint = "notifications/bulk-form", output = crate::codec::JsonText)]
pub async fn bulk_form(
    ids: Option<std::collections::BTreeMap<String, String>>,
    action: String,
    tz: Option<i32>,
) -> Result<(), ServerFnError> {
    let ids: Vec<String> =
        ids.unwrap_or_default().into_keys().map(|k| k.strip_prefix(BULK_ID_PREFIX).unwrap_or(&k).to_string()).collect();
    if ids.is_empty() {
        return Err(ServerFnError::new("Select at least one notification first."));
    }
    match BulkAction::parse(&action) {
        Some(BulkAction::State { read, saved, archived }) => set_state(ids, read, saved, archived).await,
        Some(BulkAction::Snooze(choice)) => snooze(ids, choice.to_string(), tz.unwrap_or(0)).await,
        None => Err(ServerFnError::new(format!("unknown action '{action}'"))),
    }
}

/// What a bulk (or keyboard) action does. (The browser only lists the actions; the server
/// parses and runs them.)
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub enum BulkAction {
    State { read: Option<bool>, saved: Option<bool>, archived: Option<bool> },
    Snooze(&'static str),
}

impl BulkAction {
    /// The actions of the bulk bar, as (value, label).
    pub const ALL: [(&'static str, &'static str); 9] = [
        ("read", "Mark as read"),
        ("unread", "Mark as unread"),
        ("save", "Save"),
        ("unsave", "Unsave"),
        ("done", "Done"),
        ("undone", "Undo done"),
        ("snooze-1h", "Snooze 1 hour"),
        ("snooze-tomorrow", "Snooze until tomorrow"),
        ("snooze-nextweek", "Snooze until next week"),
    ];

    /// Parses an action's value.
    #[cfg_attr(not(feature = "ssr"), allow(dead_code))]
    pub fn parse(value: &str) -> Option<BulkAction> {
        let state = |read, saved, archived| Some(BulkAction::State { read, saved, archived });
        match value {
            "read" => state(Some(true), None, None),
            "unread" => state(Some(false), None, None),
            "save" => state(None, Some(true), None),
            "unsave" => state(None, Some(false), None),
            "done" => state(None, None, Some(true)),
            "undone" => state(None, None, Some(false)),
            "snooze-1h" => Some(BulkAction::Snooze("1h")),
            "snooze-tomorrow" => Some(BulkAction::Snooze("tomorrow")),
            "snooze-nextweek" => Some(BulkAction::Snooze("nextweek")),
            _ => None,
        }
    }
}

/// When a snooze choice ends, in milliseconds since the epoch: `1h` an hour from now;
/// `tomorrow` 9:00 the next day and `nextweek` 9:00 next Monday, in the time zone `tz`
/// minutes east of UTC.
#[cfg_attr(not(feature = "ssr"), allow(dead_code))]
pub fn snooze_until(choice: &str, now_ms: i64, tz: i32) -> Option<i64> {
    use chrono::{Datelike, Duration, FixedOffset, NaiveTime, TimeZone};
    let zone = FixedOffset::east_opt(tz.clamp(-14 * 60, 14 * 60) * 60)?;
    let now = zone.timestamp_millis_opt(now_ms).single()?;
    let nine = NaiveTime::from_hms_opt(9, 0, 0)?;
    let at_nine = |days: i64| {
        let day = now.date_naive() + Duration::days(days);
        zone.from_local_datetime(&day.and_time(nine)).single().map(|t| t.timestamp_millis())
    };
    match choice {
        "1h" => Some(now_ms + 3_600_000),
        "tomorrow" => at_nine(1),
        "nextweek" => at_nine(7 - i64::from(now.weekday().num_days_from_monday())),
        _ => None,
    }
}

/// One state change from a row's form (works without JavaScript: the form posts here and
/// the browser is sent back to the inbox).
#[server(endpoint = "notifications/state-form", output = crate::codec::JsonText)]
pub async fn set_state_form(id: String, field: String, value: String) -> Result<(), ServerFnError> {
    let on = value == "true";
    let (read, saved, archived) = match field.as_str() {
        "read" => (Some(on), None, None),
        "saved" => (None, Some(on), None),
        "archived" => (None, None, Some(on)),
        "snoozed" if !on => return snooze(vec![id], "off".into(), 0).await,
        other => return Err(ServerFnError::new(format!("unknown field '{other}'"))),
    };
    set_state(vec![id], read, saved, archived).await
}

/// Marks every notification matching the inbox's current filters read.
#[server(endpoint = "notifications/mark-all-read", output = crate::codec::JsonText)]
pub async fn mark_all_read(query: crate::pages::InboxQuery) -> Result<usize, ServerFnError> {
    use crate::server::{fail, hub, require_user};
    let hub = hub()?;
    let user = require_user().await?;
    herald_core::notifications::mark_all_read(&hub.db, &user, &filter_of(&query)).await.map_err(fail)
}

/// The core filter an inbox URL stands for.
#[cfg(feature = "ssr")]
pub fn filter_of(q: &crate::pages::InboxQuery) -> herald_core::notifications::Filter {
    use herald_core::notifications::{Archived, Filter, Snoozed};
    let now = herald_core::time::now_ms();
    Filter {
        search: Some(q.q.trim().to_string()).filter(|s| !s.is_empty()),
        read: (q.view == "unread").then_some(false),
        saved: (q.view == "saved").then_some(true),
        archived: match q.view.as_str() {
            "done" => Archived::Only,
            "snoozed" => Archived::Any,
            _ => Archived::Exclude,
        },
        snoozed: if q.view == "snoozed" { Snoozed::Only } else { Snoozed::Hide },
        created_after: match q.since.as_str() {
            "24h" => Some(now - 24 * 3_600_000),
            "7d" => Some(now - 7 * 24 * 3_600_000),
            _ => None,
        },
        minimum_severity: q.severity.parse().ok(),
        topic: Some(q.topic.clone()).filter(|t| !t.is_empty()),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snoozes_end_at_nine_in_the_users_time_zone() {
        // Friday 2026-11-27 23:30 UTC, which is Saturday 00:30 in UTC+1.
        let now = chrono::DateTime::parse_from_rfc3339("2026-11-27T23:30:00Z").unwrap().timestamp_millis();
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        assert_eq!(snooze_until("1h", now, 0), Some(now + 3_600_000));
        assert_eq!(snooze_until("tomorrow", now, 0), Some(at("2026-11-28T09:00:00Z")));
        assert_eq!(snooze_until("tomorrow", now, 60), Some(at("2026-11-29T09:00:00+01:00")));
        assert_eq!(snooze_until("nextweek", now, 0), Some(at("2026-11-30T09:00:00Z")));
        assert_eq!(snooze_until("nextweek", now, -300), Some(at("2026-11-30T09:00:00-05:00")));
        // On a Monday, next week is the Monday after.
        let monday = at("2026-11-30T08:00:00Z");
        assert_eq!(snooze_until("nextweek", monday, 0), Some(at("2026-12-07T09:00:00Z")));
        assert_eq!(snooze_until("later", now, 0), None);
    }

    #[test]
    fn bulk_actions_parse() {
        for (value, _) in BulkAction::ALL {
            assert!(BulkAction::parse(value).is_some(), "{value}");
        }
        assert_eq!(BulkAction::parse("drop"), None);
    }
}
