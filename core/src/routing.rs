//! Which deliveries a stored notification gets: the channels beyond the inbox (email, Slack,
//! webhooks), their filters, and each recipient's settings and addresses.
//!
//! The inbox is the record: a notification is forwarded to the users who received it in
//! their inbox, on each channel their settings allow. Planning reads the directory before the
//! publishing transaction; the deliveries are written inside it ([`crate::outbox::enqueue`]).

use std::collections::{HashMap, HashSet};

use herald_model::{EntityKind, EntityRef, Notification, NotificationPayload, Severity};
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::outbox::{EMAIL, NewDelivery, SLACK, WEBHOOK, digest_period_end, kind};
use crate::settings::{SettingsPolicy, users_enabled};
use crate::{Result, with_pool};

/// Backstage's per-channel filter: severity bounds and topic lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChannelFilter {
    pub min_severity: Option<Severity>,
    pub max_severity: Option<Severity>,
    /// When not empty, only these topics.
    pub include_topics: Vec<String>,
    pub exclude_topics: Vec<String>,
}

impl ChannelFilter {
    /// Whether a notification passes.
    pub fn passes(&self, p: &NotificationPayload) -> bool {
        let rank = p.severity.rank();
        let topic = p.topic.as_deref().unwrap_or("");
        self.min_severity.is_none_or(|m| rank >= m.rank())
            && self.max_severity.is_none_or(|m| rank <= m.rank())
            && (self.include_topics.is_empty() || self.include_topics.iter().any(|t| t == topic))
            && !self.exclude_topics.iter().any(|t| t == topic)
    }
}

/// Who receives broadcasts by email.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BroadcastEmail {
    /// Nobody: broadcasts stay in the inbox.
    #[default]
    None,
    /// Every user with an email address (who has not turned email off for the origin).
    Users,
    /// The addresses in `broadcast_addresses`.
    List,
}

/// Email routing.
#[derive(Clone, Debug, Default)]
pub struct EmailRouting {
    pub filter: ChannelFilter,
    /// Addresses or domains (`example.com`) allowed; empty allows all.
    pub allow: Vec<String>,
    /// Addresses or domains never mailed.
    pub deny: Vec<String>,
    pub broadcast: BroadcastEmail,
    pub broadcast_addresses: Vec<String>,
    /// The hour (UTC) daily digests go out.
    pub daily_digest_hour: u32,
    /// Critical announcements are emailed to every recipient, whatever their settings.
    pub critical_announcements_bypass_opt_outs: bool,
}

impl EmailRouting {
    /// Whether an address may be mailed.
    pub fn allows(&self, address: &str) -> bool {
        let address = address.to_ascii_lowercase();
        let domain = address.rsplit_once('@').map_or("", |(_, d)| d).to_string();
        let matches = |rule: &String| {
            let rule = rule.trim().trim_start_matches('@').to_ascii_lowercase();
            rule == address || rule == domain
        };
        (self.allow.is_empty() || self.allow.iter().any(matches)) && !self.deny.iter().any(matches)
    }
}

/// Broadcasts posted to a Slack channel: the most specific matching route wins (origin and
/// topic, then topic, then origin, then a catch-all).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackRoute {
    pub origin: Option<String>,
    pub topic: Option<String>,
    /// A channel id (`C0123…`) or name.
    pub channel: String,
}

/// Slack routing.
#[derive(Clone, Debug, Default)]
pub struct SlackRouting {
    pub filter: ChannelFilter,
    pub broadcast_routes: Vec<SlackRoute>,
}

impl SlackRouting {
    /// The channel a broadcast goes to, if any route matches.
    pub fn broadcast_channel(&self, origin: &str, topic: Option<&str>) -> Option<&str> {
        self.broadcast_routes
            .iter()
            .filter(|r| {
                r.origin.as_deref().is_none_or(|o| o == origin) && r.topic.as_deref().is_none_or(|t| Some(t) == topic)
            })
            .max_by_key(|r| (r.topic.is_some(), r.origin.is_some()))
            .map(|r| r.channel.as_str())
    }
}

/// A webhook configured by the administrator: it receives every notification that passes
/// its filter.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminWebhook {
    /// Names the hook in deliveries (`admin:NAME`).
    pub name: String,
    pub url: String,
    /// The HMAC-SHA256 key receivers verify signatures with.
    pub secret: String,
    pub filter: ChannelFilter,
}

