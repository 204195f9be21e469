//! The notifications REST API, mounted at `/api/notifications` and shaped like Backstage's:
//! same routes, parameters and JSON, with Herald's additions as optional extras.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use herald_core::idempotency::{self, Claim};
use herald_core::notifications::{self, Archived, Filter, ListQuery, OrderField, PublishRequest, StateChange};
use herald_core::{settings, time};
use herald_model::{ListResponse, NotificationSettings, TopicsResponse, UpdateRequest};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::extract::{ApiJson, QueryPairs, ServiceCaller, UserCaller};
use crate::startup::AppState;

/// Default page size when a client sends no `limit`.
const DEFAULT_LIMIT: i64 = 100;

/// The routes, including the legacy aliases Backstage still serves at the mount root.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(list).post(publish))
        .route("/", get(list).post(publish))
        .route("/notifications/update", post(update))
        .route("/update", post(update))
        .route("/notifications/{id}", get(get_one))
        .route("/{id}", get(get_one))
        .route("/status", get(status))
        .route("/topics", get(topics))
        .route("/settings", get(get_settings).post(save_settings))
        .route("/stream", get(super::stream::stream))
}

/// `POST /notifications`: publish (service tokens only), optionally idempotent.
async fn publish(
    State(state): State<AppState>,
    caller: ServiceCaller,
    headers: HeaderMap,
    body: ApiJson<PublishRequest>,
) -> Result<Response, ApiError> {
    let key = headers
        .get("idempotency-key")
        .map(|v| v.to_str().map(str::to_string).map_err(|_| ApiError::bad_request("Idempotency-Key must be printable ASCII")))
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

async fn publish_and_count(state: &AppState, origin: &str, req: &PublishRequest) -> herald_core::Result<Vec<herald_model::Notification>> {
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
            time::parse_instant(v)
                .map(|t| t.timestamp_millis())
                .ok_or_else(|| ApiError::bad_request(format!("createdAfter '{v}' is not a date: use ISO 8601, e.g. 2024-05-01T00:00:00Z")))
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
    Ok(Filter {
        search: q.get("search").map(str::trim).filter(|s| !s.is_empty()).map(str::to_string),
        read: q.bool("read")?,
        saved: q.bool("saved")?,
        archived,
        created_after,
        minimum_severity,
        topic: q.get("topic").filter(|s| !s.is_empty()).map(str::to_string),
        ids: None,
    })
}

/// `GET /notifications`: a page of the caller's notifications.
async fn list(State(state): State<AppState>, UserCaller(user): UserCaller, q: QueryPairs) -> Result<Json<ListResponse>, ApiError> {
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

/// `GET /notifications/{id}`: one notification, 404 unless the caller may see it.
async fn get_one(State(state): State<AppState>, UserCaller(user): UserCaller, Path(id): Path<String>) -> Result<Response, ApiError> {
    Ok(Json(notifications::get(&state.hub.db, &user, &id).await?).into_response())
}

/// `POST /notifications/update`: mark read/unread, saved/unsaved, done/undone.
async fn update(State(state): State<AppState>, UserCaller(user): UserCaller, body: ApiJson<UpdateRequest>) -> Result<Response, ApiError> {
    let req = body.value;
    let change = StateChange { read: req.read, saved: req.saved, archived: req.archived };
    Ok(Json(notifications::update(&state.hub.db, &user, &req.ids, change).await?).into_response())
}

/// `GET /status`: unread and read counts.
async fn status(State(state): State<AppState>, UserCaller(user): UserCaller) -> Result<Response, ApiError> {
    Ok(Json(notifications::status(&state.hub.db, &user).await?).into_response())
}

/// `GET /topics`: the topics of the caller's notifications matching the filters.
async fn topics(State(state): State<AppState>, UserCaller(user): UserCaller, q: QueryPairs) -> Result<Json<TopicsResponse>, ApiError> {
    let topics = notifications::topics(&state.hub.db, &user, &filter(&q)?).await?;
    Ok(Json(TopicsResponse { topics }))
}

/// `GET /settings`.
async fn get_settings(State(state): State<AppState>, UserCaller(user): UserCaller) -> Result<Json<NotificationSettings>, ApiError> {
    Ok(Json(settings::get_settings(&state.hub.db, state.hub.policy(), &user).await?))
}

/// `POST /settings`: stores what is sent, never wipes what is not, answers the result.
async fn save_settings(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    body: ApiJson<NotificationSettings>,
) -> Result<Json<NotificationSettings>, ApiError> {
    settings::save_settings(&state.hub.db, state.hub.policy(), &user, &body.value).await?;
    Ok(Json(settings::get_settings(&state.hub.db, state.hub.policy(), &user).await?))
}
