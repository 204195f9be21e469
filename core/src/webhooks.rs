//! Personal webhooks: a URL a user's notifications are POSTed to, signed with a secret Herald
//! generates (shown to its owner, who needs it to verify signatures).

use herald_model::EntityRef;

use crate::db::Db;
use crate::time::now_ms;
use crate::{Error, Result, with_pool};

/// A user's webhook.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct Webhook {
    pub url: String,
    /// The HMAC-SHA256 key. Unlike tokens it cannot be stored hashed: signing needs it.
    pub secret: String,
    pub created_at: i64,
}

/// The webhook of `user` (a user ref as text), if any.
pub async fn get(db: &Db, user: &str) -> Result<Option<Webhook>> {
    Ok(with_pool!(db.reader(), |c| sqlx::query_as::<_, Webhook>(
        "SELECT url, secret, created_at FROM user_webhooks WHERE user_ref = $1"
    )
    .bind(user)
    .fetch_optional(c)
    .await)?)
}

/// Sets the webhook of `user` to `url` (http or https) with a new secret, and returns it.
pub async fn set(db: &Db, user: &EntityRef, url: &str) -> Result<Webhook> {
    let parsed = url::Url::parse(url.trim()).map_err(|e| Error::Invalid(format!("webhook URL '{url}': {e}")))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(Error::Invalid("a webhook URL must be http or https".into()));
    }
    if url.len() > 2048 {
        return Err(Error::Invalid("a webhook URL must be at most 2048 bytes".into()));
    }
    let secret = format!("whsec_{}", hex::encode(rand::random::<[u8; 24]>()));
    let hook = Webhook { url: parsed.to_string(), secret, created_at: now_ms() };
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO user_webhooks (user_ref, url, secret, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_ref) DO UPDATE SET url = excluded.url, secret = excluded.secret,
             created_at = excluded.created_at"
    )
    .bind(user.as_str())
    .bind(&hook.url)
    .bind(&hook.secret)
    .bind(hook.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(hook)
}

/// Removes the webhook of `user`.
pub async fn remove(db: &Db, user: &EntityRef) -> Result<()> {
    with_pool!(db.writer(), |c| sqlx::query("DELETE FROM user_webhooks WHERE user_ref = $1")
        .bind(user.as_str())
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}
