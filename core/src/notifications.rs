//! Publishing and reading notifications.
//!
//! A notification to users is stored once per recipient; a broadcast is stored once, with
//! each user's read/saved/archived state in `broadcast_status`. Every change is written
//! together with its entry in the event log, in one transaction.

use std::sync::{Arc, OnceLock};

use herald_model::{
    EntityRef, Notification, NotificationPayload, NotificationStatus, Recipients, Severity, WEB_CHANNEL,
};

use crate::db::{Backend, Db, NotificationRow, Tx};
use crate::events::log_event;
use crate::settings::{SettingsPolicy, users_enabled};
use crate::time::{from_ms, now_ms};
use crate::{Error, Result, directory, outbox, routing, with_pool, with_tx};

/// Binds each of `$binds` ([`Bind`]) to `$query`, in order.
macro_rules! bind_all {
    ($query:expr, $binds:expr) => {{
        let mut q = $query;
        for b in $binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        q
    }};
}

mod counts;
mod search;

pub use search::catch_up_search;

/// Limits on payload fields, in bytes.
pub mod limits {
    /// Title, topic, scope, icon and origin.
    pub const SHORT_FIELD: usize = 255;
    /// Description.
    pub const DESCRIPTION: usize = 10 * 1024;
    /// Metadata, as JSON.
    pub const METADATA: usize = 16 * 1024;
    /// Link.
    pub const LINK: usize = 2048;
    /// Recipients (refs) in one request.
    pub const RECIPIENTS: usize = 10_000;
    /// Ids in one update request.
    pub const IDS: usize = 1000;
    /// Page size.
    pub const PAGE: i64 = 1000;
}

pub use herald_model::PublishRequest;

/// What publishing needs to know about the instance.
#[derive(Clone, Debug)]
pub struct PublishContext {
    /// The public base URL; relative links resolve against it.
    pub base_url: url::Url,
    /// Channels and the administrator's default settings.
    pub policy: SettingsPolicy,
    /// The channels beyond the inbox (email, Slack, webhooks).
    pub routing: crate::routing::Routing,
}

/// Checks and normalises a payload: trims the title, drops empty optional fields, resolves a
/// relative link against the base URL and refuses anything but http(s).
pub fn validate_payload(payload: &NotificationPayload, base_url: &url::Url) -> Result<NotificationPayload> {
    let title = payload.title.trim().to_string();
    if title.is_empty() {
        return Err(Error::Invalid("payload.title is required and must not be empty".into()));
    }
    // Checked before anything is written: one publish's bad text must not fail the other
    // publishes that share its group commit.
    let texts = [
        ("payload.title", Some(&payload.title)),
        ("payload.description", payload.description.as_ref()),
        ("payload.link", payload.link.as_ref()),
        ("payload.topic", payload.topic.as_ref()),
        ("payload.scope", payload.scope.as_ref()),
        ("payload.icon", payload.icon.as_ref()),
    ];
    for (name, text) in texts {
        refuse_nul(name, text.map(String::as_str))?;
    }
    let short = |name: &str, v: &Option<String>| -> Result<Option<String>> {
        let v = v.as_deref().map(str::trim).filter(|s| !s.is_empty());
        if let Some(s) = v
            && s.len() > limits::SHORT_FIELD
        {
            return Err(Error::Invalid(format!(
                "payload.{name} is {} bytes long; the limit is {}",
                s.len(),
                limits::SHORT_FIELD
            )));
        }
        Ok(v.map(str::to_string))
    };
    short("title", &Some(title.clone()))?;
    let description = payload.description.clone().filter(|d| !d.trim().is_empty());
    if let Some(d) = &description
        && d.len() > limits::DESCRIPTION
    {
        return Err(Error::Invalid(format!(
            "payload.description is {} bytes long; the limit is {}",
            d.len(),
            limits::DESCRIPTION
        )));
    }
    if let Some(m) = &payload.metadata {
        let size = serde_json::to_string(m)?.len();
        if size > limits::METADATA {
            return Err(Error::Invalid(format!(
                "payload.metadata is {size} bytes as JSON; the limit is {}",
                limits::METADATA
            )));
        }
    }
    let link = match payload.link.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(l) => Some(resolve_link(l, base_url)?),
    };
    Ok(NotificationPayload {
        title,
        description,
        link,
        severity: payload.severity,
        topic: short("topic", &payload.topic)?,
        scope: short("scope", &payload.scope)?,
        icon: short("icon", &payload.icon)?,
        metadata: payload.metadata.clone(),
    })
}

/// Refuses text with a NUL character, which neither backend keeps faithfully: PostgreSQL's
/// text cannot hold one, and SQLite's search index reads only up to it.
pub(crate) fn refuse_nul(name: &str, text: Option<&str>) -> Result<()> {
    match text {
        Some(t) if t.contains('\0') => Err(Error::Invalid(format!("{name} must not contain NUL characters"))),
        _ => Ok(()),
    }
}

/// Resolves a link against the base URL (as Backstage does: relative to the base path) and
/// accepts only http and https.
pub fn resolve_link(link: &str, base_url: &url::Url) -> Result<String> {
    if link.len() > limits::LINK {
        return Err(Error::Invalid(format!("payload.link is longer than {} bytes", limits::LINK)));
    }
    let mut base = base_url.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    let url = base
        .join(link.trim_start_matches('/'))
        .map_err(|e| Error::Invalid(format!("payload.link '{link}' is not a valid URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(Error::Invalid(format!(
            "payload.link must be an http or https URL (or a path on this site), not '{}:'",
            url.scheme()
        )));
    }
    Ok(url.to_string())
}