impl std::fmt::Debug for AdminWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminWebhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"***")
            .field("filter", &self.filter)
            .finish()
    }
}

/// Webhook routing.
#[derive(Clone, Debug, Default)]
pub struct WebhookRouting {
    pub filter: ChannelFilter,
    /// Whether users may set personal webhooks.
    pub personal: bool,
    pub admin: Vec<AdminWebhook>,
}

/// The channels configured beyond the inbox.
#[derive(Clone, Debug, Default)]
pub struct Routing {
    pub email: Option<EmailRouting>,
    pub slack: Option<SlackRouting>,
    pub webhook: Option<WebhookRouting>,
}

impl Routing {
    /// Whether any channel beyond the inbox is configured.
    pub fn any(&self) -> bool {
        self.email.is_some() || self.slack.is_some() || self.webhook.is_some()
    }

    /// The channel ids users can configure, in order.
    pub fn channel_ids(&self) -> Vec<&'static str> {
        let mut ids = vec![];
        if self.email.is_some() {
            ids.push(EMAIL);
        }
        if self.slack.is_some() {
            ids.push(SLACK);
        }
        if self.webhook.is_some() {
            ids.push(WEBHOOK);
        }
        ids
    }
}

/// What a recipient's deliveries need to know about them.
#[derive(Clone, Debug, Default)]
struct Contact {
    email: Option<String>,
    slack_id: Option<String>,
    email_mode: String,
    has_webhook: bool,
}

/// One delivery to make once the notification it forwards is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub channel: &'static str,
    pub target: String,
    pub user: Option<String>,
    pub digest_until: Option<i64>,
}

/// The deliveries of one publish request, by recipient.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Per recipient user (entity sends).
    pub users: HashMap<String, Vec<Target>>,
    /// Slack channels of recipient groups, posted once each (entity sends).
    pub groups: Vec<Target>,
    /// For a broadcast.
    pub broadcast: Vec<Target>,
}

impl Plan {
    /// The deliveries of one stored notification.
    pub fn deliveries_for(&self, n: &Notification, first: bool) -> Vec<NewDelivery> {
        let targets: Vec<&Target> = match &n.user {
            Some(u) => {
                let mine = self.users.get(u).into_iter().flatten();
                if first { mine.chain(self.groups.iter()).collect() } else { mine.collect() }
            }
            None => self.broadcast.iter().collect(),
        };
        let k = if n.updated.is_some() { kind::UPDATE } else { kind::NEW };
        targets
            .into_iter()
            .map(|t| NewDelivery {
                channel: t.channel,
                kind: k,
                user_ref: t.user.clone(),
                target: t.target.clone(),
                notification: n.clone(),
                digest_until: t.digest_until,
            })
            .collect()
    }
}

