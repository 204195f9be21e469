//! The notifications REST API, mounted at `/api/notifications` and shaped like Backstage's:
//! same routes, parameters and JSON, with Herald's additions as optional extras.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_core::idempotency::{self, Claim};
use herald_core::notifications::{self, Archived, Filter, ListQuery, OrderField, PublishRequest, Snoozed, StateChange};
use herald_core::{settings, time};
use herald_model::Severity;
use herald_model::{
    ListResponse, Notification, NotificationSettings, NotificationStatus, TopicsResponse, UpdateRequest,
};
use sha2::{Digest, Sha256};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, QueryPairs, ServiceCaller, UserCaller};
use crate::startup::AppState;

/// Default page size when a client sends no `limit`.
const DEFAULT_LIMIT: i64 = 100;

/// The documented routes; the OpenAPI description is generated from these registrations.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, publish))
        .routes(routes!(update))
        .routes(routes!(get_one))
        .routes(routes!(status))
        .routes(routes!(topics))
        .routes(routes!(get_settings, save_settings))
        .routes(routes!(super::stream::stream))
}

/// The legacy aliases Backstage still serves at the mount root, as `(alias, documented route)`;
/// the OpenAPI description lists them as deprecated copies.
pub const LEGACY_ALIASES: &[(&str, &str)] =
    &[("/", "/notifications"), ("/update", "/notifications/update"), ("/{id}", "/notifications/{id}")];

/// The legacy alias routes.
pub fn legacy_router() -> Router<AppState> {
    Router::new().route("/", get(list).post(publish)).route("/update", post(update)).route("/{id}", get(get_one))
}

/// Publish a notification (service tokens only).
///
/// Returns what was stored: one notification per recipient whose Web channel allows it, or the
/// one broadcast. With an `Idempotency-Key`, a repeat within 24 hours replays the first response.
#[utoipa::path(post, path = "/notifications", tag = "publish",
    params(("Idempotency-Key" = Option<String>, Header, description = "Replays the first response for the same key and body within 24 h; another body with the key gets 422")),
    request_body(content = PublishRequest, example = json!({
        "recipients": {"type": "entity", "entityRef": ["group:default/platform"], "excludeEntityRef": "user:default/bob"},
        "payload": {"title": "Deploy of api v1.4 finished", "description": "Rolled out in **4 min**.", "link": "https://ci.example.com/runs/42",
                    "severity": "normal", "topic": "deploys", "scope": "deploy-api", "metadata": {"run": 42}}
    })),
    responses(
        (status = 200, description = "The stored notifications", body = Vec<Notification>),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "Missing or bad token", body = ErrorBody),
        (status = 403, description = "Not a service token", body = ErrorBody),
        (status = 413, description = "Body over 256 KiB", body = ErrorBody),
        (status = 422, description = "Idempotency key reused with another body", body = ErrorBody),
    ),
    security(("bearer" = [])))]
async fn publish(
    State(state): State<AppState>,
    caller: ServiceCaller,
    headers: HeaderMap,
    body: ApiJson<PublishRequest>,
) -> Result<Response, ApiError> {
    let key = headers
        .get("idempotency-key")
        .map(|v| {
            v.to_str().map(str::to_string).map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII"))
        })
        .transpose()?;
    let Some(key) = key else {
        let stored = publish_and_count(&state, &caller.origin, &body.value).await?;
        return Ok(Json(stored).into_response());
    };
    let hash = hex::encode(Sha256::digest(&body.raw));
    match idempotency::claim(&state.hub.db, &caller.token_id, &key, &hash).await? {
        Claim::Replay { status, body } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            Ok((status, [("content-type", "application/json"), ("idempotent-replayed", "true")], body).into_response())
        }
        Claim::Proceed => {
            match publish_and_count(&state, &caller.origin, &body.value).await {
                Ok(stored) => {
                    let json = serde_json::to_string(&stored).map_err(herald_core::Error::from)?;
                    idempotency::finish(&state.hub.db, &caller.token_id, &key, 200, &json).await?;
                    Ok(([("content-type", "application/json")], json).into_response())
                }
                Err(e) => {
                    // The key is released so that a retry (after a fix, or once the database
                    // is back) can succeed; nothing was stored.
                    let _ = idempotency::release(&state.hub.db, &caller.token_id, &key).await;
                    Err(e.into())
                }
            }
        }
    }
}

async fn publish_and_count(
    state: &AppState,
    origin: &str,
    req: &PublishRequest,
) -> herald_core::Result<Vec<herald_model::Notification>> {
    let stored = notifications::publish(&state.hub.db, &state.hub.publish, origin, req).await?;
    let broadcast = matches!(req.recipients, herald_model::Recipients::Broadcast);
    super::metrics::published(origin, req.payload.severity.as_str(), broadcast, &stored);
    Ok(stored)
}

/// The filters shared by the list and topics routes.
fn filter(q: &QueryPairs) -> Result<Filter, ApiError> {
    let created_after = q
        .get("createdAfter")
        .map(|v| {
            time::parse_instant(v).map(|t| t.timestamp_millis()).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "createdAfter '{v}' is not a date: use ISO 8601, e.g. 2024-05-01T00:00:00Z"
                ))
            })
        })
        .transpose()?;
    let minimum_severity = q
        .get("minimumSeverity")
        .map(|v| v.parse().map_err(|e: String| ApiError::bad_request(format!("minimumSeverity: {e}"))))
        .transpose()?;
    let archived = match q.bool("archived")? {
        None | Some(false) => Archived::Exclude,
        Some(true) => Archived::Only,
    };
    let snoozed = match q.bool("snoozed")? {
        None | Some(false) => Snoozed::Hide,
        Some(true) => Snoozed::Only,
    };
    Ok(Filter {
        search: q.get("search").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
        read: q.bool("read")?,
        saved: q.bool("saved")?,
        archived,
        snoozed,
        created_after,
        minimum_severity,
        topic: q.get("topic").filter(|s| !s.is_empty()).map(str::to_string),
    })
}

