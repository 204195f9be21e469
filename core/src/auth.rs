//! Credentials: password hashes, bearer tokens and sign-in sessions.
//!
//! Secrets are random 256-bit values shown once; only their SHA-256 is stored, so a leaked
//! database reveals no usable credential. Looking a token up by its hash needs no
//! constant-time comparison: the attacker never learns how close a guess came.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use herald_model::EntityRef;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::Db;
use crate::hub::{AuthPolicy, Hub};
use crate::time::now_ms;
use crate::{Error, Result, with_pool};

/// Bearer tokens verified a moment ago, by the hash of their secret (see [`crate::recent`]).
/// Unknown and revoked tokens are never cached: each such request is read.
pub type TokenCache = crate::recent::Recent<String, Caller, 10_000>;

/// How long a verified token is trusted without reading it again.
pub const TOKEN_CACHE_TTL: std::time::Duration = crate::recent::TTL;

/// Who is calling, once credentials have been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// A person, signed in with a session or using a personal access token.
    User { user: EntityRef, token_id: Option<String> },
    /// A publisher using a service token; `origin` is the token's name.
    Service { token_id: String, origin: String },
}

/// The two kinds of bearer token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenKind {
    /// Publishes notifications; cannot read inboxes.
    Service,
    /// Acts as one user; cannot publish.
    Personal,
}

impl TokenKind {
    fn as_str(self) -> &'static str {
        match self {
            TokenKind::Service => "service",
            TokenKind::Personal => "personal",
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            TokenKind::Service => "hrld_s_",
            TokenKind::Personal => "hrld_p_",
        }
    }
}

/// How service token secrets start (personal ones start `hrld_p_`).
pub const SERVICE_TOKEN_PREFIX: &str = "hrld_s_";

/// What is known about a token, without its secret.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: String,
    pub kind: String,
    /// For service tokens, the origin of what they publish; for personal ones, a label.
    pub name: String,
    pub user_ref: Option<String>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// A freshly created token: its record and the secret, which is never shown again.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub info: TokenInfo,
    pub secret: String,
}

/// Hashes a password with argon2id and a random salt, as a PHC string.
pub fn hash_password(password: &str) -> Result<String> {
    if password.chars().count() < 8 {
        return Err(Error::Invalid("the password must have at least 8 characters".into()));
    }
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Internal(format!("password hashing: {e}")))
}

/// Checks a password against a stored PHC string (argon2 compares in constant time).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// The SHA-256 of a secret, hex-encoded: what the database keeps.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

fn random_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// Validates a service token name, which becomes the `origin` of what it publishes.
pub fn validate_origin(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > 255 {
        return Err(Error::Invalid("a service token name must have 1 to 255 characters".into()));
    }
    if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::Invalid(format!("service token name '{name}' must not contain spaces, e.g. external:ci")));
    }
    // Herald's own origins (announcements) cannot be impersonated by a publisher.
    if name.to_ascii_lowercase().starts_with("herald:") {
        return Err(Error::Invalid("service token names starting with 'herald:' are Herald's own".into()));
    }
    Ok(())
}

/// Creates a service token; its name becomes the origin of what it publishes.
pub async fn create_service_token(db: &Db, name: &str) -> Result<NewToken> {
    validate_origin(name)?;
    create_token(db, TokenKind::Service, name, None).await
}

/// Creates a personal access token that acts as `user`.
pub async fn create_personal_token(db: &Db, user: &EntityRef, label: &str) -> Result<NewToken> {
    let label = label.trim();
    if label.is_empty() || label.len() > 255 {
        return Err(Error::Invalid("a token label must have 1 to 255 characters".into()));
    }
    create_token(db, TokenKind::Personal, label, Some(user.as_str())).await
}

async fn create_token(db: &Db, kind: TokenKind, name: &str, user: Option<&str>) -> Result<NewToken> {
    let secret = random_secret(kind.prefix());
    let info = TokenInfo {
        id: uuid::Uuid::now_v7().to_string(),
        kind: kind.as_str().to_string(),
        name: name.to_string(),
        user_ref: user.map(str::to_string),
        created_at: now_ms(),
        last_used_at: None,
        revoked_at: None,
    };
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO tokens (id, kind, name, user_ref, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)"
    )
    .bind(&info.id)
    .bind(&info.kind)
    .bind(&info.name)
    .bind(&info.user_ref)
    .bind(secret_hash(&secret))
    .bind(info.created_at)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(NewToken { info, secret })
}

