//! Slack through its Web API with a bot token: `chat.postMessage` to users (by the
//! `slack.com/user-id` annotation or `users.lookupByEmail`, cached) and channels,
//! `chat.update` for scope updates. `429` is retried after `Retry-After`; `ok: false` errors
//! are sorted into permanent and transient.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use herald_core::Db;
use herald_core::outbox::{self, Delivery, kind};
use serde_json::{Value, json};

use super::{SendError, render};

/// How long an email → Slack user lookup is trusted.
const LOOKUP_TTL: Duration = Duration::from_secs(3600);

/// Errors that will not go away by trying again.
const PERMANENT: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "channel_not_found",
    "is_archived",
    "not_in_channel",
    "user_not_found",
    "users_not_found",
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "invalid_attachments",
    "invalid_arguments",
    "restricted_action",
    "cant_update_message",
];

/// Errors Slack itself says are passing.
const TRANSIENT: &[&str] =
    &["ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"];

/// Sends deliveries of the Slack channel.
pub struct SlackSender {
    client: reqwest::Client,
    /// The Web API's base, ending in `/` (`https://slack.com/api/`).
    api: url::Url,
    token: String,
    base_url: url::Url,
    lookups: Mutex<HashMap<String, (String, Instant)>>,
}

/// `Retry-After` in seconds, if the response carries one.
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let secs: u64 = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(secs.min(3600)))
}

impl SlackSender {
    pub fn new(api: &str, token: &str, base_url: url::Url, timeout: Duration) -> anyhow::Result<SlackSender> {
        let mut api = url::Url::parse(api).map_err(|e| anyhow::anyhow!("slack.api_url '{api}': {e}"))?;
        if !api.path().ends_with('/') {
            let p = format!("{}/", api.path());
            api.set_path(&p);
        }
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        Ok(SlackSender { client, api, token: token.to_string(), base_url, lookups: Mutex::default() })
    }

    /// Calls one Web API method; `Ok` carries the response when `ok` is true.
    async fn call(&self, method: &str, request: reqwest::RequestBuilder) -> Result<Value, SendError> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|e| SendError::transient(format!("Slack {method}: {e}")))?;
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(SendError::Transient {
                message: format!("Slack {method}: rate limited"),
                retry_after: retry_after(response.headers()).or(Some(Duration::from_secs(1))),
            });
        }
        if status.is_server_error() {
            return Err(SendError::transient(format!("Slack {method}: {status}")));
        }
        let body: Value = response
            .json()
            .await
            .map_err(|e| SendError::transient(format!("Slack {method}: unreadable answer ({status}): {e}")))?;
        if body["ok"].as_bool() == Some(true) {
            return Ok(body);
        }
        let error = body["error"].as_str().unwrap_or("unknown_error").to_string();
        let message = format!("Slack {method}: {error}");
        if TRANSIENT.contains(&error.as_str()) {
            Err(SendError::transient(message))
        } else if PERMANENT.contains(&error.as_str()) || status.is_client_error() {
            Err(SendError::Permanent(message))
        } else {
            // An error this version does not know: keep it visible rather than retry blindly.
            Err(SendError::Permanent(message))
        }
    }

    fn method(&self, name: &str) -> url::Url {
        self.api.join(name).expect("method names are valid URL paths")
    }

    /// The Slack user id of an email address, from the cache or `users.lookupByEmail`.
    async fn lookup(&self, email: &str) -> Result<String, SendError> {
        let key = email.to_ascii_lowercase();
        if let Some((id, at)) = self.lookups.lock().expect("lookup cache").get(&key)
            && at.elapsed() < LOOKUP_TTL
        {
            return Ok(id.clone());
        }
        let request = self.client.get(self.method("users.lookupByEmail")).query(&[("email", email)]);
        let body = self.call("users.lookupByEmail", request).await?;
        let id = body["user"]["id"]
            .as_str()
            .ok_or_else(|| SendError::transient("Slack users.lookupByEmail: no user id in the answer"))?
            .to_string();
        self.lookups.lock().expect("lookup cache").insert(key, (id.clone(), Instant::now()));
        Ok(id)
    }

    /// Sends one delivery: a new message, or an edit of the one sent before for the same
    /// notification and target.
    pub async fn send(&self, db: &Db, d: &Delivery) -> Result<(), SendError> {
        let list = d.notifications().map_err(|e| SendError::Permanent(format!("unreadable delivery: {e}")))?;
        let n = list.first().ok_or_else(|| SendError::Permanent("empty delivery".into()))?;
        let mut message = render::slack(n, &self.base_url);
        if d.kind == kind::UPDATE {
            let earlier = outbox::slack_message(db, &n.id, &d.target)
                .await
                .map_err(|e| SendError::transient(format!("reading the earlier Slack message: {e}")))?;
            if let Some((channel, ts)) = earlier {
                message["channel"] = json!(channel);
                message["ts"] = json!(ts);
                let request = self.client.post(self.method("chat.update")).json(&message);
                return self.call("chat.update", request).await.map(|_| ());
            }
        }
        let channel = match d.target.split_once(':') {
            Some(("user", id)) | Some(("channel", id)) => id.to_string(),
            Some(("email", address)) => self.lookup(address).await?,
            _ => return Err(SendError::Permanent(format!("unknown Slack target '{}'", d.target))),
        };
        message["channel"] = json!(channel);
        message["unfurl_links"] = json!(false);
        let request = self.client.post(self.method("chat.postMessage")).json(&message);
        let body = self.call("chat.postMessage", request).await?;
        if let (Some(channel), Some(ts)) = (body["channel"].as_str(), body["ts"].as_str())
            && let Err(e) = outbox::save_slack_message(db, &n.id, &d.target, channel, ts).await
        {
            tracing::warn!(error = %e, "remembering a Slack message failed; a later update will post anew");
        }
        Ok(())
    }
}
