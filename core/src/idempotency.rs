//! Idempotency keys for publishing: the same key from the same token within 24 hours replays
//! the first response instead of publishing again.
//!
//! The key is claimed with an insert before the work starts, so two concurrent requests with
//! one key cannot both publish: the second sees the claim and is told to retry.

use crate::db::Db;
use crate::time::now_ms;
use crate::{Error, Result, with_pool};

/// How long a key is remembered.
pub const KEY_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

/// What to do with a request that carries an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use of the key: process the request, then call [`finish`] (or [`release`]).
    Proceed,
    /// The key was used before with the same body: answer with the saved response.
    Replay { status: u16, body: String },
}

/// Claims `key` for a request whose body hashes to `request_hash`.
pub async fn claim(db: &Db, token_id: &str, key: &str, request_hash: &str) -> Result<Claim> {
    if key.is_empty() || key.len() > 255 || key.chars().any(char::is_control) {
        return Err(Error::Invalid("Idempotency-Key must have 1 to 255 printable characters".into()));
    }
    let now = now_ms();
    let inserted = with_pool!(db.writer(), |c| {
        sqlx::query("DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2 AND created_at < $3")
            .bind(token_id)
            .bind(key)
            .bind(now - KEY_LIFETIME_MS)
            .execute(c)
            .await?;
        sqlx::query(
            "INSERT INTO idempotency_keys (token_id, key, request_hash, status, response, created_at)
             VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (token_id, key) DO NOTHING",
        )
        .bind(token_id)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .execute(c)
        .await
        .map(|r| r.rows_affected())
    })?;
    if inserted == 1 {
        return Ok(Claim::Proceed);
    }
    let (hash, status, body) = with_pool!(db.reader(), |c| sqlx::query_as::<_, (String, i32, String)>(
        "SELECT request_hash, status, response FROM idempotency_keys WHERE token_id = $1 AND key = $2"
    )
    .bind(token_id)
    .bind(key)
    .fetch_one(c)
    .await)?;
    if hash != request_hash {
        return Err(Error::Unprocessable(format!(
            "Idempotency-Key '{key}' was already used with a different request body"
        )));
    }
    if status == 0 {
        return Err(Error::Conflict(format!(
            "a request with Idempotency-Key '{key}' is still being processed; retry shortly"
        )));
    }
    Ok(Claim::Replay { status: status as u16, body })
}

/// Saves the response of a claimed key, for replays.
pub async fn finish(db: &Db, token_id: &str, key: &str, status: u16, body: &str) -> Result<()> {
    with_pool!(db.writer(), |c| sqlx::query(
        "UPDATE idempotency_keys SET status = $1, response = $2 WHERE token_id = $3 AND key = $4"
    )
    .bind(i32::from(status))
    .bind(body)
    .bind(token_id)
    .bind(key)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Gives up a claim after a failure on Herald's side, so that a retry can succeed.
pub async fn release(db: &Db, token_id: &str, key: &str) -> Result<()> {
    with_pool!(db.writer(), |c| sqlx::query(
        "DELETE FROM idempotency_keys WHERE token_id = $1 AND key = $2 AND status = 0"
    )
    .bind(token_id)
    .bind(key)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