/// Lists tokens of one kind, newest first; personal tokens only of `user` when given.
pub async fn list_tokens(db: &Db, kind: TokenKind, user: Option<&EntityRef>) -> Result<Vec<TokenInfo>> {
    let rows = with_pool!(db.reader(), |c| sqlx::query_as::<_, TokenInfo>(
        "SELECT id, kind, name, user_ref, created_at, last_used_at, revoked_at FROM tokens
         WHERE kind = $1 AND ($2 IS NULL OR user_ref = $2) ORDER BY created_at DESC, id DESC"
    )
    .bind(kind.as_str())
    .bind(user.map(EntityRef::as_str))
    .fetch_all(c)
    .await)?;
    Ok(rows)
}

/// Revokes a token by id. With `owner`, only that user's personal tokens can be revoked.
/// Instances that verified the token in the last [`TOKEN_CACHE_TTL`] accept it until then;
/// [`Hub::revoke_token`] also stops the calling instance at once.
pub async fn revoke_token(db: &Db, id: &str, owner: Option<&EntityRef>) -> Result<()> {
    let done = with_pool!(db.writer(), |c| sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL
         AND ($3 IS NULL OR user_ref = $3)"
    )
    .bind(now_ms())
    .bind(id)
    .bind(owner.map(EntityRef::as_str))
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if done == 0 {
        return Err(Error::NotFound(format!("no active token with id '{id}'")));
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct TokenRow {
    id: String,
    kind: String,
    name: String,
    user_ref: Option<String>,
    last_used_at: Option<i64>,
}

/// How stale `last_used_at` may get before a request refreshes it: one write per token per
/// minute rather than one per request.
const LAST_USED_RESOLUTION_MS: i64 = 60_000;

/// Resolves a bearer token to its caller; `None` when it is unknown or revoked. A token
/// verified within [`TOKEN_CACHE_TTL`] is not read again (see [`crate::recent`]).
pub async fn authenticate_token(db: &Db, cache: &TokenCache, secret: &str) -> Result<Option<Caller>> {
    if !(secret.starts_with("hrld_s_") || secret.starts_with("hrld_p_")) {
        return Ok(None);
    }
    let hash = secret_hash(secret);
    cache.get_or_read(hash.clone(), async || read_token(db, &hash).await).await
}

/// Reads the row of the token whose secret hashes to `hash` (see [`authenticate_token`]) and
/// records its use.
async fn read_token(db: &Db, hash: &str) -> Result<Option<Caller>> {
    let row = with_pool!(db.reader(), |c| sqlx::query_as::<_, TokenRow>(
        "SELECT id, kind, name, user_ref, last_used_at FROM tokens
         WHERE secret_hash = $1 AND revoked_at IS NULL"
    )
    .bind(hash)
    .fetch_optional(c)
    .await)?;
    let Some(row) = row else { return Ok(None) };
    let now = now_ms();
    if row.last_used_at.is_none_or(|t| now - t > LAST_USED_RESOLUTION_MS) {
        let touched = with_pool!(db.writer(), |c| sqlx::query("UPDATE tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&row.id)
            .execute(c)
            .await
            .map(|r| r.rows_affected()));
        // Bookkeeping only: a database that cannot take writes (full disk, read-only) must
        // not turn reading the inbox away.
        if let Err(e) = touched {
            tracing::debug!(error = %e, "could not record a token's last use");
        }
    }
    Ok(Some(match (row.kind.as_str(), row.user_ref) {
        ("personal", Some(user)) => Caller::User { user: EntityRef::from_normalised(user), token_id: Some(row.id) },
        _ => Caller::Service { token_id: row.id, origin: row.name },
    }))
}

/// Starts a session for `user`; returns the secret for the cookie.
pub async fn create_session(db: &Db, user: &EntityRef, ttl_ms: i64) -> Result<String> {
    let secret = random_secret("");
    let now = now_ms();
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO sessions (id_hash, user_ref, created_at, expires_at) VALUES ($1, $2, $3, $4)"
    )
    .bind(secret_hash(&secret))
    .bind(user.as_str())
    .bind(now)
    .bind(now + ttl_ms)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(secret)
}

/// The user a session cookie belongs to, if the session exists and has not expired.
pub async fn session_user(db: &Db, secret: &str) -> Result<Option<EntityRef>> {
    let user = with_pool!(db.reader(), |c| sqlx::query_scalar::<_, String>(
        "SELECT user_ref FROM sessions WHERE id_hash = $1 AND expires_at > $2"
    )
    .bind(secret_hash(secret))
    .bind(now_ms())
    .fetch_optional(c)
    .await)?;
    Ok(user.map(EntityRef::from_normalised))
}

/// Ends a session.
pub async fn delete_session(db: &Db, secret: &str) -> Result<()> {
    with_pool!(db.writer(), |c| sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(secret_hash(secret))
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Checks a user's password; `None` for an unknown user or a wrong password alike, so callers
/// cannot tell the two apart.
pub async fn check_password(db: &Db, user: &EntityRef, password: &str) -> Result<Option<EntityRef>> {
    let hash = with_pool!(db.reader(), |c| sqlx::query_scalar::<_, Option<String>>(
        "SELECT password_hash FROM users WHERE ref = $1"
    )
    .bind(user.as_str())
    .fetch_optional(c)
    .await)?
    .flatten();
    // Verify against a fixed hash when the user is unknown, so that the answer takes as long
    // as for a real user and timing does not reveal who exists.
    let (hash, known) = match hash {
        Some(h) => (h, true),
        None => (DUMMY_HASH.to_string(), false),
    };
    let ok = tokio::task::spawn_blocking({
        let password = password.to_string();
        move || verify_password(&hash, &password)
    })
    .await
    .map_err(|e| Error::Internal(format!("password check: {e}")))?;
    Ok((ok && known).then(|| user.clone()))
}

/// An argon2id hash of a random password nobody knows.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$2bV9dFDVlZ3Qv7kqIkYbQm0mWtsC1n1B4Xn0ygG9rYQ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_secret() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "wrong horse"));
        assert!(!verify_password("not a hash", "correct horse"));
        assert!(hash_password("short").is_err());
    }

    #[test]
    fn secrets_are_random_and_hashed() {
        let a = random_secret("hrld_s_");
        let b = random_secret("hrld_s_");
        assert_ne!(a, b);
        assert_eq!(a.len(), 7 + 64);
        assert_eq!(secret_hash(&a).len(), 64);
        assert_ne!(secret_hash(&a), a);
    }
}

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "herald_session";

/// The credentials one request carries, taken from its headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The secret of an `Authorization: Bearer` header.
    pub bearer: Option<String>,
    /// The secret of the session cookie.
    pub session: Option<String>,
    /// Who a trusted proxy says the user is.
    pub proxy_user: Option<String>,
}

impl Credentials {
    /// Reads the credentials from request headers. The proxy header counts only when `peer`
    /// is one of the trusted proxies; from anywhere else it is ignored.
    pub fn from_headers(headers: &http::HeaderMap, peer: Option<std::net::IpAddr>, policy: &AuthPolicy) -> Self {
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(|v| v.trim().to_string());
        let session = headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == SESSION_COOKIE)
            .map(|(_, value)| value.to_string());
        let proxy_user = policy.proxy.as_ref().and_then(|proxy| {
            let peer = peer?;
            if !proxy.trusts(peer) {
                return None;
            }
            headers
                .get(proxy.header.as_str())
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        });
        Credentials { bearer, session, proxy_user }
    }
}

