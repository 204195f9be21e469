//! `[delivery]`, `[email]`, `[slack]` and `[webhooks]`: forwarding beyond the inbox.

use herald_core::routing::{AdminWebhook, BroadcastEmail, ChannelFilter, SlackRoute};
use serde::{Deserialize, Serialize};

use super::Secret;

/// `[delivery]`: how the outbox retries.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// Attempts in all, the first included, before a delivery is dead.
    pub max_attempts: i32,
    /// Wait after the first failure, in milliseconds; it doubles with each further failure.
    pub first_retry_ms: u64,
    /// Longest wait between attempts, in milliseconds.
    pub max_retry_ms: u64,
    /// How long a claimed delivery is held before another sender may take it over, in seconds.
    pub lease_secs: u64,
    /// How often an idle sender looks at the outbox, in milliseconds.
    pub poll_ms: u64,
    /// Time limit of one send (SMTP, Slack, webhook), in seconds.
    pub timeout_secs: u32,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            max_attempts: 8,
            first_retry_ms: 15_000,
            max_retry_ms: 30 * 60_000,
            lease_secs: 60,
            poll_ms: 1000,
            timeout_secs: 10,
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text (a relay on localhost or a test server).
    None,
    /// Upgrade with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[email]`: forwarding by email. Off while `host` is unset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailSettings {
    /// SMTP server; unset turns email off.
    pub host: String,
    pub port: u16,
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Secret,
    /// Sender, e.g. `Herald <herald@example.com>`.
    pub from: String,
    pub reply_to: Option<String>,
    /// Addresses or domains that may be mailed; empty allows all.
    pub allow: Vec<String>,
    /// Addresses or domains never mailed.
    pub deny: Vec<String>,
    /// Broadcasts by email: `none`, `users` (everyone with an address) or `list`.
    pub broadcast: BroadcastEmail,
    /// The addresses for `broadcast = "list"`.
    pub broadcast_addresses: Vec<String>,
    /// Hour of the day (UTC) daily digests are sent.
    pub daily_digest_hour: u32,
    /// Email critical announcements to every recipient, even those who turned email off.
    pub critical_announcements_bypass_opt_outs: bool,
    /// Severity and topic bounds for email.
    pub filter: ChannelFilter,
}

impl Default for EmailSettings {
    fn default() -> Self {
        EmailSettings {
            host: String::new(),
            port: 587,
            tls: TlsMode::Starttls,
            username: None,
            password: Secret::default(),
            from: "Herald <herald@localhost>".into(),
            reply_to: None,
            allow: vec![],
            deny: vec![],
            broadcast: BroadcastEmail::None,
            broadcast_addresses: vec![],
            daily_digest_hour: 8,
            critical_announcements_bypass_opt_outs: false,
            filter: ChannelFilter::default(),
        }
    }
}

/// `[slack]`: forwarding to Slack with a bot token. Off while `token` is empty.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlackSettings {
    /// Bot token (`xoxb-…`); empty turns Slack off.
    pub token: Secret,
    /// The Web API's base URL.
    pub api_url: String,
    /// Where broadcasts go, by origin and/or topic; the most specific route wins.
    pub broadcast_routes: Vec<SlackRoute>,
    /// Severity and topic bounds for Slack.
    pub filter: ChannelFilter,
}

impl Default for SlackSettings {
    fn default() -> Self {
        SlackSettings {
            token: Secret::default(),
            api_url: "https://slack.com/api/".into(),
            broadcast_routes: vec![],
            filter: ChannelFilter::default(),
        }
    }
}

/// `[webhooks]`: signed HTTP POSTs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Let users set a personal webhook in their settings.
    pub personal: bool,
    /// Hooks that receive every notification passing their filter.
    pub hooks: Vec<AdminWebhook>,
    /// Severity and topic bounds for every webhook.
    pub filter: ChannelFilter,
}

impl WebhookSettings {
    /// Whether the webhook channel is on.
    pub fn enabled(&self) -> bool {
        self.personal || !self.hooks.is_empty()
    }
}

/// `[limits]`: request rates per credential (a token bucket each). A rate of 0 turns that
/// limit off.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Publish requests per minute per service token.
    pub publish_per_minute: u32,
    /// How many publish requests a service token may send at once before the rate applies.
    pub publish_burst: u32,
    /// Other API requests per minute per personal token, session or (without credentials)
    /// client address.
    pub user_per_minute: u32,
    /// Their burst.
    pub user_burst: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings { publish_per_minute: 60_000, publish_burst: 2_000, user_per_minute: 3_000, user_burst: 300 }
    }
}
