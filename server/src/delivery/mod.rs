//! Delivery: the senders that work off the outbox (`herald_core::outbox`) — email over SMTP,
//! Slack's Web API and signed webhooks — and the loop that drives them.

mod email;
mod render;
mod slack;
mod webhook;

pub use email::EmailSender;
pub use slack::SlackSender;
pub use webhook::{WebhookSender, sign};

use std::sync::Arc;
use std::time::Duration;

use herald_core::outbox::{self, Delivery, RetryPolicy};
use herald_core::{Db, Hub};

/// Why a send failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth another attempt (network trouble, 4xx SMTP replies, 429, 5xx), no sooner than
    /// `retry_after` when the receiver said so.
    #[error("{message}")]
    Transient { message: String, retry_after: Option<Duration> },
    /// Will fail again (bad address, `invalid_auth`, `channel_not_found`, 4xx from a webhook).
    #[error("{0}")]
    Permanent(String),
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        SendError::Transient { message: message.into(), retry_after: None }
    }
}

/// Most sends in flight at once per instance.
const IN_FLIGHT: usize = 32;

/// The configured senders and the rules for retrying.
pub struct Deliverer {
    pub db: Db,
    pub email: Option<EmailSender>,
    pub slack: Option<SlackSender>,
    pub webhook: Option<WebhookSender>,
    pub retry: RetryPolicy,
    /// How long a claimed delivery is ours before another sender may take it over.
    pub lease: Duration,
    /// How often the outbox is polled when idle.
    pub poll: Duration,
}

impl Deliverer {
    /// Channels this instance can send to.
    fn channels(&self) -> Vec<&'static str> {
        let mut c = vec![];
        if self.email.is_some() {
            c.push(outbox::EMAIL);
        }
        if self.slack.is_some() {
            c.push(outbox::SLACK);
        }
        if self.webhook.is_some() {
            c.push(outbox::WEBHOOK);
        }
        c
    }

    /// Works off the outbox until `stop` turns true: folds due digests, claims due
    /// deliveries and sends them concurrently — at most [`IN_FLIGHT`] at once, claiming more
    /// as sends finish, so one slow receiver never holds up the rest.
    pub async fn run(self: Arc<Self>, hub: Hub, mut stop: tokio::sync::watch::Receiver<bool>) {
        let channels = self.channels();
        if channels.is_empty() {
            return;
        }
        let lease_id = uuid::Uuid::new_v4().to_string();
        let mut sends = tokio::task::JoinSet::new();
        let mut last_digest_check = std::time::Instant::now() - Duration::from_secs(60);
        loop {
            if *stop.borrow() {
                return;
            }
            if last_digest_check.elapsed() >= Duration::from_secs(5) {
                last_digest_check = std::time::Instant::now();
                if let Err(e) = outbox::collect_digests(&self.db).await {
                    tracing::warn!(error = %e, "collecting email digests failed");
                }
            }
            let room = IN_FLIGHT - sends.len();
            if room > 0 {
                let lease = self.lease.as_millis() as i64;
                match outbox::claim(&self.db, &channels, room as i64, lease, &lease_id).await {
                    Ok(claimed) => {
                        for d in claimed {
                            let this = self.clone();
                            let lease_id = lease_id.clone();
                            sends.spawn(async move { this.deliver(d, &lease_id).await });
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "claiming deliveries failed; retrying"),
                }
            }
            tokio::select! {
                Some(_) = sends.join_next(), if !sends.is_empty() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = hub.db.events_written() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Sends one delivery and records the outcome.
    async fn deliver(&self, d: Delivery, lease_id: &str) {
        let result = match d.channel.as_str() {
            outbox::EMAIL => match &self.email {
                Some(s) => s.send(&d).await,
                None => Err(SendError::transient("email is not configured on this instance")),
            },
            outbox::SLACK => match &self.slack {
                Some(s) => s.send(&self.db, &d).await,
                None => Err(SendError::transient("Slack is not configured on this instance")),
            },
            outbox::WEBHOOK => match &self.webhook {
                Some(s) => s.send(&self.db, &d).await,
                None => Err(SendError::transient("webhooks are not configured on this instance")),
            },
            other => Err(SendError::Permanent(format!("unknown channel '{other}'"))),
        };
        let recorded = match result {
            Ok(()) => {
                metrics::counter!("herald_deliveries_total", "channel" => d.channel.clone(), "outcome" => "delivered")
                    .increment(1);
                outbox::delivered(&self.db, &d.id, lease_id).await
            }
            Err(e) => {
                let (retry_at, outcome) = match &e {
                    SendError::Transient { retry_after, .. } => {
                        let after = retry_after.map(|d| d.as_millis() as i64);
                        let at = self.retry.next_attempt(d.attempts, after, herald_core::time::now_ms());
                        (at, if at.is_some() { "retry" } else { "dead" })
                    }
                    SendError::Permanent(_) => (None, "dead"),
                };
                tracing::warn!(delivery = %d.id, channel = %d.channel, attempt = d.attempts, outcome, error = %e, "delivery failed");
                metrics::counter!("herald_deliveries_total", "channel" => d.channel.clone(), "outcome" => outcome)
                    .increment(1);
                outbox::failed(&self.db, &d.id, lease_id, &e.to_string(), retry_at).await
            }
        };
        match recorded {
            Ok(true) => {}
            Ok(false) => tracing::warn!(delivery = %d.id, "the lease ran out before the outcome was recorded"),
            Err(e) => tracing::warn!(delivery = %d.id, error = %e, "recording a delivery outcome failed"),
        }
    }
}