/// Plans the deliveries of a notification to `users` (who receive it in their inbox) sent to
/// the groups and users in `include`, or of a broadcast when `users` is `None`.
#[expect(clippy::too_many_arguments, reason = "each is one part of what a publish decided, named at both call sites")]
pub async fn plan(
    db: &Db,
    routing: &Routing,
    policy: &SettingsPolicy,
    origin: &str,
    payload: &NotificationPayload,
    include: &[EntityRef],
    exclude: &[EntityRef],
    users: Option<&[EntityRef]>,
    now: i64,
) -> Result<Plan> {
    let mut plan = Plan::default();
    if !routing.any() {
        return Ok(plan);
    }
    let topic = payload.topic.as_deref();
    match users {
        Some(users) => {
            let contacts = contacts(db, users).await?;
            // Groups with a Slack channel get one post; their members no direct message.
            let mut covered: HashSet<String> = HashSet::new();
            if routing.slack.as_ref().is_some_and(|s| s.filter.passes(payload)) {
                for group in include.iter().filter(|r| r.kind() == EntityKind::Group) {
                    if let Some(channel) = group_slack_channel(db, group).await? {
                        let members =
                            crate::directory::resolve_recipients(db, std::slice::from_ref(group), exclude).await?;
                        covered.extend(members.iter().map(|m| m.as_str().to_string()));
                        plan.groups.push(Target {
                            channel: SLACK,
                            target: format!("channel:{channel}"),
                            user: None,
                            digest_until: None,
                        });
                    }
                }
            }
            for channel in routing.channel_ids() {
                let passes = match channel {
                    EMAIL => routing.email.as_ref().is_some_and(|r| r.filter.passes(payload)),
                    SLACK => routing.slack.as_ref().is_some_and(|r| r.filter.passes(payload)),
                    _ => routing.webhook.as_ref().is_some_and(|r| r.filter.passes(payload)),
                };
                if !passes {
                    continue;
                }
                let bypass = channel == EMAIL
                    && origin == crate::announcements::ORIGIN
                    && payload.severity == Severity::Critical
                    && routing.email.as_ref().is_some_and(|e| e.critical_announcements_bypass_opt_outs);
                let allowed = if bypass {
                    users.to_vec()
                } else {
                    users_enabled(db, policy, users, channel, origin, topic).await?
                };
                for user in allowed {
                    let key = user.as_str().to_string();
                    let Some(c) = contacts.get(&key) else { continue };
                    let target = match channel {
                        EMAIL => {
                            let email = routing.email.as_ref().expect("checked above");
                            let Some(address) = c.email.clone().filter(|a| email.allows(a)) else { continue };
                            // What bypasses opt-outs does not wait for a digest either.
                            let digest_until = if bypass {
                                None
                            } else {
                                digest_period_end(&c.email_mode, now, email.daily_digest_hour)
                            };
                            Target { channel, target: address, user: Some(key.clone()), digest_until }
                        }
                        SLACK => {
                            if covered.contains(&key) {
                                continue;
                            }
                            let target = match (&c.slack_id, &c.email) {
                                (Some(id), _) => format!("user:{id}"),
                                (None, Some(address)) => format!("email:{address}"),
                                (None, None) => continue,
                            };
                            Target { channel, target, user: Some(key.clone()), digest_until: None }
                        }
                        _ => {
                            if !c.has_webhook || !routing.webhook.as_ref().is_some_and(|w| w.personal) {
                                continue;
                            }
                            Target {
                                channel,
                                target: format!("user:{key}"),
                                user: Some(key.clone()),
                                digest_until: None,
                            }
                        }
                    };
                    plan.users.entry(key).or_default().push(target);
                }
            }
            if let Some(hooks) = &routing.webhook
                && hooks.filter.passes(payload)
            {
                for hook in hooks.admin.iter().filter(|h| h.filter.passes(payload)) {
                    for user in users {
                        plan.users.entry(user.as_str().to_string()).or_default().push(Target {
                            channel: WEBHOOK,
                            target: format!("admin:{}", hook.name),
                            user: Some(user.as_str().to_string()),
                            digest_until: None,
                        });
                    }
                }
            }
        }
        None => {
            if let Some(email) = routing.email.as_ref().filter(|e| e.filter.passes(payload)) {
                match email.broadcast {
                    BroadcastEmail::None => {}
                    BroadcastEmail::List => {
                        for address in email.broadcast_addresses.iter().filter(|a| email.allows(a)) {
                            plan.broadcast.push(Target {
                                channel: EMAIL,
                                target: address.clone(),
                                user: None,
                                digest_until: None,
                            });
                        }
                    }
                    BroadcastEmail::Users => {
                        let all: Vec<EntityRef> = crate::directory::list_users(db)
                            .await?
                            .into_iter()
                            .filter(|u| u.email.is_some())
                            .filter_map(|u| u.user_ref.parse().ok())
                            .collect();
                        let contacts = contacts(db, &all).await?;
                        for user in users_enabled(db, policy, &all, EMAIL, origin, topic).await? {
                            let key = user.as_str().to_string();
                            let Some(c) = contacts.get(&key) else { continue };
                            let Some(address) = c.email.clone().filter(|a| email.allows(a)) else { continue };
                            let digest_until = digest_period_end(&c.email_mode, now, email.daily_digest_hour);
                            plan.broadcast.push(Target {
                                channel: EMAIL,
                                target: address,
                                user: Some(key),
                                digest_until,
                            });
                        }
                    }
                }
            }
            if let Some(slack) = routing.slack.as_ref().filter(|s| s.filter.passes(payload))
                && let Some(channel) = slack.broadcast_channel(origin, topic)
            {
                plan.broadcast.push(Target {
                    channel: SLACK,
                    target: format!("channel:{channel}"),
                    user: None,
                    digest_until: None,
                });
            }
            if let Some(hooks) = routing.webhook.as_ref().filter(|w| w.filter.passes(payload)) {
                for hook in hooks.admin.iter().filter(|h| h.filter.passes(payload)) {
                    plan.broadcast.push(Target {
                        channel: WEBHOOK,
                        target: format!("admin:{}", hook.name),
                        user: None,
                        digest_until: None,
                    });
                }
            }
        }
    }
    Ok(plan)
}

