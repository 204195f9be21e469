//! Announcements: what administrators tell everyone or chosen groups. An announcement is
//! stored as a row of its own and published as ordinary notifications from the origin
//! [`ORIGIN`] with the scope `announcement:<id>` — so it reaches the inbox, the live stream
//! and the outbox like any notification, an edit after publishing is a scope update, and
//! read receipts are the notifications' own read state. One to everyone is a broadcast,
//! stored once.

use herald_model::{EntityRef, NotificationPayload, OneOrMany, PublishRequest, Recipients, Severity};
use serde::{Deserialize, Serialize};

use crate::db::Db;
use crate::events::log_event;
use crate::notifications::{PublishContext, publish, validate_payload};
use crate::time::now_ms;
use crate::{Error, Result, directory, with_pool, with_tx};

/// The origin announcements are published from.
pub const ORIGIN: &str = "herald:announcements";

/// What an administrator composes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Draft {
    pub title: String,
    /// Markdown.
    pub body: Option<String>,
    pub link: Option<String>,
    pub severity: Severity,
    pub topic: Option<String>,
    pub icon: Option<String>,
    /// Everyone (a broadcast), or the `audience` minus `excluded`.
    pub everyone: bool,
    pub audience: Vec<String>,
    pub excluded: Vec<String>,
    /// Also forward by email, Slack and webhooks, per each recipient's settings.
    pub forward: bool,
    /// When to publish (milliseconds since the epoch), for a scheduled one.
    pub publish_at: Option<i64>,
    /// When it leaves inboxes.
    pub expires_at: Option<i64>,
}

/// What saving does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Keep it as a draft.
    Draft,
    /// Publish at `publish_at`.
    Schedule,
    /// Publish now (or, for a published one, publish the edit).
    Publish,
}

/// An announcement with its state and read receipts' totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    pub id: String,
    pub draft: Draft,
    /// draft, scheduled, published, failed, expired or withdrawn.
    pub state: String,
    /// Why it could not be published when its time came (state `failed`).
    pub failure: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    /// People it reached (published) or will reach (otherwise).
    pub recipients: i64,
    /// Of those, how many have read it.
    pub read: i64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    title: String,
    body: Option<String>,
    link: Option<String>,
    severity: i16,
    topic: Option<String>,
    icon: Option<String>,
    everyone: bool,
    audience: String,
    excluded: String,
    forward: bool,
    state: String,
    publish_at: Option<i64>,
    expires_at: Option<i64>,
    created_by: String,
    created_at: i64,
    updated_at: i64,
    published_at: Option<i64>,
    failure: Option<String>,
}

impl Row {
    fn draft(&self) -> Draft {
        Draft {
            title: self.title.clone(),
            body: self.body.clone(),
            link: self.link.clone(),
            severity: Severity::from_rank(self.severity),
            topic: self.topic.clone(),
            icon: self.icon.clone(),
            everyone: self.everyone,
            audience: serde_json::from_str(&self.audience).unwrap_or_default(),
            excluded: serde_json::from_str(&self.excluded).unwrap_or_default(),
            forward: self.forward,
            publish_at: self.publish_at,
            expires_at: self.expires_at,
        }
    }
}

const COLUMNS: &str = "id, title, body, link, severity, topic, icon, everyone, audience, excluded, forward, state, \
     publish_at, expires_at, created_by, created_at, updated_at, published_at, failure";

fn scope(id: &str) -> String {
    format!("announcement:{id}")
}

fn refs(field: &str, list: &[String]) -> Result<Vec<EntityRef>> {
    list.iter()
        .map(|r| r.trim())
        .filter(|r| !r.is_empty())
        .map(|r| r.parse::<EntityRef>().map_err(|e| Error::Invalid(format!("{field}: {e}"))))
        .collect()
}

impl Draft {
    /// The notification payload it publishes.
    fn payload(&self, id: &str) -> NotificationPayload {
        NotificationPayload {
            title: self.title.clone(),
            description: self.body.clone(),
            link: self.link.clone(),
            severity: self.severity,
            topic: self.topic.clone(),
            scope: Some(scope(id)),
            icon: self.icon.clone(),
            metadata: None,
        }
    }