fn parse_refs(field: &str, values: &[String]) -> Result<Vec<EntityRef>> {
    values
        .iter()
        .map(|v| v.parse::<EntityRef>().map_err(|e| Error::Invalid(format!("recipients.{field}: {e}"))))
        .collect()
}

/// Publishes a notification from `origin`. Returns what was stored: one notification per
/// recipient whose Web channel allows it, or the one broadcast.
#[tracing::instrument(skip_all, fields(origin))]
pub async fn publish(db: &Db, ctx: &PublishContext, origin: &str, req: &PublishRequest) -> Result<Vec<Notification>> {
    let payload = validate_payload(&req.payload, &ctx.base_url)?;
    let now = now_ms();
    let write = match &req.recipients {
        Recipients::Broadcast => {
            let plan = routing::plan(db, &ctx.routing, &ctx.policy, origin, &payload, &[], &[], None, now).await?;
            Write { users: vec![None], origin: origin.to_string(), payload, plan, now }
        }
        Recipients::Entity { entity_ref, exclude_entity_ref } => {
            let include = parse_refs("entityRef", &entity_ref.to_vec())?;
            let exclude =
                parse_refs("excludeEntityRef", &exclude_entity_ref.as_ref().map(|e| e.to_vec()).unwrap_or_default())?;
            if include.is_empty() {
                return Err(Error::Invalid("recipients.entityRef must name at least one user or group".into()));
            }
            if include.len() + exclude.len() > limits::RECIPIENTS {
                return Err(Error::Invalid(format!("at most {} recipient refs per request", limits::RECIPIENTS)));
            }
            let users = directory::resolve_recipients(db, &include, &exclude).await?;
            let users = users_enabled(db, &ctx.policy, &users, WEB_CHANNEL, origin, payload.topic.as_deref()).await?;
            if users.is_empty() {
                return Ok(vec![]);
            }
            let plan =
                routing::plan(db, &ctx.routing, &ctx.policy, origin, &payload, &include, &exclude, Some(&users), now)
                    .await?;
            Write { users: users.into_iter().map(Some).collect(), origin: origin.to_string(), payload, plan, now }
        }
    };
    // Everything above only reads; the writing joins whatever other publishes are waiting.
    let write = Arc::new(write);
    db.write_grouped(move |tx| {
        let write = write.clone();
        Box::pin(async move { write.store(tx).await })
    })
    .await
}

/// What one publish request writes, once its recipients and deliveries are known.
struct Write {
    /// The recipients; `None` for a broadcast.
    users: Vec<Option<EntityRef>>,
    origin: String,
    payload: NotificationPayload,
    plan: routing::Plan,
    now: i64,
}

impl Write {
    async fn store(&self, tx: &mut Tx) -> Result<Vec<Notification>> {
        let mut stored = Vec::with_capacity(self.users.len());
        for (i, user) in self.users.iter().enumerate() {
            let n = store_one(tx, user.as_ref(), &self.origin, &self.payload, self.now).await?;
            // Deliveries are written with the notification: both or neither.
            outbox::enqueue(tx, &self.plan.deliveries_for(&n, i == 0), self.now).await?;
            stored.push(n);
        }
        Ok(stored)
    }
}

/// Stores one notification (a user's, or a broadcast when `user` is `None`), replacing an
/// earlier one with the same scope and origin, and logs its event.
async fn store_one(
    tx: &mut Tx,
    user: Option<&EntityRef>,
    origin: &str,
    p: &NotificationPayload,
    now: i64,
) -> Result<Notification> {
    let user_ref = user.map(EntityRef::as_str);
    let metadata = p.metadata.as_ref().map(serde_json::to_string).transpose()?;
    let existing = match &p.scope {
        None => None,
        Some(scope) => with_tx!(tx, |c| sqlx::query_as::<_, (String, i64, Option<i64>)>(
            "SELECT id, created, saved FROM notifications
             WHERE origin = $1 AND scope = $2 AND (user_ref = $3 OR ($3 IS NULL AND user_ref IS NULL))"
        )
        .bind(origin)
        .bind(scope)
        .bind(user_ref)
        .fetch_optional(c)
        .await)?,
    };
    let (id, created, updated, saved) = match existing {
        Some((id, created, saved)) => {
            // A scope update replaces the whole payload (fields left out are cleared) and
            // makes the notification unread, undone and unsnoozed again.
            with_tx!(tx, |c| {
                sqlx::query(
                    "UPDATE notifications SET updated = $1, read = NULL, archived = NULL, snoozed_until = NULL, title = $2,
                         description = $3, link = $4, severity = $5, topic = $6, icon = $7, metadata = $8
                     WHERE id = $9",
                )
                .bind(now)
                .bind(&p.title)
                .bind(&p.description)
                .bind(&p.link)
                .bind(p.severity.rank())
                .bind(&p.topic)
                .bind(&p.icon)
                .bind(&metadata)
                .bind(&id)
                .execute(&mut *c)
                .await?;
                sqlx::query("UPDATE broadcast_status SET read = NULL, archived = NULL, snoozed_until = NULL WHERE notification_id = $1")
                    .bind(&id)
                    .execute(&mut *c)
                    .await
                    .map(|r| r.rows_affected())
            })?;
            (id, created, Some(now), saved)
        }
        None => {
            let id = uuid::Uuid::now_v7().to_string();
            // Written with the transaction's next statement (`with_tx!` flushes first) or at
            // its commit, together with the other publishes' of the batch.
            tx.defer_notification(NotificationRow {
                id: id.clone(),
                user_ref: user_ref.map(str::to_string),
                origin: origin.to_string(),
                created: now,
                title: p.title.clone(),
                description: p.description.clone(),
                link: p.link.clone(),
                severity: p.severity.rank(),
                topic: p.topic.clone(),
                scope: p.scope.clone(),
                icon: p.icon.clone(),
                metadata,
            });
            (id, now, None, None)
        }
    };
    let n = Notification {
        id,
        user: user_ref.map(str::to_string),
        created: from_ms(created),
        updated: updated.map(from_ms),
        read: None,
        saved: saved.filter(|_| user.is_some()).map(from_ms),
        archived: None,
        snoozed_until: None,
        origin: origin.to_string(),
        payload: p.clone(),
    };
    log_event(tx, user, "notification", &serde_json::to_string(&n)?, now).await?;
    Ok(n)
}

