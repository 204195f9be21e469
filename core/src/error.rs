/// The one error type of Herald's core. Variants say who is at fault: the first group are the
/// caller's mistakes (their messages are safe to show), the rest are Herald's own failures
/// (their details are logged, never shown).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not acceptable; the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// Nothing the caller may see has that id.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (e.g. a request with the same idempotency
    /// key is still running).
    #[error("{0}")]
    Conflict(String),
    /// Well-formed but not processable (e.g. an idempotency key reused with another body).
    #[error("{0}")]
    Unprocessable(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials that do not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// A configuration value is unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A migration failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything else that is Herald's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether the database is unreachable (rather than the query being wrong): such errors
    /// are answered with 503 so clients retry.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Database(sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("JSON: {e}"))
    }
}