/// Resolves a request's credentials to a caller: a bearer token first (a bad one is not
/// silently replaced by the cookie), then a trusted proxy's header, then the session cookie.
pub async fn authenticate(hub: &Hub, creds: &Credentials) -> Result<Option<Caller>> {
    if let Some(secret) = &creds.bearer {
        return authenticate_token(&hub.db, &hub.tokens, secret).await;
    }
    if let Some(asserted) = &creds.proxy_user {
        let user = proxy_sign_in(&hub.db, asserted).await?;
        return Ok(Some(Caller::User { user, token_id: None }));
    }
    if let Some(secret) = &creds.session {
        return Ok(session_user(&hub.db, secret).await?.map(|user| Caller::User { user, token_id: None }));
    }
    Ok(None)
}

/// The user a proxy asserted: an email address is looked up in the directory, anything else
/// is taken as a user name or ref. Users who are not in the directory yet are created.
async fn proxy_sign_in(db: &Db, asserted: &str) -> Result<EntityRef> {
    if asserted.contains('@') && !asserted.contains(':') {
        let known = with_pool!(db.reader(), |c| sqlx::query_scalar::<_, String>(
            "SELECT ref FROM users WHERE lower(email) = lower($1) ORDER BY ref LIMIT 1"
        )
        .bind(asserted)
        .fetch_optional(c)
        .await)?;
        if let Some(user) = known {
            return Ok(EntityRef::from_normalised(user));
        }
        let local = asserted.split('@').next().unwrap_or(asserted);
        let user = EntityRef::parse_with_default(local, Some(herald_model::EntityKind::User))
            .map_err(|e| Error::Unauthorized(format!("the proxy's user header is unusable: {e}")))?;
        crate::directory::upsert_user(db, &user, None, Some(asserted)).await?;
        return Ok(user);
    }
    let user = EntityRef::parse_with_default(asserted, Some(herald_model::EntityKind::User))
        .map_err(|e| Error::Unauthorized(format!("the proxy's user header is unusable: {e}")))?;
    if user.kind() != herald_model::EntityKind::User {
        return Err(Error::Unauthorized("the proxy's user header names a group".into()));
    }
    if crate::directory::get_user(db, &user).await?.is_none() {
        crate::directory::upsert_user(db, &user, None, None).await?;
    }
    Ok(user)
}

