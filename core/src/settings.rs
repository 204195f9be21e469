//! Per-user notification settings with Backstage's semantics: channel → origin → topic, where
//! a missing entry falls back to the administrator's defaults and then to "enabled".

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use herald_model::{ChannelSetting, EntityRef, NotificationSettings, OriginSetting, TopicSetting, WEB_CHANNEL};

use crate::db::Db;
use crate::recent::Recent;
use crate::{Error, Result, with_pool, with_tx};

/// The channels Herald knows and the administrator's default settings.
#[derive(Clone, Debug)]
pub struct SettingsPolicy {
    /// Channel ids users can configure; `Web` is always first.
    pub channels: Vec<String>,
    /// Defaults for users without an entry of their own (e.g. an opt-in origin is listed with
    /// `enabled: false`).
    pub defaults: NotificationSettings,
    /// Users' entries read a moment ago, shared by the clones of this policy.
    pub recent: Arc<RecentEntries>,
}

impl Default for SettingsPolicy {
    fn default() -> Self {
        SettingsPolicy {
            channels: vec![WEB_CHANNEL.to_string()],
            defaults: NotificationSettings::default(),
            recent: Arc::default(),
        }
    }
}

/// Every user's entries for one (channel, origin, topic or ""), read a moment ago (see
/// [`crate::recent`]): a publisher's stream of notifications to one origin and topic reads
/// them once a second rather than once per publish. [`save_settings`] clears it.
pub type RecentEntries = Recent<(String, String, String), Arc<HashMap<String, Entries>>, 1_000>;

#[derive(Clone, Debug, sqlx::FromRow)]
struct Row {
    user_ref: String,
    channel: String,
    origin: String,
    topic: String,
    enabled: bool,
}

/// A user's stored entries: (channel, origin, topic or "") → enabled.
type Entries = HashMap<(String, String, String), bool>;

impl SettingsPolicy {
    fn default_for(&self, channel: &str, origin: &str, topic: Option<&str>) -> bool {
        let Some(ch) = self.defaults.channels.iter().find(|c| c.id.eq_ignore_ascii_case(channel)) else {
            return true;
        };
        let Some(o) = ch.origins.iter().find(|o| o.id.eq_ignore_ascii_case(origin)) else {
            return ch.enabled.unwrap_or(true);
        };
        topic
            .and_then(|t| o.topics.as_ref()?.iter().find(|x| x.id.eq_ignore_ascii_case(t)))
            .map_or(o.enabled, |t| t.enabled)
    }

    /// Whether a notification from `origin` about `topic` reaches `channel` for a user with
    /// these stored entries: the most specific entry wins (topic, then origin, then the
    /// channel-wide entry), then the administrator's default.
    fn enabled(&self, entries: &Entries, channel: &str, origin: &str, topic: Option<&str>) -> bool {
        let key = |o: &str, t: &str| (channel.to_string(), o.to_string(), t.to_string());
        if let Some(t) = topic
            && let Some(v) = entries.get(&key(origin, t))
        {
            return *v;
        }
        if let Some(v) = entries.get(&key(origin, "")) {
            return *v;
        }
        self.default_for(channel, origin, topic)
    }
}

/// Of `users`, those for whom notifications from `origin` about `topic` reach `channel`.
pub async fn users_enabled(
    db: &Db,
    policy: &SettingsPolicy,
    users: &[EntityRef],
    channel: &str,
    origin: &str,
    topic: Option<&str>,
) -> Result<Vec<EntityRef>> {
    let key = (channel.to_string(), origin.to_string(), topic.unwrap_or("").to_string());
    let read = async || read_entries(db, channel, origin, topic).await.map(Some);
    // Always `Some`: reading the entries always finds a map, if an empty one.
    let by_user = policy.recent.get_or_read(key, read).await?.unwrap_or_default();
    let empty = Entries::new();
    Ok(users
        .iter()
        .filter(|u| policy.enabled(by_user.get(u.as_str()).unwrap_or(&empty), channel, origin, topic))
        .cloned()
        .collect())
}

/// Every user's entries for `channel`, `origin` and `topic` (or the origin as a whole), by
/// user: only users with an entry for this origin need a look, fetched in one query.
async fn read_entries(
    db: &Db,
    channel: &str,
    origin: &str,
    topic: Option<&str>,
) -> Result<Arc<HashMap<String, Entries>>> {
    let rows = with_pool!(db.reader(), |c| sqlx::query_as::<_, Row>(
        "SELECT user_ref, channel, origin, topic, enabled FROM user_settings
         WHERE channel = $1 AND origin = $2 AND (topic = '' OR topic = $3)"
    )
    .bind(channel)
    .bind(origin)
    .bind(topic.unwrap_or(""))
    .fetch_all(c)
    .await)?;
    let mut by_user: HashMap<String, Entries> = HashMap::new();
    for r in rows {
        by_user.entry(r.user_ref.clone()).or_default().insert((r.channel, r.origin, r.topic), r.enabled);
    }
    Ok(Arc::new(by_user))
}

