//! Configuration: one typed struct, read once at start-up from an optional `herald.toml` and
//! `HERALD_*` environment variables (which win). Nested keys use a double underscore:
//! `HERALD_AUTH__ADMIN_GROUP` sets `[auth] admin_group`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

mod delivery;

pub use delivery::{DeliverySettings, EmailSettings, LimitSettings, SlackSettings, TlsMode, WebhookSettings};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use herald_model::{EntityRef, NotificationSettings};
use serde::{Deserialize, Serialize};

/// A value that must never be printed: `Debug` and `Display` show `***`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_string())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Everything Herald can be configured with. See `herald.example.toml` for each key.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Address and port to listen on.
    pub listen: SocketAddr,
    /// The URL people and links reach Herald at; derived from `listen` when unset.
    pub base_url: Option<String>,
    /// `sqlite:path/to/file.db` or `postgres://user:password@host/db`.
    pub database_url: Secret,
    /// Most database connections open at once (SQLite: readers; the writer is always one);
    /// unset for the engine's default, twice the CPU cores and at least 4 (SQLite) or 8
    /// (PostgreSQL).
    pub database_max_connections: Option<u32>,
    /// Where the built web assets are (cargo-leptos' site root).
    pub site_root: PathBuf,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Days notifications are kept (saved ones are kept forever); 0 keeps everything.
    pub retention_days: u32,
    /// Hours the event log is kept for stream replay.
    pub event_replay_hours: u32,
    /// Catalog YAML files imported at every start.
    pub catalog_paths: Vec<PathBuf>,
    /// Sign-in and roles.
    pub auth: AuthSettings,
    /// Notification defaults.
    pub notifications: NotificationDefaults,
    /// Live streams.
    pub stream: StreamSettings,
    /// Retries of forwarded notifications.
    pub delivery: DeliverySettings,
    /// Forwarding by email.
    pub email: EmailSettings,
    /// Forwarding to Slack.
    pub slack: SlackSettings,
    /// Signed webhooks.
    pub webhooks: WebhookSettings,
    /// Request rates.
    pub limits: LimitSettings,
    /// Connection timeouts and sizes.
    pub http: HttpSettings,
}

/// `[http]`: what a connection may cost before Herald gives up on it, so slow or stalled
/// clients cannot tie the server up.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Seconds a client has to send a request's headers, and that an idle keep-alive
    /// connection stays open waiting for the next request.
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a request's whole body; slower ones get 408.
    pub body_read_timeout_secs: u64,
    /// Largest request head (request line and headers) in bytes; larger ones get 431.
    pub max_header_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings { header_read_timeout_secs: 10, body_read_timeout_secs: 30, max_header_bytes: 64 * 1024 }
    }
}

/// `[stream]`: the live Server-Sent Events stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSettings {
    /// Most streams (browser tabs) one user may have open at once; more get 429.
    pub max_per_user: usize,
    /// Most streams the instance keeps open in all; more get 503 with Retry-After (keep it
    /// under the process's open-file limit).
    pub max_total: usize,
    /// Seconds without an event after which a stream sends a keep-alive comment, so that
    /// proxies and browsers do not take a quiet stream for a dead one.
    pub keep_alive_secs: u64,
    /// Events the instance holds for a stream that is slow to take them (rounded up to a power
    /// of two; at most [`MAX_STREAM_BUFFER`]). A stream further behind than this (its client
    /// not reading, or the machine overloaded) is sent `reset`, and its client reloads; each
    /// held event costs memory once, not once per stream.
    pub buffer: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings { max_per_user: 16, max_total: 50_000, keep_alive_secs: 15, buffer: 4096 }
    }
}

/// The largest `stream.buffer`: its slots are allocated at start, and a million events is
/// far more than any client catches up on rather than reloading.
pub const MAX_STREAM_BUFFER: usize = 1 << 20;

/// `[auth]`: sign-in and roles.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSettings {
    /// Offer the built-in password sign-in.
    pub password_login: bool,
    /// Header a trusted reverse proxy sets to the signed-in user (e.g. `X-Forwarded-Email`);
    /// unset disables proxy sign-in.
    pub proxy_header: Option<String>,
    /// Addresses or networks of the trusted proxies (e.g. `127.0.0.1`, `10.0.0.0/8`).
    pub trusted_proxies: Vec<String>,
    /// Users who are administrators (`user:default/alice`).
    pub admins: Vec<String>,
    /// Members of this group are administrators.
    pub admin_group: Option<String>,
    /// Hours a sign-in lasts.
    pub session_hours: u32,
}