/// Email, Slack id, digest mode and webhook of each user, in batches.
async fn contacts(db: &Db, users: &[EntityRef]) -> Result<HashMap<String, Contact>> {
    let mut out = HashMap::with_capacity(users.len());
    for chunk in users.chunks(500) {
        let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT u.ref, u.email, u.annotations, p.email_mode, w.user_ref
             FROM users u
             LEFT JOIN user_preferences p ON p.user_ref = u.ref
             LEFT JOIN user_webhooks w ON w.user_ref = u.ref
             WHERE u.ref IN ({list})"
        );
        let rows = with_pool!(db.reader(), |c| {
            let mut q = sqlx::query_as::<_, (String, Option<String>, String, Option<String>, Option<String>)>(&sql);
            for u in chunk {
                q = q.bind(u.as_str());
            }
            q.fetch_all(c).await
        })?;
        for (r, email, annotations, mode, hook) in rows {
            let slack_id = annotation(&annotations, "slack.com/user-id");
            out.insert(
                r,
                Contact {
                    email: email.filter(|e| e.contains('@')),
                    slack_id,
                    email_mode: mode.unwrap_or_else(|| "immediate".into()),
                    has_webhook: hook.is_some(),
                },
            );
        }
    }
    Ok(out)
}

/// The Slack channel a group's catalog entry names, if any.
async fn group_slack_channel(db: &Db, group: &EntityRef) -> Result<Option<String>> {
    let annotations =
        with_pool!(db.reader(), |c| sqlx::query_scalar::<_, String>("SELECT annotations FROM groups WHERE ref = $1")
            .bind(group.as_str())
            .fetch_optional(c)
            .await)?;
    Ok(annotations.and_then(|a| annotation(&a, "slack.com/channel")))
}

fn annotation(json: &str, key: &str) -> Option<String> {
    let map: HashMap<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    map.get(key)?.as_str().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(severity: Severity, topic: Option<&str>) -> NotificationPayload {
        NotificationPayload { title: "t".into(), severity, topic: topic.map(Into::into), ..Default::default() }
    }

    #[test]
    fn filters_bound_severity_and_topics() {
        let f = ChannelFilter {
            min_severity: Some(Severity::Normal),
            max_severity: Some(Severity::High),
            include_topics: vec![],
            exclude_topics: vec!["noise".into()],
        };
        assert!(f.passes(&payload(Severity::High, None)));
        assert!(!f.passes(&payload(Severity::Critical, None)));
        assert!(!f.passes(&payload(Severity::Low, None)));
        assert!(!f.passes(&payload(Severity::Normal, Some("noise"))));
        let only = ChannelFilter { include_topics: vec!["deploys".into()], ..Default::default() };
        assert!(only.passes(&payload(Severity::Low, Some("deploys"))));
        assert!(!only.passes(&payload(Severity::Low, None)));
    }

    #[test]
    fn allow_and_deny_lists_take_addresses_and_domains() {
        let e = EmailRouting {
            allow: vec!["example.com".into(), "ext@partner.io".into()],
            deny: vec!["noreply@example.com".into()],
            ..Default::default()
        };
        assert!(e.allows("Alice@Example.com"));
        assert!(e.allows("ext@partner.io"));
        assert!(!e.allows("other@partner.io"));
        assert!(!e.allows("noreply@example.com"));
    }

    #[test]
    fn the_most_specific_slack_route_wins() {
        let route = |origin: Option<&str>, topic: Option<&str>, channel: &str| SlackRoute {
            origin: origin.map(Into::into),
            topic: topic.map(Into::into),
            channel: channel.into(),
        };
        let s = SlackRouting {
            filter: ChannelFilter::default(),
            broadcast_routes: vec![
                route(None, None, "C-all"),
                route(Some("ci"), None, "C-ci"),
                route(None, Some("incidents"), "C-inc"),
                route(Some("ci"), Some("incidents"), "C-ci-inc"),
            ],
        };
        assert_eq!(s.broadcast_channel("ci", Some("incidents")), Some("C-ci-inc"));
        assert_eq!(s.broadcast_channel("pager", Some("incidents")), Some("C-inc"));
        assert_eq!(s.broadcast_channel("ci", Some("builds")), Some("C-ci"));
        assert_eq!(s.broadcast_channel("other", None), Some("C-all"));
    }
}