// ---------------------------------------------------------------------------------------------
// Reading

/// Which archived notifications a query sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Archived {
    /// Only those not archived (the inbox).
    #[default]
    Exclude,
    /// Only archived ones ("Done").
    Only,
    /// Both.
    Any,
}

/// Which snoozed notifications a query sees.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Snoozed {
    /// Only those not snoozed now (every inbox view).
    #[default]
    Hide,
    /// Only those snoozed now.
    Only,
    /// Both (reading one notification by id, changing state).
    Any,
}

/// Conditions on a user's notifications.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// Case-insensitive substring of the title or description.
    pub search: Option<String>,
    pub read: Option<bool>,
    pub saved: Option<bool>,
    pub archived: Archived,
    pub snoozed: Snoozed,
    /// Milliseconds since the epoch.
    pub created_after: Option<i64>,
    pub minimum_severity: Option<Severity>,
    pub topic: Option<String>,
}

impl Filter {
    /// Refuses conditions no stored notification can meet: text with a NUL character.
    fn check(&self) -> Result<()> {
        refuse_nul("search", self.search.as_deref())?;
        refuse_nul("topic", self.topic.as_deref())
    }
}

/// Fields a list can be sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderField {
    Created,
    Updated,
    Title,
    Severity,
    Topic,
    Origin,
}

impl OrderField {
    /// Parses Backstage's `orderField` value, `field` or `field,asc|desc`.
    pub fn parse_param(s: &str) -> Result<(OrderField, bool)> {
        let (field, dir) = s.split_once(',').unwrap_or((s, "desc"));
        let field = match field.trim() {
            "created" => OrderField::Created,
            "updated" => OrderField::Updated,
            "title" => OrderField::Title,
            "severity" => OrderField::Severity,
            "topic" => OrderField::Topic,
            "origin" => OrderField::Origin,
            other => {
                return Err(Error::Invalid(format!(
                    "orderField '{other}' is not sortable: use created, updated, title, severity, topic or origin"
                )));
            }
        };
        let descending = match dir.trim().to_ascii_lowercase().as_str() {
            "asc" => false,
            "desc" => true,
            other => return Err(Error::Invalid(format!("orderField direction '{other}' must be asc or desc"))),
        };
        Ok((field, descending))
    }

    /// The sort key in its direction, as `backend` writes it.
    fn sql(self, backend: Backend, descending: bool) -> String {
        // Bare column names: valid inside each half of the inbox query and over their union.
        let key = match self {
            OrderField::Created => "created",
            OrderField::Updated => "COALESCE(updated, created)",
            OrderField::Title => "LOWER(title)",
            OrderField::Severity => "severity",
            // The column itself, which its index holds in order (an expression of it, such as
            // the `COALESCE(topic, '')` this was, made every page sorted by topic sort the whole
            // inbox).
            OrderField::Topic => "topic",
            OrderField::Origin => "origin",
        };
        // The one key that may be NULL: a notification without a topic sorts before every
        // topic (publishing stores an empty topic as none), as SQLite orders NULLs and
        // PostgreSQL, which orders them last, is told to (as its index is).
        let nulls = match (self, backend, descending) {
            (OrderField::Topic, Backend::Postgres, false) => " NULLS FIRST",
            (OrderField::Topic, Backend::Postgres, true) => " NULLS LAST",
            _ => "",
        };
        format!("{key} {}{nulls}", direction(descending))
    }
}

/// `descending` in SQL.
fn direction(descending: bool) -> &'static str {
    if descending { "DESC" } else { "ASC" }
}

/// A page request.
#[derive(Clone, Debug, PartialEq)]
pub struct ListQuery {
    pub filter: Filter,
    /// Sort keys, most significant first; `true` means descending.
    pub order: Vec<(OrderField, bool)>,
    pub offset: i64,
    pub limit: i64,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery { filter: Filter::default(), order: vec![], offset: 0, limit: 20 }
    }
}

/// A bind value of a query built at run time.
#[derive(Clone, Debug)]
enum Bind {
    Text(String),
    Int(i64),
}