/// `[notifications]`: defaults applied to users without settings of their own.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationDefaults {
    /// Backstage's `notifications.defaultSettings` shape; e.g. an opt-in origin is listed with
    /// `enabled = false`.
    pub default_settings: NotificationSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: "127.0.0.1:3000".parse().expect("valid default address"),
            base_url: None,
            database_url: Secret::from("sqlite:data/herald.db"),
            database_max_connections: None,
            site_root: PathBuf::from("target/site"),
            log_format: LogFormat::Text,
            retention_days: 365,
            event_replay_hours: 24,
            catalog_paths: vec![],
            auth: AuthSettings::default(),
            notifications: NotificationDefaults::default(),
            stream: StreamSettings::default(),
            delivery: DeliverySettings::default(),
            email: EmailSettings::default(),
            slack: SlackSettings::default(),
            webhooks: WebhookSettings::default(),
            limits: LimitSettings::default(),
            http: HttpSettings::default(),
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            password_login: true,
            proxy_header: None,
            trusted_proxies: vec![],
            admins: vec![],
            admin_group: Some("group:default/herald-admins".into()),
            session_hours: 24 * 7,
        }
    }
}

/// The top-level keys, for picking `HERALD_*` variables that are settings.
const SETTING_KEYS: &[&str] = &[
    "listen",
    "base_url",
    "database_url",
    "database_max_connections",
    "site_root",
    "log_format",
    "retention_days",
    "event_replay_hours",
    "catalog_paths",
    "auth",
    "notifications",
    "stream",
    "delivery",
    "email",
    "slack",
    "webhooks",
    "limits",
    "http",
];

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Reads the configuration: defaults, then `file` (or `./herald.toml` when it exists),
    /// then `HERALD_*` variables from the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, ConfigError> {
        Self::load_from(file, Env::prefixed("HERALD_").split("__"))
    }

    fn load_from(file: Option<&Path>, env: Env) -> Result<Settings, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        match file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!("the configuration file {} does not exist", path.display())));
            }
            Some(path) => figment = figment.merge(Toml::file(path)),
            None if Path::new("herald.toml").exists() => figment = figment.merge(Toml::file("herald.toml")),
            None => {}
        }
        // Only variables naming a setting count: HERALD_CONFIG names the file, and tools
        // (`herald send`'s HERALD_URL and HERALD_TOKEN, test harnesses) use the prefix too.
        let env = env.filter(|key| {
            let top = key.as_str().split('.').next().unwrap_or_default().to_ascii_lowercase();
            SETTING_KEYS.contains(&top.as_str())
        });
        let settings: Settings = figment.merge(env).extract().map_err(|e| ConfigError(describe(e)))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what the types alone cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        self.base_url()?;
        let url = self.database_url.expose();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(ConfigError(
                "database_url: must start with sqlite: or postgres:// (e.g. sqlite:data/herald.db)".into(),
            ));
        }
        if self.database_max_connections == Some(0) {
            return Err(ConfigError("database_max_connections: must be at least 1".into()));
        }
        if self.event_replay_hours == 0 {
            return Err(ConfigError("event_replay_hours: must be at least 1".into()));
        }
        if self.stream.max_per_user == 0
            || self.stream.max_total == 0
            || self.stream.keep_alive_secs == 0
            || self.stream.buffer == 0
        {
            return Err(ConfigError(
                "stream.max_per_user, stream.max_total, stream.keep_alive_secs and stream.buffer: must be at least 1"
                    .into(),
            ));
        }
        if self.stream.buffer > MAX_STREAM_BUFFER {
            return Err(ConfigError(format!("stream.buffer: must be at most {MAX_STREAM_BUFFER}")));
        }
        if self.http.header_read_timeout_secs == 0 || self.http.body_read_timeout_secs == 0 {
            return Err(ConfigError(
                "http.header_read_timeout_secs and http.body_read_timeout_secs: must be at least 1".into(),
            ));
        }
        if self.http.max_header_bytes < 8192 {
            return Err(ConfigError("http.max_header_bytes: must be at least 8192".into()));
        }
        if self.auth.session_hours == 0 {
            return Err(ConfigError("auth.session_hours: must be at least 1".into()));
        }
        self.admin_users()?;
        self.admin_group()?;
        self.trusted_proxies()?;
        if self.auth.proxy_header.is_some() && self.auth.trusted_proxies.is_empty() {
            return Err(ConfigError(
                "auth.trusted_proxies: must list the proxy's address when auth.proxy_header is set".into(),
            ));
        }
        self.validate_delivery()?;
        if let Some(h) = &self.auth.proxy_header {
            http::HeaderName::from_bytes(h.as_bytes())
                .map_err(|_| ConfigError(format!("auth.proxy_header: '{h}' is not a valid header name")))?;
        }
        Ok(())
    }

    fn validate_delivery(&self) -> Result<(), ConfigError> {
        let d = &self.delivery;
        if d.max_attempts < 1 {
            return Err(ConfigError("delivery.max_attempts: must be at least 1".into()));
        }
        if d.lease_secs <= u64::from(d.timeout_secs) {
            return Err(ConfigError(
                "delivery.lease_secs: must be longer than delivery.timeout_secs, or a slow send could be taken over and sent twice"
                    .into(),
            ));
        }
        if d.poll_ms == 0 || d.first_retry_ms == 0 {
            return Err(ConfigError("delivery.poll_ms and delivery.first_retry_ms: must be at least 1".into()));
        }
        let e = &self.email;
        if !e.host.is_empty() {
            e.from
                .parse::<lettre::message::Mailbox>()
                .map_err(|err| ConfigError(format!("email.from: '{}' is not an address: {err}", e.from)))?;
            if e.daily_digest_hour > 23 {
                return Err(ConfigError("email.daily_digest_hour: must be 0 to 23".into()));
            }
        }
        if !self.slack.token.expose().is_empty() {
            url::Url::parse(&self.slack.api_url)
                .map_err(|err| ConfigError(format!("slack.api_url: '{}': {err}", self.slack.api_url)))?;
            if let Some(r) = self.slack.broadcast_routes.iter().find(|r| r.channel.trim().is_empty()) {
                return Err(ConfigError(format!("slack.broadcast_routes: a route ({r:?}) has no channel")));
            }
        }
        let mut names = std::collections::HashSet::new();
        for h in &self.webhooks.hooks {
            if h.name.is_empty() || !names.insert(h.name.as_str()) {
                return Err(ConfigError("webhooks.hooks: every hook needs a name of its own".into()));
            }
            let url = url::Url::parse(&h.url)
                .map_err(|err| ConfigError(format!("webhooks.hooks '{}': url '{}': {err}", h.name, h.url)))?;
            if url.scheme() != "http" && url.scheme() != "https" {
                return Err(ConfigError(format!("webhooks.hooks '{}': url must be http or https", h.name)));
            }
            if h.secret.len() < 8 {
                return Err(ConfigError(format!(
                    "webhooks.hooks '{}': secret must have at least 8 characters",
                    h.name
                )));
            }
        }
        Ok(())
    }

    /// The channels beyond the inbox, as the core routes them.
    pub fn routing(&self) -> herald_core::routing::Routing {
        use herald_core::routing::{EmailRouting, Routing, SlackRouting, WebhookRouting};
        let email = (!self.email.host.is_empty()).then(|| EmailRouting {
            filter: self.email.filter.clone(),
            allow: self.email.allow.clone(),
            deny: self.email.deny.clone(),
            broadcast: self.email.broadcast.clone(),
            broadcast_addresses: self.email.broadcast_addresses.clone(),
            daily_digest_hour: self.email.daily_digest_hour,
            critical_announcements_bypass_opt_outs: self.email.critical_announcements_bypass_opt_outs,
        });
        let slack = (!self.slack.token.expose().is_empty()).then(|| SlackRouting {
            filter: self.slack.filter.clone(),
            broadcast_routes: self.slack.broadcast_routes.clone(),
        });
        let webhook = self.webhooks.enabled().then(|| WebhookRouting {
            filter: self.webhooks.filter.clone(),
            personal: self.webhooks.personal,
            admin: self.webhooks.hooks.clone(),
        });
        Routing { email, slack, webhook }
    }

    /// The public base URL, without a trailing slash.
    pub fn base_url(&self) -> Result<url::Url, ConfigError> {
        let raw = match &self.base_url {
            Some(u) => u.clone(),
            None => format!("http://{}", self.listen),
        };
        let url = url::Url::parse(&raw).map_err(|e| ConfigError(format!("base_url: '{raw}' is not a URL: {e}")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(ConfigError(format!("base_url: '{raw}' must be an http or https URL")));
        }
        Ok(url)
    }

    /// `auth.admins`, parsed.
    pub fn admin_users(&self) -> Result<Vec<EntityRef>, ConfigError> {
        self.auth.admins.iter().map(|a| a.parse().map_err(|e| ConfigError(format!("auth.admins: {e}")))).collect()
    }

    /// `auth.admin_group`, parsed.
    pub fn admin_group(&self) -> Result<Option<EntityRef>, ConfigError> {
        self.auth
            .admin_group
            .as_deref()
            .filter(|g| !g.is_empty())
            .map(|g| g.parse().map_err(|e| ConfigError(format!("auth.admin_group: {e}"))))
            .transpose()
    }

    /// `auth.trusted_proxies`, parsed (a bare address is a one-address network).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        self.auth
            .trusted_proxies
            .iter()
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| ConfigError(format!("auth.trusted_proxies: '{p}' is not an IP address or network")))
            })
            .collect()
    }
}