/// Failed sign-ins per user name and per client address. Past the limit within the window,
/// further attempts are refused until the oldest failure leaves the window, so guessing
/// passwords gets nowhere; the answer is the same whether the user exists or not.
#[derive(Debug, Default)]
pub struct SignInThrottle {
    failures: std::sync::Mutex<std::collections::HashMap<String, Vec<i64>>>,
}

impl SignInThrottle {
    /// Failures allowed per user name within [`Self::WINDOW_MS`].
    pub const PER_USER: usize = 5;
    /// Failures allowed per client address (several people may share one).
    pub const PER_ADDRESS: usize = 20;
    /// The window failures are counted in.
    pub const WINDOW_MS: i64 = 15 * 60_000;

    fn keys(user: &str, address: Option<std::net::IpAddr>) -> Vec<(String, usize)> {
        let mut keys = vec![(format!("user:{}", user.to_lowercase()), Self::PER_USER)];
        if let Some(a) = address {
            keys.push((format!("ip:{a}"), Self::PER_ADDRESS));
        }
        keys
    }

    /// `Err(wait_ms)` when this user name or address has failed too often lately.
    pub fn check(&self, user: &str, address: Option<std::net::IpAddr>, now: i64) -> std::result::Result<(), i64> {
        let mut failures = self.failures.lock().expect("throttle lock");
        let mut wait = 0;
        for (key, limit) in Self::keys(user, address) {
            if let Some(times) = failures.get_mut(&key) {
                times.retain(|t| now - t < Self::WINDOW_MS);
                if times.len() >= limit {
                    wait = wait.max(times[times.len() - limit] + Self::WINDOW_MS - now);
                }
            }
        }
        if wait > 0 { Err(wait) } else { Ok(()) }
    }

    /// Records a failed attempt.
    pub fn failed(&self, user: &str, address: Option<std::net::IpAddr>, now: i64) {
        let mut failures = self.failures.lock().expect("throttle lock");
        // Bounded memory: forget stale entries when the map grows.
        if failures.len() > 100_000 {
            failures.retain(|_, times| times.last().is_some_and(|t| now - t < Self::WINDOW_MS));
        }
        for (key, _) in Self::keys(user, address) {
            failures.entry(key).or_default().push(now);
        }
    }

    /// Forgets a user name's failures after a successful sign-in.
    pub fn succeeded(&self, user: &str) {
        self.failures.lock().expect("throttle lock").remove(&format!("user:{}", user.to_lowercase()));
    }
}

#[cfg(test)]
mod throttle_tests {
    use super::SignInThrottle;

    #[test]
    fn five_failures_lock_a_user_name_for_the_window() {
        let t = SignInThrottle::default();
        let ip = Some("10.0.0.1".parse().unwrap());
        for i in 0..5 {
            assert!(t.check("alice", ip, i).is_ok());
            t.failed("alice", ip, i);
        }
        let wait = t.check("Alice", ip, 10).unwrap_err();
        assert!(wait > 14 * 60_000, "{wait}");
        assert!(t.check("bob", ip, 10).is_ok(), "another user from the same address may still try");
        assert!(t.check("alice", ip, SignInThrottle::WINDOW_MS + 5).is_ok(), "the window passes");
        t.succeeded("alice");
        assert!(t.check("alice", ip, 11).is_ok());
    }
}
