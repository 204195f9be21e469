use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{Recipients, Severity, timestamp};

/// What a publisher says: the content of a notification.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationPayload {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default)]
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A stored notification as one user sees it. `user` is `None` for a broadcast; `read`,
/// `saved` and `archived` are that user's own state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    pub id: String,
    pub user: Option<String>,
    #[serde(serialize_with = "timestamp::serialize")]
    pub created: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "timestamp::serialize_option")]
    pub updated: Option<DateTime<Utc>>,
    #[serde(default, serialize_with = "timestamp::serialize_option")]
    pub read: Option<DateTime<Utc>>,
    #[serde(default, serialize_with = "timestamp::serialize_option")]
    pub saved: Option<DateTime<Utc>>,
    /// Herald addition: when the user marked it done.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "timestamp::serialize_option")]
    pub archived: Option<DateTime<Utc>>,
    /// Herald addition: the notification is hidden from the inbox until then.
    #[serde(
        rename = "snoozedUntil",
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "timestamp::serialize_option"
    )]
    pub snoozed_until: Option<DateTime<Utc>>,
    pub origin: String,
    pub payload: NotificationPayload,
}

/// One page of a user's notifications and how many match in all.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ListResponse {
    pub total_count: i64,
    pub notifications: Vec<Notification>,
}

/// How many of a user's notifications are unread and read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationStatus {
    pub unread: i64,
    pub read: i64,
}

/// The topics of a user's notifications.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopicsResponse {
    pub topics: Vec<String>,
}

/// A change a user makes to some of their notifications. Fields left out stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateRequest {
    pub ids: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved: Option<bool>,
    /// Herald addition: mark done (archive) or bring back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archived: Option<bool>,
    /// Herald addition: snooze until this time (the notifications leave the inbox until
    /// then and come back unread), or `null` to end a snooze.
    #[serde(rename = "snoozedUntil", default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub snoozed_until: Option<Option<DateTime<Utc>>>,
}

/// Tells a field that is present with `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A publish request: who the notification is for and what it says.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishRequest {
    pub recipients: Recipients,
    pub payload: NotificationPayload,
}