/// Figment's error, phrased for people: which key, what is wrong, where it came from.
fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e.metadata.as_ref().map(|m| format!(" (from {})", m.name)).unwrap_or_default();
            if key.is_empty() { format!("{}{source}", e.kind) } else { format!("{key}: {}{source}", e.kind) }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
#[expect(clippy::result_large_err, reason = "figment's Jail, which these tests run in, returns its own error")]
mod tests {
    use super::*;

    #[test]
    fn defaults_work_without_any_file() {
        figment::Jail::expect_with(|_jail| {
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.listen.to_string(), "127.0.0.1:3000");
            assert_eq!(s.base_url().unwrap().as_str(), "http://127.0.0.1:3000/");
            assert_eq!(s.database_url.expose(), "sqlite:data/herald.db");
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_the_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "herald.toml",
                "listen = \"127.0.0.1:4000\"\nretention_days = 30\n[auth]\nadmins = [\"user:default/alice\"]\n",
            )?;
            jail.set_env("HERALD_RETENTION_DAYS", "7");
            jail.set_env("HERALD_AUTH__SESSION_HOURS", "2");
            let s = Settings::load(None).map_err(|e| e.0)?;
            assert_eq!(s.listen.port(), 4000);
            assert_eq!(s.retention_days, 7);
            assert_eq!(s.auth.session_hours, 2);
            assert_eq!(s.admin_users().unwrap()[0].as_str(), "user:default/alice");
            Ok(())
        });
    }

    #[test]
    fn bad_values_name_the_key() {
        for buffer in ["0".to_string(), (MAX_STREAM_BUFFER + 1).to_string()] {
            figment::Jail::expect_with(|jail| {
                jail.set_env("HERALD_STREAM__BUFFER", &buffer);
                let e = Settings::load(None).unwrap_err().0;
                assert!(e.contains("stream.buffer"), "{e}");
                Ok(())
            });
        }
        figment::Jail::expect_with(|jail| {
            jail.set_env("HERALD_LISTEN", "not-an-address");
            let e = Settings::load(None).unwrap_err().0;
            assert!(e.contains("listen"), "{e}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.set_env("HERALD_DATABASE_URL", "mysql://x");
            let e = Settings::load(None).unwrap_err().0;
            assert!(e.contains("database_url"), "{e}");
            Ok(())
        });
        figment::Jail::expect_with(|jail| {
            jail.create_file("herald.toml", "colour = \"blue\"\n")?;
            let e = Settings::load(None).unwrap_err().0;
            assert!(e.contains("colour"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn the_example_configuration_is_valid_and_documents_every_key() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../herald.example.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        figment::Jail::expect_with(|_jail| {
            Settings::load(Some(&path)).map_err(|e| e.0)?;
            Ok(())
        });
        for key in SETTING_KEYS.iter().chain(&[
            "password_login",
            "proxy_header",
            "trusted_proxies",
            "admins",
            "admin_group",
            "session_hours",
            "default_settings",
            "max_per_user",
            "max_total",
            "keep_alive_secs",
            "buffer",
            "max_attempts",
            "first_retry_ms",
            "lease_secs",
            "timeout_secs",
            "tls",
            "broadcast_addresses",
            "daily_digest_hour",
            "api_url",
            "broadcast_routes",
            "personal",
            "hooks",
            "publish_per_minute",
            "user_burst",
        ]) {
            assert!(text.contains(key), "herald.example.toml does not mention {key}");
        }
    }

    #[test]
    fn other_herald_variables_are_not_settings() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("HERALD_TOKEN", "hrld_s_x");
            jail.set_env("HERALD_URL", "http://example");
            assert!(Settings::load(None).is_ok());
            Ok(())
        });
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings { database_url: Secret::from("postgres://u:hunter2@db/herald"), ..Settings::default() };
        let printed = format!("{s:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
    }
}
