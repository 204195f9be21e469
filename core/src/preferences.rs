//! Personal preferences that are not per channel, origin or topic.

use herald_model::EntityRef;

use crate::db::Db;
use crate::time::now_ms;
use crate::{Error, Result, with_pool};

/// A user's preferences; a user who never changed them has the defaults.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preferences {
    /// Opening a notification's link from the inbox marks it read.
    pub mark_read_on_open: bool,
    /// `immediate`, `hourly` or `daily`: email for each notification, or a digest per period.
    pub email_mode: String,
}

/// The email modes a user can choose.
pub const EMAIL_MODES: [&str; 3] = ["immediate", "hourly", "daily"];

impl Default for Preferences {
    fn default() -> Self {
        Preferences { mark_read_on_open: true, email_mode: "immediate".into() }
    }
}

/// The preferences of `user`.
pub async fn get(db: &Db, user: &EntityRef) -> Result<Preferences> {
    let row = with_pool!(db.reader(), |c| sqlx::query_as::<_, (bool, String)>(
        "SELECT mark_read_on_open, email_mode FROM user_preferences WHERE user_ref = $1"
    )
    .bind(user.as_str())
    .fetch_optional(c)
    .await)?;
    Ok(row.map_or_else(Preferences::default, |(mark_read_on_open, email_mode)| Preferences {
        mark_read_on_open,
        email_mode,
    }))
}

/// Stores the preferences of `user`.
pub async fn save(db: &Db, user: &EntityRef, prefs: &Preferences) -> Result<()> {
    if !EMAIL_MODES.contains(&prefs.email_mode.as_str()) {
        return Err(Error::Invalid(format!(
            "email mode '{}' is not one of {}",
            prefs.email_mode,
            EMAIL_MODES.join(", ")
        )));
    }
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO user_preferences (user_ref, mark_read_on_open, email_mode, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (user_ref) DO UPDATE SET mark_read_on_open = excluded.mark_read_on_open,
             email_mode = excluded.email_mode, updated_at = excluded.updated_at"
    )
    .bind(user.as_str())
    .bind(prefs.mark_read_on_open)
    .bind(&prefs.email_mode)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
