//! Personal preferences that are not per channel, origin or topic.

use herald_model::EntityRef;

use crate::db::Db;
use crate::time::now_ms;
use crate::{Result, with_pool};

/// A user's preferences; a user who never changed them has the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Preferences {
    /// Opening a notification's link from the inbox marks it read.
    pub mark_read_on_open: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences { mark_read_on_open: true }
    }
}

/// The preferences of `user`.
pub async fn get(db: &Db, user: &EntityRef) -> Result<Preferences> {
    let row = with_pool!(db.reader(), |c| sqlx::query_scalar::<_, bool>(
        "SELECT mark_read_on_open FROM user_preferences WHERE user_ref = $1"
    )
    .bind(user.as_str())
    .fetch_optional(c)
    .await)?;
    Ok(row.map_or_else(Preferences::default, |mark_read_on_open| Preferences { mark_read_on_open }))
}

/// Stores the preferences of `user`.
pub async fn save(db: &Db, user: &EntityRef, prefs: &Preferences) -> Result<()> {
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO user_preferences (user_ref, mark_read_on_open, updated_at) VALUES ($1, $2, $3)
         ON CONFLICT (user_ref) DO UPDATE SET mark_read_on_open = excluded.mark_read_on_open,
             updated_at = excluded.updated_at"
    )
    .bind(user.as_str())
    .bind(prefs.mark_read_on_open)
    .bind(now_ms())
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