/// A user's settings for every channel, listing every origin and topic they have received
/// (and every one the administrator configured), each with its effective state.
pub async fn get_settings(db: &Db, policy: &SettingsPolicy, user: &EntityRef) -> Result<NotificationSettings> {
    let (rows, seen) = with_pool!(db.reader(), |c| {
        let rows = sqlx::query_as::<_, Row>(
            "SELECT user_ref, channel, origin, topic, enabled FROM user_settings WHERE user_ref = $1",
        )
        .bind(user.as_str())
        .fetch_all(c)
        .await?;
        let seen = sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT DISTINCT origin, topic FROM notifications WHERE user_ref = $1 OR user_ref IS NULL",
        )
        .bind(user.as_str())
        .fetch_all(c)
        .await?;
        Ok::<_, sqlx::Error>((rows, seen))
    })?;
    let mut origins: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (o, t) in seen {
        let topics = origins.entry(o).or_default();
        topics.extend(t);
    }
    let mut entries = Entries::new();
    for r in rows {
        let topics = origins.entry(r.origin.clone()).or_default();
        if !r.topic.is_empty() {
            topics.insert(r.topic.clone());
        }
        entries.insert((r.channel, r.origin, r.topic), r.enabled);
    }
    for ch in &policy.defaults.channels {
        for o in &ch.origins {
            let topics = origins.entry(o.id.clone()).or_default();
            topics.extend(o.topics.iter().flatten().map(|t| t.id.clone()));
        }
    }
    let channels = policy
        .channels
        .iter()
        .map(|ch| ChannelSetting {
            id: ch.clone(),
            enabled: None,
            origins: origins
                .iter()
                .map(|(o, topics)| OriginSetting {
                    id: o.clone(),
                    enabled: policy.enabled(&entries, ch, o, None),
                    topics: Some(
                        topics
                            .iter()
                            .map(|t| TopicSetting { id: t.clone(), enabled: policy.enabled(&entries, ch, o, Some(t)) })
                            .collect(),
                    ),
                })
                .collect(),
        })
        .collect();
    Ok(NotificationSettings { channels })
}

/// Stores the entries given and leaves every other entry as it was: posting empty or partial
/// settings never wipes anything. Unknown channels are refused.
pub async fn save_settings(
    db: &Db,
    policy: &SettingsPolicy,
    user: &EntityRef,
    settings: &NotificationSettings,
) -> Result<()> {
    let mut entries = Vec::new();
    for ch in &settings.channels {
        let Some(channel) = policy.channels.iter().find(|c| c.eq_ignore_ascii_case(&ch.id)) else {
            return Err(Error::Invalid(format!(
                "unknown channel '{}': expected one of {}",
                ch.id,
                policy.channels.join(", ")
            )));
        };
        for o in &ch.origins {
            if o.id.is_empty() || o.id.len() > 255 {
                return Err(Error::Invalid("an origin id must have 1 to 255 characters".into()));
            }
            crate::notifications::refuse_nul("an origin id", Some(&o.id))?;
            entries.push((channel.clone(), o.id.clone(), String::new(), o.enabled));
            for t in o.topics.iter().flatten() {
                if t.id.is_empty() || t.id.len() > 255 {
                    return Err(Error::Invalid("a topic id must have 1 to 255 characters".into()));
                }
                crate::notifications::refuse_nul("a topic id", Some(&t.id))?;
                entries.push((channel.clone(), o.id.clone(), t.id.clone(), t.enabled));
            }
        }
    }
    let mut tx = db.begin().await?;
    for (channel, origin, topic, enabled) in entries {
        with_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO user_settings (user_ref, channel, origin, topic, enabled) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (user_ref, channel, origin, topic) DO UPDATE SET enabled = excluded.enabled"
        )
        .bind(user.as_str())
        .bind(&channel)
        .bind(&origin)
        .bind(&topic)
        .bind(enabled)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    }
    let committed = tx.commit().await;
    // Also when the commit failed, which may have taken effect all the same.
    policy.recent.clear();
    committed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[(&str, &str, &str, bool)]) -> Entries {
        list.iter().map(|(c, o, t, e)| ((c.to_string(), o.to_string(), t.to_string()), *e)).collect()
    }

    #[test]
    fn the_most_specific_entry_wins_then_defaults() {
        let mut policy = SettingsPolicy::default();
        policy.defaults.channels.push(ChannelSetting {
            id: "Web".into(),
            enabled: None,
            origins: vec![OriginSetting { id: "plugin:optin".into(), enabled: false, topics: None }],
        });
        let e = entries(&[("Web", "ci", "", false), ("Web", "ci", "deploys", true)]);
        assert!(!policy.enabled(&e, "Web", "ci", None));
        assert!(!policy.enabled(&e, "Web", "ci", Some("builds")));
        assert!(policy.enabled(&e, "Web", "ci", Some("deploys")));
        assert!(policy.enabled(&e, "Web", "other", None));
        assert!(!policy.enabled(&e, "Web", "plugin:optin", None));
        let opted_in = entries(&[("Web", "plugin:optin", "", true)]);
        assert!(policy.enabled(&opted_in, "Web", "plugin:optin", Some("x")));
    }
}
