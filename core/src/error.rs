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
    Database(#[source] sqlx::Error),
    /// The database cannot serve requests now (a failure another request met first, e.g. a
    /// group commit that failed for the whole batch).
    #[error("{}", .0.message())]
    Unavailable(Unavailable),
    /// A migration failed.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Anything else that is Herald's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the database cannot serve a request right now. Such failures are not the request's
/// fault and pass once the database is back, so they are answered with 503 and clients retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// Unreachable, restarting, or out of connections.
    Unreachable,
    /// Out of disk space.
    Full,
    /// The database (or its file system) does not accept writes.
    ReadOnly,
}

impl Unavailable {
    /// What a client is told.
    pub fn message(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "the database is unavailable; retry shortly",
            Unavailable::Full => "the database is out of disk space; nothing was stored; retry once space is freed",
            Unavailable::ReadOnly => "the database is read-only; nothing was stored; retry later",
        }
    }
}

impl Error {
    /// Whether (and why) the database is unavailable, rather than the query being wrong.
    pub fn unavailable(&self) -> Option<Unavailable> {
        let e = match self {
            Error::Database(e) => e,
            Error::Unavailable(u) => return Some(*u),
            _ => return None,
        };
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                Some(Unavailable::Unreachable)
            }
            // A connection that broke mid-conversation, e.g. the server went away.
            sqlx::Error::Protocol(_) | sqlx::Error::WorkerCrashed => Some(Unavailable::Unreachable),
            sqlx::Error::Database(d) => {
                let code = d.code()?;
                // Told apart by driver, not by the code's shape: many of PostgreSQL's SQLSTATEs
                // are all digits too (22021 would read as SQLITE_BUSY).
                if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                    // SQLite: the primary result code is the low byte of the extended one.
                    match code.parse::<i32>().ok()? & 0xff {
                        13 => Some(Unavailable::Full),                     // SQLITE_FULL
                        8 => Some(Unavailable::ReadOnly),                  // SQLITE_READONLY
                        5 | 6 | 10 | 14 => Some(Unavailable::Unreachable), // BUSY, LOCKED, IOERR, CANTOPEN
                        _ => None,
                    }
                } else {
                    // PostgreSQL's SQLSTATE: connection exceptions (08), shutting down or
                    // starting up (57P01-57P03), disk full (53100), other insufficient
                    // resources (53), a read-only standby (25006).
                    match code.as_ref() {
                        "53100" => Some(Unavailable::Full),
                        "25006" => Some(Unavailable::ReadOnly),
                        "57P01" | "57P02" | "57P03" => Some(Unavailable::Unreachable),
                        c if c.starts_with("08") || c.starts_with("53") => Some(Unavailable::Unreachable),
                        _ => None,
                    }
                }
            }
            _ => None,
        }
    }

    /// Whether the database is unavailable (see [`Error::unavailable`]).
    pub fn is_unavailable(&self) -> bool {
        self.unavailable().is_some()
    }

    /// Whether the input is at fault, so that the same call with the same input fails the same
    /// way until the input changes: not worth retrying by itself.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Error::Invalid(_) | Error::Unprocessable(_) | Error::NotFound(_))
    }

    /// The same failure as it concerns another request that shared it (the requests of a
    /// group commit whose commit failed): the same kind of unavailability, or an internal
    /// error carrying this one's description.
    pub(crate) fn for_another(&self) -> Error {
        match self.unavailable() {
            Some(why) => Error::Unavailable(why),
            None => Error::Internal(self.to_string()),
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        // PostgreSQL's text holds no NUL character, and refuses one with SQLSTATE 22021 (Rust
        // strings are valid UTF-8, so nothing else raises it). Inputs are checked for NUL where
        // they are validated; this answers any the checks missed as the client's mistake, not
        // Herald's failure. Told apart by driver, as in `unavailable`: the code alone could
        // be an SQLite one.
        if let sqlx::Error::Database(d) = &e
            && d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some()
            && d.code().as_deref() == Some("22021")
        {
            return Error::Invalid(NUL_REFUSED.into());
        }
        Error::Database(e)
    }
}

/// What a client is told when text it sent holds a NUL character that no check caught first.
pub(crate) const NUL_REFUSED: &str = "text must not contain NUL characters";

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("JSON: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn postgres_refusing_a_nul_is_the_clients_mistake_and_other_failures_stay_herald_s() {
        let mut c = crate::db::postgres_admin().await;
        let nul = sqlx::query("SELECT $1::text").bind("a\0b").execute(&mut c).await.unwrap_err();
        assert_eq!(nul.as_database_error().and_then(|d| d.code()).as_deref(), Some("22021"));
        // Not the database being unavailable, whatever its code looks like (22021 is all digits).
        let nul = Error::Database(nul);
        assert_eq!(nul.unavailable(), None);
        let nul = sqlx::query("SELECT $1::text").bind("a\0b").execute(&mut c).await.unwrap_err();
        let e = Error::from(nul);
        assert!(matches!(&e, Error::Invalid(m) if m == NUL_REFUSED), "{e:?}");
        let missing = sqlx::query("SELECT * FROM no_such_table").execute(&mut c).await.unwrap_err();
        let missing = Error::from(missing);
        assert!(matches!(missing, Error::Database(_)) && missing.unavailable().is_none(), "{missing:?}");
    }

    // PostgreSQL's codes are read as SQLSTATEs even when they are all digits, as most are.
    #[tokio::test]
    async fn postgres_codes_are_not_read_as_sqlite_ones() {
        let mut c = crate::db::postgres_admin().await;
        sqlx::query("BEGIN READ ONLY").execute(&mut c).await.unwrap();
        let e = sqlx::query("CREATE TEMPORARY SEQUENCE herald_read_only_probe").execute(&mut c).await.unwrap_err();
        let e = Error::from(e);
        assert_eq!(e.unavailable(), Some(Unavailable::ReadOnly), "{e:?}");
        sqlx::query("ROLLBACK").execute(&mut c).await.unwrap();
    }
}