    fn recipients(&self) -> Result<Recipients> {
        if self.everyone {
            return Ok(Recipients::Broadcast);
        }
        let include: Vec<String> = refs("audience", &self.audience)?.iter().map(|r| r.to_string()).collect();
        let exclude: Vec<String> = refs("excluded", &self.excluded)?.iter().map(|r| r.to_string()).collect();
        Ok(Recipients::Entity {
            entity_ref: OneOrMany::Many(include),
            exclude_entity_ref: Some(OneOrMany::Many(exclude)),
        })
    }

    /// Checks it before it is stored.
    fn check(&self, ctx: &PublishContext, intent: Intent, now: i64) -> Result<Draft> {
        let payload = validate_payload(&self.payload("check"), &ctx.base_url)?;
        let audience: Vec<String> = refs("audience", &self.audience)?.iter().map(|r| r.to_string()).collect();
        let excluded: Vec<String> = refs("excluded", &self.excluded)?.iter().map(|r| r.to_string()).collect();
        if !self.everyone && audience.is_empty() {
            return Err(Error::Invalid("choose the groups or users it is for, or everyone".into()));
        }
        if intent == Intent::Schedule && self.publish_at.is_none_or(|t| t <= now) {
            return Err(Error::Invalid("a scheduled announcement needs a publishing time in the future".into()));
        }
        if let Some(e) = self.expires_at
            && (e <= now || self.publish_at.is_some_and(|p| intent == Intent::Schedule && e <= p))
        {
            return Err(Error::Invalid("the expiry must come after publishing".into()));
        }
        Ok(Draft {
            title: payload.title,
            body: payload.description,
            link: payload.link,
            topic: payload.topic,
            icon: payload.icon,
            audience,
            excluded,
            publish_at: if intent == Intent::Schedule { self.publish_at } else { None },
            ..self.clone()
        })
    }
}

/// Creates (`id` is `None`) or changes an announcement and does what `intent` says. A
/// published one can only be edited by publishing the edit, which its recipients see as an
/// update; withdrawn and expired ones cannot be changed.
pub async fn save(
    db: &Db,
    ctx: &PublishContext,
    admin: &EntityRef,
    id: Option<&str>,
    draft: &Draft,
    intent: Intent,
) -> Result<Announcement> {
    let now = now_ms();
    let draft = draft.check(ctx, intent, now)?;
    let id = match id {
        Some(id) => {
            let current = get_row(db, id).await?;
            match (current.state.as_str(), intent) {
                ("withdrawn" | "expired", _) => {
                    return Err(Error::Conflict(format!(
                        "this announcement is {}; it cannot be changed",
                        current.state
                    )));
                }
                ("published", Intent::Draft | Intent::Schedule) => {
                    return Err(Error::Conflict(
                        "this announcement is published: publish the edit, or withdraw it".into(),
                    ));
                }
                _ => {}
            }
            id.to_string()
        }
        None => uuid::Uuid::now_v7().to_string(),
    };
    let state = match intent {
        Intent::Draft => "draft",
        Intent::Schedule => "scheduled",
        Intent::Publish => "published",
    };
    with_pool!(db.writer(), |c| sqlx::query(
        "INSERT INTO announcements (id, title, body, link, severity, topic, icon, everyone, audience, excluded,
             forward, state, publish_at, expires_at, created_by, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16)
         ON CONFLICT (id) DO UPDATE SET title = excluded.title, body = excluded.body, link = excluded.link,
             severity = excluded.severity, topic = excluded.topic, icon = excluded.icon,
             everyone = excluded.everyone, audience = excluded.audience, excluded = excluded.excluded,
             forward = excluded.forward, state = excluded.state, publish_at = excluded.publish_at,
             expires_at = excluded.expires_at, updated_at = excluded.updated_at, failure = NULL"
    )
    .bind(&id)
    .bind(&draft.title)
    .bind(&draft.body)
    .bind(&draft.link)
    .bind(draft.severity.rank())
    .bind(&draft.topic)
    .bind(&draft.icon)
    .bind(draft.everyone)
    .bind(serde_json::to_string(&draft.audience)?)
    .bind(serde_json::to_string(&draft.excluded)?)
    .bind(draft.forward)
    .bind(state)
    .bind(draft.publish_at)
    .bind(draft.expires_at)
    .bind(admin.as_str())
    .bind(now)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    if intent == Intent::Publish {
        publish_row(db, ctx, &id).await?;
    }
    get(db, &id).await
}

