//! Webhooks: the notification JSON POSTed to a URL, signed so receivers can check it came
//! from Herald and is fresh.
//!
//! Headers: `X-Herald-Delivery` (the delivery id; the same on a retry), `X-Herald-Timestamp`
//! (Unix seconds) and `X-Herald-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! `"<timestamp>.<body>"` with the hook's secret.

use std::time::Duration;

use herald_core::Db;
use herald_core::outbox::{Delivery, kind};
use herald_core::routing::AdminWebhook;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;

use super::SendError;

/// Sends deliveries of the webhook channel.
pub struct WebhookSender {
    client: reqwest::Client,
    admin: Vec<AdminWebhook>,
}

/// The signature header's value for a body sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

impl WebhookSender {
    pub fn new(admin: Vec<AdminWebhook>, timeout: Duration) -> anyhow::Result<WebhookSender> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("Herald/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(WebhookSender { client, admin })
    }

    /// Where a delivery goes and the key it is signed with.
    async fn endpoint(&self, db: &Db, target: &str) -> Result<(String, String), SendError> {
        if let Some(name) = target.strip_prefix("admin:") {
            let hook = self
                .admin
                .iter()
                .find(|h| h.name == name)
                .ok_or_else(|| SendError::Permanent(format!("webhook '{name}' is no longer configured")))?;
            return Ok((hook.url.clone(), hook.secret.clone()));
        }
        let user = target.strip_prefix("user:").unwrap_or(target);
        herald_core::webhooks::get(db, user)
            .await
            .map_err(|e| SendError::transient(format!("reading the webhook: {e}")))?
            .map(|h| (h.url, h.secret))
            .ok_or_else(|| SendError::Permanent(format!("{user} no longer has a webhook")))
    }

    /// Sends one delivery.
    pub async fn send(&self, db: &Db, d: &Delivery) -> Result<(), SendError> {
        let (url, secret) = self.endpoint(db, &d.target).await?;
        let list = d.notifications().map_err(|e| SendError::Permanent(format!("unreadable delivery: {e}")))?;
        let event = if d.kind == kind::UPDATE { "notification.updated" } else { "notification.created" };
        let body = serde_json::to_vec(&json!({
            "event": event,
            "deliveryId": d.id,
            "notification": list.first(),
        }))
        .map_err(|e| SendError::Permanent(e.to_string()))?;
        let timestamp = chrono::Utc::now().timestamp();
        let response = self
            .client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-herald-delivery", &d.id)
            .header("x-herald-event", event)
            .header("x-herald-timestamp", timestamp.to_string())
            .header("x-herald-signature", sign(&secret, timestamp, &body))
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::transient(format!("POST {url}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = super::slack::retry_after(response.headers());
        let message = format!("POST {url}: {status}");
        if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
            Err(SendError::Transient { message, retry_after })
        } else {
            Err(SendError::Permanent(message))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_and_body() {
        // Computed independently: printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            super::sign("s3cret", 1_700_000_000, br#"{"a":1}"#),
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }
}