/// A page of the caller's notifications and how many match.
#[utoipa::path(get, path = "/notifications", tag = "inbox",
    params(
        ("offset" = Option<i64>, Query, description = "Rows to skip"),
        ("limit" = Option<i64>, Query, description = "Page size (default 100, at most 1000)"),
        ("orderField" = Option<Vec<String>>, Query, description = "Repeatable `field,asc|desc`; fields: created, updated, title, severity, topic, origin", example = "created,desc"),
        ("search" = Option<String>, Query, description = "Case-insensitive text in title or description"),
        ("read" = Option<bool>, Query, description = "Only read (true) or unread (false)"),
        ("saved" = Option<bool>, Query, description = "Only saved (true) or not saved (false)"),
        ("archived" = Option<bool>, Query, description = "Herald: only done (true); done ones are hidden otherwise"),
        ("snoozed" = Option<bool>, Query, description = "Herald: only snoozed (true); snoozed ones are hidden until their time otherwise"),
        ("createdAfter" = Option<String>, Query, description = "ISO 8601 date or date-time", example = "2024-05-01T00:00:00Z"),
        ("minimumSeverity" = Option<Severity>, Query, description = "This severity or a more urgent one"),
        ("topic" = Option<String>, Query, description = "Only this topic"),
    ),
    responses((status = 200, body = ListResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    q: QueryPairs,
) -> Result<Json<ListResponse>, ApiError> {
    let mut order = Vec::new();
    for field in q.all("orderField") {
        order.push(OrderField::parse_param(field)?);
    }
    let query = ListQuery {
        filter: filter(&q)?,
        order,
        offset: q.int("offset")?.unwrap_or(0),
        limit: q.int("limit")?.unwrap_or(DEFAULT_LIMIT),
    };
    let (notifications, total_count) = notifications::list(&state.hub.db, &user, &query).await?;
    Ok(Json(ListResponse { total_count, notifications }))
}

/// One notification; 404 unless it is the caller's or a broadcast.
#[utoipa::path(get, path = "/notifications/{id}", tag = "inbox",
    params(("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = Notification), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn get_one(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(Json(notifications::get(&state.hub.db, &user, &id).await?).into_response())
}

/// Mark notifications read or unread, saved or not, done (archived) or not, snoozed or not.
///
/// Ids the caller cannot see are ignored. Returns the notifications as they are now.
#[utoipa::path(post, path = "/notifications/update", tag = "inbox",
    request_body(content = UpdateRequest, example = json!({"ids": ["0190f0c2-7c1e-7f3a-9a51-3f0b8c2d1e4f"], "read": true})),
    responses((status = 200, body = Vec<Notification>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn update(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    body: ApiJson<UpdateRequest>,
) -> Result<Response, ApiError> {
    let req = body.value;
    let change = StateChange {
        read: req.read,
        saved: req.saved,
        archived: req.archived,
        snoozed_until: req.snoozed_until.map(|until| until.map(|t| t.timestamp_millis())),
    };
    Ok(Json(notifications::update(&state.hub.db, &user, &req.ids, change).await?).into_response())
}

/// How many of the caller's notifications are unread and read (done ones not counted).
#[utoipa::path(get, path = "/status", tag = "inbox",
    responses((status = 200, body = NotificationStatus, example = json!({"unread": 3, "read": 12})), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn status(State(state): State<AppState>, UserCaller(user): UserCaller) -> Result<Response, ApiError> {
    Ok(Json(notifications::status(&state.hub.db, &user).await?).into_response())
}

/// The topics of the caller's notifications that match the filters (same as the list's).
#[utoipa::path(get, path = "/topics", tag = "inbox",
    params(
        ("search" = Option<String>, Query, description = "Case-insensitive text in title or description"),
        ("read" = Option<bool>, Query), ("saved" = Option<bool>, Query), ("archived" = Option<bool>, Query), ("snoozed" = Option<bool>, Query),
        ("createdAfter" = Option<String>, Query), ("minimumSeverity" = Option<Severity>, Query),
    ),
    responses((status = 200, body = TopicsResponse, example = json!({"topics": ["builds", "deploys"]})), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn topics(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    q: QueryPairs,
) -> Result<Json<TopicsResponse>, ApiError> {
    let topics = notifications::topics(&state.hub.db, &user, &filter(&q)?).await?;
    Ok(Json(TopicsResponse { topics }))
}

/// The caller's settings: every channel, with every origin and topic they have received.
#[utoipa::path(get, path = "/settings", tag = "settings",
    responses((status = 200, body = NotificationSettings), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn get_settings(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
) -> Result<Json<NotificationSettings>, ApiError> {
    Ok(Json(settings::get_settings(&state.hub.db, state.hub.policy(), &user).await?))
}

/// Store settings. Entries left out stay as they are; the answer is the whole result.
#[utoipa::path(post, path = "/settings", tag = "settings",
    request_body(content = NotificationSettings, example = json!({"channels": [{"id": "Web", "origins": [{"id": "external:ci", "enabled": true, "topics": [{"id": "builds", "enabled": false}]}]}]})),
    responses((status = 200, body = NotificationSettings), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn save_settings(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    body: ApiJson<NotificationSettings>,
) -> Result<Json<NotificationSettings>, ApiError> {
    settings::save_settings(&state.hub.db, state.hub.policy(), &user, &body.value).await?;
    Ok(Json(settings::get_settings(&state.hub.db, state.hub.policy(), &user).await?))
}