/// SQL assembled at run time with numbered placeholders, for one engine.
struct Sql {
    backend: Backend,
    binds: Vec<Bind>,
    /// Where the user's entries lie in SQLite's search index, for a query that searches it.
    keys: Option<search::UserKeys>,
    /// The placeholder of the time now, once bound ([`Sql::now`]).
    now: Option<String>,
}

impl Sql {
    /// An empty query whose `$1` is `user`, whose entries in SQLite's search index are at
    /// `keys` (looked up by `search::indexed_now` when the query searches).
    fn for_user(backend: Backend, user: &EntityRef, keys: Option<search::UserKeys>) -> Sql {
        Sql { backend, binds: vec![Bind::Text(user.as_str().to_string())], keys, now: None }
    }

    /// The placeholder of the time now, bound once: every part of one statement sees the same
    /// time (a snooze due in the count is due in the page), and a statement that names no
    /// other value binds only the user and the time (see [`status`]).
    fn now(&mut self) -> String {
        if let Some(now) = &self.now {
            return now.clone();
        }
        let now = self.bind(Bind::Int(now_ms()));
        self.now = Some(now.clone());
        now
    }

    fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        format!("${}", self.binds.len())
    }
}

const COLUMNS: &str = "n.id, n.user_ref, n.origin, n.created, n.updated, n.title, n.description, n.link, \
     n.severity, n.topic, n.scope, n.icon, n.metadata";

/// The two halves of a user's inbox, personal rows and broadcasts, with the filter applied;
/// `$1` is the user. With `walk`, the filter matches many rows: a minimum severity or a
/// search is checked on each row instead of being used to find the rows (see [`list`]).
/// With `newest`, a search checks the user's rows against its newest matches only, those
/// from that key of SQLite's index up (see `search::newest_page`).
fn halves(sql: &mut Sql, f: &Filter, walk: bool, newest: Option<i64>) -> (String, String) {
    let (personal, broadcast) = conditions(sql, f, walk, newest);
    (
        format!(
            "SELECT {COLUMNS}, n.read AS read, n.saved AS saved, n.archived AS archived,
                 n.snoozed_until AS snoozed_until
             FROM notifications n WHERE {personal}"
        ),
        broadcasts(&broadcast),
    )
}

/// The broadcasts `n` that meet `conditions`, with the state `s` the user (`$1`) gave them.
fn broadcasts(conditions: &str) -> String {
    format!(
        "SELECT {COLUMNS}, s.read AS read, s.saved AS saved, s.archived AS archived,
             s.snoozed_until AS snoozed_until
         FROM notifications n LEFT JOIN broadcast_status s ON s.notification_id = n.id AND s.user_ref = $1
         WHERE {conditions}"
    )
}

/// The conditions of [`halves`]: on the personal notifications `n`, and on the broadcasts `n`
/// with the user's state `s`.
fn conditions(sql: &mut Sql, f: &Filter, walk: bool, newest: Option<i64>) -> (String, String) {
    let mut conds = Vec::new();
    let search = f.search.as_deref().map(|text| search::condition(sql, text, walk, f.archived, newest));
    if let Some(t) = f.created_after {
        conds.push(format!("n.created >= {}", sql.bind(Bind::Int(t))));
    }
    if let Some(s) = f.minimum_severity {
        // `+ 0` keeps planners off the severity index, which no condition on it can use.
        let severity = if walk { "n.severity + 0" } else { "n.severity" };
        conds.push(format!("{severity} >= {}", severity_rank(s)));
    }
    if let Some(t) = &f.topic {
        conds.push(format!("n.topic = {}", sql.bind(Bind::Text(t.clone()))));
    }
    let now = sql.now();
    let state = |t: &str| state_conditions(f, t, &now);
    // `+` (SQLite only) keeps the planner from walking the user's inbox for rows the search
    // index finds directly.
    let owner = if search.as_ref().is_some_and(|s| s.from_matches) { "+n.user_ref = $1" } else { "n.user_ref = $1" };
    let mut personal = vec![owner.to_string()];
    let mut broadcast = vec!["n.user_ref IS NULL".to_string()];
    if let Some(search) = search {
        personal.push(search.personal);
        broadcast.push(search.broadcast);
    }
    personal.extend(conds.iter().cloned());
    personal.extend(state("n"));
    broadcast.extend(conds);
    broadcast.extend(state("s"));
    (personal.join(" AND "), broadcast.join(" AND "))
}

/// A minimum severity's rank, written into the SQL rather than bound: one of four, so each
/// is a statement of its own, and PostgreSQL's one plan for it (on the readers that plan
/// once) knows how many rows the rank leaves, as a plan for a bound value would.
fn severity_rank(s: Severity) -> i16 {
    s.rank()
}