/// Publishes an announcement as it is stored (first time, or an edit).
async fn publish_row(db: &Db, ctx: &PublishContext, id: &str) -> Result<usize> {
    let row = get_row(db, id).await?;
    let draft = row.draft();
    let request = PublishRequest { recipients: draft.recipients()?, payload: draft.payload(id) };
    // Without forwarding, the channels beyond the inbox are left out for this one.
    let quiet;
    let ctx = if draft.forward {
        ctx
    } else {
        quiet = PublishContext { routing: Default::default(), ..ctx.clone() };
        &quiet
    };
    let stored = publish(db, ctx, ORIGIN, &request).await?;
    let now = now_ms();
    with_pool!(db.writer(), |c| sqlx::query(
        "UPDATE announcements SET state = 'published', published_at = COALESCE(published_at, $1), updated_at = $1
         WHERE id = $2"
    )
    .bind(now)
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(stored.len())
}

/// Withdraws an announcement: it leaves every inbox (open tabs hear of it) and deliveries not
/// yet sent are cancelled.
pub async fn withdraw(db: &Db, id: &str) -> Result<()> {
    get_row(db, id).await?;
    end(
        db,
        id,
        &["draft", "scheduled", "publishing", "published", "failed"],
        "withdrawn",
        "the announcement was withdrawn",
    )
    .await?;
    Ok(())
}

/// Moves an announcement from one of the states `from` to `to` and, in the same transaction,
/// deletes the notifications it made: cancels their unsent deliveries and tells their users'
/// tabs. The state change is the claim — with several instances, one does it. Returns
/// whether this call did.
async fn end(db: &Db, id: &str, from: &[&str], to: &str, why: &str) -> Result<bool> {
    let now = now_ms();
    let states = from.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    let claim = format!("UPDATE announcements SET state = $1, updated_at = $2 WHERE id = $3 AND state IN ({states})");
    let mut tx = db.begin_inbox().await?;
    let claimed = with_tx!(&mut tx, |c| sqlx::query(&claim)
        .bind(to)
        .bind(now)
        .bind(id)
        .execute(c)
        .await
        .map(|r| r.rows_affected()))?;
    if claimed == 0 {
        return Ok(false);
    }
    let scope = scope(id);
    let rows = with_tx!(&mut tx, |c| {
        let rows = sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT id, user_ref FROM notifications WHERE origin = $1 AND scope = $2",
        )
        .bind(ORIGIN)
        .bind(&scope)
        .fetch_all(&mut *c)
        .await?;
        let mine = "SELECT id FROM notifications WHERE origin = $1 AND scope = $2";
        sqlx::query(&format!(
            "UPDATE deliveries SET status = 'dead', last_error = $3, updated_at = $4
             WHERE status IN ('pending', 'digest') AND notification_id IN ({mine})"
        ))
        .bind(ORIGIN)
        .bind(&scope)
        .bind(why)
        .bind(now)
        .execute(&mut *c)
        .await?;
        sqlx::query(&format!("DELETE FROM broadcast_status WHERE notification_id IN ({mine})"))
            .bind(ORIGIN)
            .bind(&scope)
            .execute(&mut *c)
            .await?;
        sqlx::query("DELETE FROM notifications WHERE origin = $1 AND scope = $2")
            .bind(ORIGIN)
            .bind(&scope)
            .execute(&mut *c)
            .await?;
        Ok::<_, sqlx::Error>(rows)
    })?;
    for (nid, user) in &rows {
        let user = user.as_deref().and_then(|u| u.parse::<EntityRef>().ok());
        let event = serde_json::json!({ "ids": [nid], "archived": true, "removed": true });
        log_event(&mut tx, user.as_ref(), "update", &event.to_string(), now).await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// How long a claimed scheduled announcement may stay `publishing` before another run takes
/// it over (its instance died between claiming and publishing).
const PUBLISHING_LEASE_MS: i64 = 60_000;

/// Publishes scheduled announcements whose time has come and expires published ones whose
/// expiry has passed. Each is claimed by a state change, so instances never do one twice; a
/// claim left by an instance that died is taken over after a minute (publishing again is a
/// scope update, so nothing is doubled). One whose stored content no longer passes the checks
/// it met when saved becomes `failed`, with the reason, instead of being tried every minute
/// forever; one that meets a failure that may pass (the database's) is tried again once its
/// claim lapses. Returns (published, expired).
pub async fn run_due(db: &Db, ctx: &PublishContext) -> Result<(usize, usize)> {
    let now = now_ms();
    let due = with_pool!(db.writer(), |c| sqlx::query_scalar::<_, String>(
        "UPDATE announcements SET state = 'publishing', updated_at = $1
         WHERE (state = 'scheduled' AND publish_at <= $1) OR (state = 'publishing' AND updated_at <= $2)
         RETURNING id"
    )
    .bind(now)
    .bind(now - PUBLISHING_LEASE_MS)
    .fetch_all(c)
    .await)?;
    let mut published = 0;
    for id in &due {
        match publish_row(db, ctx, id).await {
            Ok(_) => published += 1,
            Err(e) if e.is_unavailable() => return Err(e),
            // One that cannot be published must not hold back the others or the expiries.
            Err(e) => {
                tracing::error!(announcement = %id, error = %e, "a scheduled announcement could not be published");
                if e.is_permanent() {
                    fail(db, id, &e.to_string()).await?;
                }
            }
        }
    }
    let candidates = with_pool!(db.reader(), |c| sqlx::query_scalar::<_, String>(
        "SELECT id FROM announcements WHERE state = 'published' AND expires_at IS NOT NULL AND expires_at <= $1"
    )
    .bind(now)
    .fetch_all(c)
    .await)?;
    let mut expired = 0;
    for id in &candidates {
        if end(db, id, &["published"], "expired", "the announcement expired").await? {
            expired += 1;
        }
    }
    Ok((published, expired))
}

/// Marks a claimed announcement `failed`, with why: the scheduler leaves it alone until an
/// administrator saves it again.
async fn fail(db: &Db, id: &str, why: &str) -> Result<()> {
    with_pool!(db.writer(), |c| sqlx::query(
        "UPDATE announcements SET state = 'failed', failure = $1, updated_at = $2
         WHERE id = $3 AND state = 'publishing'"
    )
    .bind(why)
    .bind(now_ms())
    .bind(id)
    .execute(c)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

async fn get_row(db: &Db, id: &str) -> Result<Row> {
    let sql = format!("SELECT {COLUMNS} FROM announcements WHERE id = $1");
    with_pool!(db.reader(), |c| sqlx::query_as::<_, Row>(&sql).bind(id).fetch_optional(c).await)?
        .ok_or_else(|| Error::NotFound(format!("no announcement with id '{id}'")))
}

/// How many people an audience is.
pub async fn reach(db: &Db, everyone: bool, audience: &[String], excluded: &[String]) -> Result<i64> {
    if everyone {
        return directory::count_users(db).await;
    }
    let include = refs("audience", audience)?;
    if include.is_empty() {
        return Ok(0);
    }
    Ok(directory::resolve_recipients(db, &include, &refs("excluded", excluded)?).await?.len() as i64)
}

/// Who has read a published announcement and who has not: (user, read at).
pub async fn receipts(db: &Db, id: &str) -> Result<Vec<(String, Option<i64>)>> {
    let rows = with_pool!(db.reader(), |c| sqlx::query_as::<_, (String, Option<String>, Option<i64>)>(
        "SELECT id, user_ref, read FROM notifications WHERE origin = $1 AND scope = $2"
    )
    .bind(ORIGIN)
    .bind(scope(id))
    .fetch_all(c)
    .await)?;
    let mut out = Vec::new();
    for (nid, user, read) in rows {
        match user {
            Some(u) => out.push((u, read)),
            // A broadcast: every user, with their own state.
            None => {
                out.extend(with_pool!(db.reader(), |c| sqlx::query_as::<_, (String, Option<i64>)>(
                    "SELECT u.ref, s.read FROM users u
                     LEFT JOIN broadcast_status s ON s.notification_id = $1 AND s.user_ref = u.ref
                     ORDER BY u.ref"
                )
                .bind(&nid)
                .fetch_all(c)
                .await)?);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One announcement with its totals.
pub async fn get(db: &Db, id: &str) -> Result<Announcement> {
    let row = get_row(db, id).await?;
    summarize(db, row).await
}

async fn summarize(db: &Db, row: Row) -> Result<Announcement> {
    let draft = row.draft();
    let (recipients, read) = match row.state.as_str() {
        "published" => read_totals(db, &row.id).await?,
        "draft" | "scheduled" | "failed" => {
            (reach(db, draft.everyone, &draft.audience, &draft.excluded).await.unwrap_or(0), 0)
        }
        _ => (0, 0),
    };
    Ok(Announcement {
        id: row.id,
        draft,
        state: row.state,
        created_by: row.created_by,
        created_at: row.created_at,
        updated_at: row.updated_at,
        published_at: row.published_at,
        failure: row.failure,
        recipients,
        read,
    })
}

/// How many people a published announcement reached and how many have read it, counted in
/// the database (a broadcast reaches every user; each keeps their state in
/// `broadcast_status`).
async fn read_totals(db: &Db, id: &str) -> Result<(i64, i64)> {
    Ok(with_pool!(db.reader(), |c| sqlx::query_as::<_, (i64, i64)>(
        "SELECT
             CAST(COALESCE(SUM(CASE WHEN n.user_ref IS NULL THEN (SELECT COUNT(*) FROM users) ELSE 1 END), 0)
                 AS BIGINT),
             CAST(COALESCE(SUM(CASE WHEN n.user_ref IS NULL
                 THEN (SELECT COUNT(*) FROM broadcast_status s WHERE s.notification_id = n.id AND s.read IS NOT NULL)
                 ELSE CASE WHEN n.read IS NULL THEN 0 ELSE 1 END END), 0) AS BIGINT)
         FROM notifications n WHERE n.origin = $1 AND n.scope = $2"
    )
    .bind(ORIGIN)
    .bind(scope(id))
    .fetch_one(c)
    .await)?)
}

/// Every announcement, newest first.
pub async fn list(db: &Db) -> Result<Vec<Announcement>> {
    let sql = format!("SELECT {COLUMNS} FROM announcements ORDER BY created_at DESC, id DESC LIMIT 200");
    let rows = with_pool!(db.reader(), |c| sqlx::query_as::<_, Row>(&sql).fetch_all(c).await)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        out.push(summarize(db, row).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Backend;
    use crate::db::execute;
    use crate::notifications::ListQuery;

    fn context() -> PublishContext {
        PublishContext {
            base_url: "http://herald.test/".parse().unwrap(),
            policy: Default::default(),
            routing: Default::default(),
        }
    }

    /// Makes the database refuse to store a notification titled "Flaky" (or stop refusing),
    /// with an error that says neither that the database is unavailable nor that the input is
    /// wrong: Herald cannot tell whether trying again will pass.
    async fn refuse_flaky(db: &Db, refuse: bool) {
        let statements: &[&str] = match (db.backend(), refuse) {
            (Backend::Sqlite, true) => &["CREATE TRIGGER flaky BEFORE INSERT ON notifications
                 WHEN NEW.title = 'Flaky' BEGIN SELECT RAISE(ABORT, 'flaky storage'); END"],
            (Backend::Postgres, true) => &[
                "CREATE FUNCTION flaky() RETURNS trigger LANGUAGE plpgsql AS $$
                 BEGIN
                     IF NEW.title = 'Flaky' THEN RAISE EXCEPTION 'flaky storage'; END IF;
                     RETURN NEW;
                 END $$",
                "CREATE TRIGGER flaky BEFORE INSERT ON notifications FOR EACH ROW EXECUTE FUNCTION flaky()",
            ],
            (Backend::Sqlite, false) => &["DROP TRIGGER flaky"],
            (Backend::Postgres, false) => &["DROP TRIGGER flaky ON notifications", "DROP FUNCTION flaky()"],
        };
        for statement in statements {
            execute(db, statement).await;
        }
    }

    async fn titles(db: &Db, user: &EntityRef) -> Vec<String> {
        let (page, _) = crate::notifications::list(db, user, &ListQuery::default()).await.unwrap();
        let mut titles: Vec<String> = page.into_iter().map(|n| n.payload.title).collect();
        titles.sort();
        titles
    }

    /// A due announcement whose publishing fails in a way that may pass (not the database
    /// being unavailable, which stops the run, nor its content, which marks it failed) keeps
    /// its claim: it holds back no other, is not tried again within the claim, and is
    /// published by the first run after the claim lapses once the fault has cleared.
    async fn a_failure_that_may_pass_is_tried_again_once_the_claim_lapses(db: &Db) {
        let ctx = context();
        let admin: EntityRef = "user:default/alice".parse().unwrap();
        let bob: EntityRef = "user:default/bob".parse().unwrap();
        let mut ids = Vec::new();
        for title in ["Flaky", "Fine"] {
            let draft = Draft {
                title: title.into(),
                audience: vec![bob.to_string()],
                publish_at: Some(now_ms() + 60_000),
                ..Draft::default()
            };
            ids.push(save(db, &ctx, &admin, None, &draft, Intent::Schedule).await.unwrap().id);
        }
        refuse_flaky(db, true).await;
        execute(db, "UPDATE announcements SET publish_at = 0").await;

        assert_eq!(run_due(db, &ctx).await.unwrap(), (1, 0), "the other one is published");
        assert_eq!(titles(db, &bob).await, ["Fine"]);
        let flaky = get(db, &ids[0]).await.unwrap();
        assert_eq!((flaky.state.as_str(), flaky.failure.as_deref()), ("publishing", None), "not failed: it may pass");
        assert_eq!(run_due(db, &ctx).await.unwrap(), (0, 0), "not tried again within its claim");

        refuse_flaky(db, false).await;
        assert_eq!(run_due(db, &ctx).await.unwrap(), (0, 0), "still claimed");
        execute(
            db,
            &format!("UPDATE announcements SET updated_at = updated_at - {PUBLISHING_LEASE_MS} WHERE title = 'Flaky'"),
        )
        .await;
        assert_eq!(run_due(db, &ctx).await.unwrap(), (1, 0), "the lapsed claim is taken over");
        assert_eq!(titles(db, &bob).await, ["Fine", "Flaky"]);
        let flaky = get(db, &ids[0]).await.unwrap();
        assert_eq!((flaky.state.as_str(), flaky.failure.as_deref(), flaky.recipients), ("published", None, 1));
    }

    #[tokio::test]
    async fn a_failure_that_may_pass_is_tried_again_once_the_claim_lapses_on_sqlite() {
        let (db, dir) = crate::db::scratch_sqlite("announcements", true).await;
        a_failure_that_may_pass_is_tried_again_once_the_claim_lapses(&db).await;
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    #[tokio::test]
    async fn a_failure_that_may_pass_is_tried_again_once_the_claim_lapses_on_postgres() {
        let (db, name) = crate::db::scratch_postgres("announcements").await;
        a_failure_that_may_pass_is_tried_again_once_the_claim_lapses(&db).await;
        crate::db::drop_scratch_postgres(db, name).await;
    }
}