/// Conditions of `f` on the state columns (read, saved, archived, snoozed_until) of the table
/// aliased `t`: a notification's own, or a user's `broadcast_status` row; `now` is the
/// placeholder of the current time.
fn state_conditions(f: &Filter, t: &str, now: &str) -> Vec<String> {
    let is = |v: bool| if v { "IS NOT NULL" } else { "IS NULL" };
    let mut c = Vec::new();
    if let Some(r) = f.read {
        c.push(format!("{t}.read {}", is(r)));
    }
    if let Some(s) = f.saved {
        c.push(format!("{t}.saved {}", is(s)));
    }
    match f.archived {
        Archived::Exclude => c.push(format!("{t}.archived IS NULL")),
        Archived::Only => c.push(format!("{t}.archived IS NOT NULL")),
        Archived::Any => {}
    }
    match f.snoozed {
        Snoozed::Hide => c.push(format!("({t}.snoozed_until IS NULL OR {t}.snoozed_until <= {now})")),
        Snoozed::Only => c.push(format!("{t}.snoozed_until > {now}")),
        Snoozed::Any => {}
    }
    c
}

fn order_by(backend: Backend, order: &[(OrderField, bool)]) -> String {
    let mut keys: Vec<String> = order.iter().map(|(f, d)| f.sql(backend, *d)).collect();
    // Every order ends in a unique key, so paging never repeats or skips rows that tie.
    let created_desc = order.iter().find(|(f, _)| *f == OrderField::Created).is_none_or(|(_, d)| *d);
    if !order.iter().any(|(f, _)| *f == OrderField::Created) {
        keys.push("created DESC".into());
    }
    keys.push(format!("id {}", direction(created_desc)));
    keys.join(", ")
}

/// A page's row on SQLite: [`Row`]'s fields as one JSON array, in their order, over the page
/// query's columns `u`. sqlx copies each column of each row it reads into an allocation of
/// its own (and an `Arc`), and frees them all again: for a page of twenty rows of seventeen
/// columns that copying was 30% of the page's instructions. One text a row is one copy.
const ROW_AS_JSON: &str = "json_array(u.id, u.user_ref, u.origin, u.created, u.updated, u.read, u.saved, \
     u.archived, u.snoozed_until, u.title, u.description, u.link, u.severity, u.topic, u.scope, u.icon, u.metadata)";

/// A notification as stored, with the user's state of it. Read from its columns, or on
/// SQLite from a JSON array of its fields in this order ([`ROW_AS_JSON`]).
#[derive(sqlx::FromRow, serde::Deserialize)]
struct Row {
    id: String,
    user_ref: Option<String>,
    origin: String,
    created: i64,
    updated: Option<i64>,
    read: Option<i64>,
    saved: Option<i64>,
    archived: Option<i64>,
    snoozed_until: Option<i64>,
    title: String,
    description: Option<String>,
    link: Option<String>,
    severity: i16,
    topic: Option<String>,
    scope: Option<String>,
    icon: Option<String>,
    metadata: Option<String>,
}

impl Row {
    fn into_notification(self) -> Notification {
        Notification {
            id: self.id,
            user: self.user_ref,
            created: from_ms(self.created),
            updated: self.updated.map(from_ms),
            read: self.read.map(from_ms),
            saved: self.saved.map(from_ms),
            archived: self.archived.map(from_ms),
            snoozed_until: self.snoozed_until.map(from_ms),
            origin: self.origin,
            payload: NotificationPayload {
                title: self.title,
                description: self.description,
                link: self.link,
                severity: Severity::from_rank(self.severity),
                topic: self.topic,
                scope: self.scope,
                icon: self.icon,
                metadata: self.metadata.and_then(|m| serde_json::from_str(&m).ok()),
            },
        }
    }
}

/// Pages of a filter matching more rows than this are found by walking the inbox in its
/// order; fewer are looked up through the filter's indexes and sorted.
const SORT_AT_MOST: i64 = 1000;

/// One page of a user's notifications, with how many match in all.
#[tracing::instrument(skip(db, q), fields(user = %user))]
pub async fn list(db: &Db, user: &EntityRef, q: &ListQuery) -> Result<(Vec<Notification>, i64)> {
    q.filter.check()?;
    let keys = search::indexed_now(db, user, &q.filter).await?;
    let total = count(db, user, keys, &q.filter).await?;
    // The count decides how a minimum severity or a search finds its rows, which planners
    // cannot (a range of severities or a text has no useful statistics): matched by many rows
    // (`high` in a typical inbox, a common word), the index would fetch all of them to sort
    // them, where walking the inbox newest first stops after a page; matched by few
    // (`critical`, a build number), walking would read the whole inbox.
    let walk = total > SORT_AT_MOST;
    if walk && let Some(page) = search::newest_page(db, user, keys, q).await? {
        return Ok((page, total));
    }
    let (text, binds) = page_sql(db.backend(), user, keys, q, walk, None)?;
    Ok((fetch_page(db, &q.filter, &text, &binds).await?, total))
}

/// One page of a user's notifications, without counting them.
async fn page(db: &Db, user: &EntityRef, q: &ListQuery) -> Result<Vec<Notification>> {
    let keys = search::indexed_now(db, user, &q.filter).await?;
    let (text, binds) = page_sql(db.backend(), user, keys, q, false, None)?;
    fetch_page(db, &q.filter, &text, &binds).await
}

/// Reads the page of [`page_sql`]'s `text`: on SQLite each row is one JSON array
/// ([`ROW_AS_JSON`]), elsewhere the row's columns.
async fn fetch_page(db: &Db, f: &Filter, text: &str, binds: &[Bind]) -> Result<Vec<Notification>> {
    let rows = match db.backend() {
        Backend::Sqlite => {
            let rows = with_pool!(readers_for(db, f), |c| bind_all!(sqlx::query_scalar::<_, String>(text), binds)
                .fetch_all(c)
                .await)?;
            rows.iter().map(|r| serde_json::from_str::<Row>(r)).collect::<std::result::Result<Vec<_>, _>>()?
        }
        Backend::Postgres => {
            with_pool!(readers_for(db, f), |c| bind_all!(sqlx::query_as::<_, Row>(text), binds).fetch_all(c).await)?
        }
    };
    Ok(rows.into_iter().map(Row::into_notification).collect())
}

/// How many of a user's notifications match `f`.
async fn count(db: &Db, user: &EntityRef, keys: Option<search::UserKeys>, f: &Filter) -> Result<i64> {
    let (text, binds) = count_sql(db.backend(), user, keys, f);
    Ok(with_pool!(readers_for(db, f), |c| bind_all!(sqlx::query_scalar::<_, i64>(&text), &binds).fetch_one(c).await)?)
}

/// The readers for the count and the page of `f` ([`Db::reader_planned_once`] when their
/// plans do not depend on the values bound). A search's text, a topic and the snoozed view
/// (snoozed past the time now) can each match a handful of a user's rows or nearly all of
/// them, and only a plan for the value can tell which: a generic plan walks a large inbox
/// for a rare phrase, for a rare topic sorted by severity, or for the few snoozed rows. A
/// date bounds the inbox's index in its order whatever its value, and a minimum severity is
/// written into the statement ([`severity_rank`])
/// (`plans::postgres_generic_plans_of_plain_filters_read_a_page`).
fn readers_for<'d>(db: &'d Db, f: &Filter) -> crate::db::Pool<'d> {
    let plain = f.search.is_none() && f.topic.is_none() && f.snoozed != Snoozed::Only;
    if plain { db.reader_planned_once() } else { db.reader() }
}

/// A page's query; `walk` and `newest` as for [`halves`].
fn page_sql(
    backend: Backend,
    user: &EntityRef,
    keys: Option<search::UserKeys>,
    q: &ListQuery,
    walk: bool,
    newest: Option<i64>,
) -> Result<(String, Vec<Bind>)> {
    if q.limit < 0 || q.offset < 0 {
        return Err(Error::Invalid("offset and limit must not be negative".into()));
    }
    let limit = q.limit.min(limits::PAGE);
    let mut sql = Sql::for_user(backend, user, keys);
    let (personal, broadcast) = halves(&mut sql, &q.filter, walk, newest);
    let order = order_by(backend, &q.order);
    // Saturating: an offset past any inbox (up to i64::MAX) asks for an empty page.
    let window = sql.bind(Bind::Int(q.offset.saturating_add(limit)));
    let lim = sql.bind(Bind::Int(limit));
    let off = sql.bind(Bind::Int(q.offset));
    // Each half is sorted and cut to offset+limit on its own index, then the two short lists
    // are merged: far cheaper than sorting a large inbox as a whole.
    let columns = match backend {
        Backend::Sqlite => ROW_AS_JSON,
        Backend::Postgres => "*",
    };
    let text = format!(
        "SELECT {columns} FROM (
             SELECT * FROM ({personal} ORDER BY {order} LIMIT {window}) AS p
             UNION ALL
             SELECT * FROM ({broadcast} ORDER BY {order} LIMIT {window}) AS b
         ) AS u ORDER BY {order} LIMIT {lim} OFFSET {off}"
    );
    Ok((text, sql.binds))
}

/// A query for how many of a user's notifications match `f`: from the tallies when they can
/// answer (see [`counts`]), else by counting rows.
fn count_sql(backend: Backend, user: &EntityRef, keys: Option<search::UserKeys>, f: &Filter) -> (String, Vec<Bind>) {
    let mut sql = Sql::for_user(backend, user, keys);
    if counts::covers(f) {
        return (format!("SELECT {}", counts::total(&mut sql, f)), sql.binds);
    }
    if let Some(counted) = search::count(&mut sql, f) {
        return (format!("SELECT {counted}"), sql.binds);
    }
    let (personal, broadcast) = conditions(&mut sql, f, false, None);
    // On SQLite a search that `search::count` cannot count from the index alone looks each
    // of the user's matches up among the narrow facets of the user's notifications
    // (migration 0009) rather than in their wide rows; both hold every column a filter reads.
    let rows = if backend == Backend::Sqlite && f.search.as_deref().is_some_and(search::indexed) {
        "notification_facets"
    } else {
        "notifications"
    };
    let broadcast = broadcasts(&broadcast);
    (
        format!("SELECT (SELECT COUNT(*) FROM {rows} n WHERE {personal}) + (SELECT COUNT(*) FROM ({broadcast}) AS b)"),
        sql.binds,
    )
}

/// One notification, if `user` may see it.
pub async fn get(db: &Db, user: &EntityRef, id: &str) -> Result<Notification> {
    by_ids(db, user, &[id.to_string()])
        .await?
        .pop()
        .ok_or_else(|| Error::NotFound(format!("no notification with id '{id}'")))
}

/// Those of `ids` that `user` can see, in whatever state, newest first.
async fn by_ids(db: &Db, user: &EntityRef, ids: &[String]) -> Result<Vec<Notification>> {
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let (text, binds) = by_ids_sql(db.backend(), user, ids);
    let rows = with_pool!(db.reader(), |c| bind_all!(sqlx::query_as::<_, Row>(&text), &binds).fetch_all(c).await)?;
    let mut found: Vec<Notification> = rows.into_iter().map(Row::into_notification).collect();
    found.sort_by(|a, b| (b.created, &b.id).cmp(&(a.created, &a.id)));
    Ok(found)
}

fn by_ids_sql(backend: Backend, user: &EntityRef, ids: &[String]) -> (String, Vec<Bind>) {
    let mut sql = Sql::for_user(backend, user, None);
    let list: Vec<String> = ids.iter().map(|id| sql.bind(Bind::Text(id.clone()))).collect();
    let state = |column: &str| format!("CASE WHEN n.user_ref IS NULL THEN s.{column} ELSE n.{column} END AS {column}");
    // Found by id and then checked for ownership: the ids are few and the user's rows may be
    // many. The owner is compared through COALESCE, which no index answers: written as
    // `user_ref = $1 OR user_ref IS NULL`, SQLite (without statistics) finds a page's worth of
    // ids by reading every row of the user through the OR's two indexes, which made marking
    // 20 read at 100,000 notifications fourteen times slower (tested in `plans`).
    let text = format!(
        "SELECT {COLUMNS}, {}, {}, {}, {}
         FROM notifications n LEFT JOIN broadcast_status s ON s.notification_id = n.id AND s.user_ref = $1
         WHERE n.id IN ({}) AND COALESCE(n.user_ref, $1) = $1",
        state("read"),
        state("saved"),
        state("archived"),
        state("snoozed_until"),
        list.join(", ")
    );
    (text, sql.binds)
}

/// How many of a user's notifications (not archived) are unread and read.
pub async fn status(db: &Db, user: &EntityRef) -> Result<NotificationStatus> {
    let text = status_text(db.backend());
    let binds = [Bind::Text(user.as_str().to_string()), Bind::Int(now_ms())];
    // From the tallies, whatever the user: one plan serves every execution.
    let (unread, read) =
        with_pool!(db.reader_planned_once(), |c| bind_all!(sqlx::query_as::<_, (i64, i64)>(text), &binds)
            .fetch_one(c)
            .await)?;
    Ok(NotificationStatus { unread, read })
}

/// [`status_sql`]'s text, built once per engine: it names no value, only the user (`$1`) and
/// the time (`$2`), and building it took a fifth of a status request's instructions.
fn status_text(backend: Backend) -> &'static str {
    static TEXTS: [OnceLock<String>; 2] = [OnceLock::new(), OnceLock::new()];
    let built = &TEXTS[match backend {
        Backend::Sqlite => 0,
        Backend::Postgres => 1,
    }];
    built.get_or_init(|| {
        let anyone = EntityRef::from_normalised("user:default/anyone".to_string());
        status_sql(backend, &anyone).0
    })
}

/// The query for [`status`]: both counts from the tallies, in one statement (one trip to a
/// reader instead of two, on a request every open tab makes).
fn status_sql(backend: Backend, user: &EntityRef) -> (String, Vec<Bind>) {
    let mut sql = Sql::for_user(backend, user, None);
    let mut counted = |read| counts::total(&mut sql, &Filter { read: Some(read), ..Filter::default() });
    let (unread, read) = (counted(false), counted(true));
    (format!("SELECT {unread}, {read}"), sql.binds)
}

/// The distinct topics of a user's notifications that match `filter`, sorted.
pub async fn topics(db: &Db, user: &EntityRef, filter: &Filter) -> Result<Vec<String>> {
    filter.check()?;
    let keys = search::indexed_now(db, user, filter).await?;
    let mut sql = Sql::for_user(db.backend(), user, keys);
    let (p, b) = halves(&mut sql, filter, false, None);
    let personal =
        if counts::covers(filter) { counts::topics(&mut sql, filter) } else { format!("SELECT topic FROM ({p}) AS p") };
    let text = format!(
        "SELECT DISTINCT topic FROM ({personal} UNION ALL SELECT topic FROM ({b}) AS b) AS u
         WHERE topic IS NOT NULL AND topic <> '' ORDER BY topic"
    );
    Ok(with_pool!(db.reader(), |c| bind_all!(sqlx::query_scalar::<_, String>(&text), &sql.binds).fetch_all(c).await)?)
}

/// A change of state a user asks for; `None` leaves that state as it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateChange {
    pub read: Option<bool>,
    pub saved: Option<bool>,
    pub archived: Option<bool>,
    /// `Some(Some(t))` snoozes until `t` (ms since the epoch), `Some(None)` ends a snooze.
    pub snoozed_until: Option<Option<i64>>,
}

/// Applies a state change to those of `ids` that `user` can see, logs one event for the
/// user's tabs, and returns the notifications as they are now. Ids the user cannot see are
/// ignored, exactly as ids that do not exist.
pub async fn update(db: &Db, user: &EntityRef, ids: &[String], change: StateChange) -> Result<Vec<Notification>> {
    if ids.len() > limits::IDS {
        return Err(Error::Invalid(format!("at most {} ids per update", limits::IDS)));
    }
    let visible = by_ids(db, user, ids).await?;
    if visible.is_empty() {
        return Ok(visible);
    }
    let now = now_ms();
    let mut tx = db.begin_inbox().await?;
    for (column, value) in [("read", change.read), ("saved", change.saved), ("archived", change.archived)] {
        let Some(on) = value else { continue };
        set_state(&mut tx, user, &visible, column, on.then_some(now), true).await?;
    }
    if let Some(until) = change.snoozed_until {
        if until.is_some_and(|t| t <= now) {
            return Err(Error::Invalid("a snooze must end in the future".into()));
        }
        set_state(&mut tx, user, &visible, "snoozed_until", until, false).await?;
    }
    let ids: Vec<String> = visible.iter().map(|n| n.id.clone()).collect();
    let event = serde_json::json!({
        "ids": ids, "read": change.read, "saved": change.saved, "archived": change.archived,
        "snoozed": change.snoozed_until.map(|u| u.is_some()),
    });
    log_event(&mut tx, Some(user), "update", &event.to_string(), now).await?;
    tx.commit().await?;
    by_ids(db, user, &ids).await
}

/// Sets one state column of `notifications` (which `user` can see) for `user`. With
/// `keep_first`, a state already set keeps its first time.
async fn set_state(
    tx: &mut Tx,
    user: &EntityRef,
    notifications: &[Notification],
    column: &str,
    at: Option<i64>,
    keep_first: bool,
) -> Result<()> {
    // `column` comes from a fixed list in `update`, never from input.
    let set = if at.is_some() && keep_first { format!("COALESCE({column}, $1)") } else { "$1".to_string() };
    let (personal, broadcasts): (Vec<&Notification>, Vec<&Notification>) =
        notifications.iter().partition(|n| n.user.is_some());
    if !personal.is_empty() {
        // One statement for all of the user's own. The owner is compared through COALESCE so
        // that planners find the rows by id, not by walking the user's whole inbox.
        let ids: Vec<String> = (0..personal.len()).map(|i| format!("${}", i + 3)).collect();
        let sql = format!(
            "UPDATE notifications SET {column} = {set} WHERE id IN ({}) AND COALESCE(user_ref, '') = $2",
            ids.join(", ")
        );
        with_tx!(tx, |c| {
            let mut q = sqlx::query(&sql).bind(at).bind(user.as_str());
            for n in &personal {
                q = q.bind(&n.id);
            }
            q.execute(c).await.map(|r| r.rows_affected())
        })?;
    }
    let upsert = format!(
        "INSERT INTO broadcast_status (notification_id, user_ref, {column}) VALUES ($2, $3, $1)
         ON CONFLICT (notification_id, user_ref) DO UPDATE SET {column} = {}",
        set.replace(column, &format!("broadcast_status.{column}"))
    );
    for n in broadcasts {
        with_tx!(tx, |c| sqlx::query(&upsert)
            .bind(at)
            .bind(&n.id)
            .bind(user.as_str())
            .execute(c)
            .await
            .map(|r| r.rows_affected()))?;
    }
    Ok(())
}

/// Marks every notification matching `filter` read for `user` (the inbox's "Mark all read").
pub async fn mark_all_read(db: &Db, user: &EntityRef, filter: &Filter) -> Result<usize> {
    filter.check()?;
    let mut marked = 0;
    loop {
        let q = ListQuery {
            filter: Filter { read: Some(false), ..filter.clone() },
            limit: limits::IDS as i64,
            ..ListQuery::default()
        };
        let unread = page(db, user, &q).await?;
        if unread.is_empty() {
            return Ok(marked);
        }
        let ids: Vec<String> = unread.iter().map(|n| n.id.clone()).collect();
        marked += ids.len();
        update(db, user, &ids, StateChange { read: Some(true), ..StateChange::default() }).await?;
    }
}

/// Ends every snooze that is due: the notifications return to the inbox unread, and each
/// user's tabs hear of it. Safe to run on several instances at once: each row is claimed by
/// exactly one `UPDATE … RETURNING`. Returns how many returned.
pub async fn wake_snoozed(db: &Db) -> Result<usize> {
    let now = now_ms();
    let mut tx = db.begin_inbox().await?;
    let woken = with_tx!(&mut tx, |c| {
        let mut rows = sqlx::query_as::<_, (String, String)>(
            "UPDATE notifications SET snoozed_until = NULL, read = NULL
             WHERE snoozed_until IS NOT NULL AND snoozed_until <= $1 AND user_ref IS NOT NULL
             RETURNING id, user_ref",
        )
        .bind(now)
        .fetch_all(&mut *c)
        .await?;
        rows.extend(
            sqlx::query_as::<_, (String, String)>(
                "UPDATE broadcast_status SET snoozed_until = NULL, read = NULL
                 WHERE snoozed_until IS NOT NULL AND snoozed_until <= $1
                 RETURNING notification_id, user_ref",
            )
            .bind(now)
            .fetch_all(&mut *c)
            .await?,
        );
        Ok::<_, sqlx::Error>(rows)
    })?;
    let mut by_user: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (id, user) in woken.iter().cloned() {
        by_user.entry(user).or_default().push(id);
    }
    for (user, ids) in by_user {
        let Ok(user) = user.parse::<EntityRef>() else { continue };
        let event = serde_json::json!({ "ids": ids, "read": false, "snoozed": false });
        log_event(&mut tx, Some(&user), "update", &event.to_string(), now).await?;
    }
    tx.commit().await?;
    Ok(woken.len())
}

// Last: the tests use this module's macros, which are only visible below their definitions.
#[cfg(test)]
mod plans;
