//! The outbox for administrators at `/api/deliveries`: list deliveries by status and
//! channel, and re-queue dead ones.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_core::outbox::{self, ListFilter};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorBody};
use super::extract::{ApiJson, QueryPairs, UserCaller};
use crate::startup::AppState;

/// The documented routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retry))
}

/// One delivery: a notification forwarded to one recipient on one channel.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub id: String,
    /// Email, Slack or Webhook.
    pub channel: String,
    /// new, update or digest.
    pub kind: String,
    pub notification_id: String,
    pub user: Option<String>,
    /// Address, Slack user or channel, or webhook.
    pub target: String,
    /// pending, digest, merged, delivered or dead.
    pub status: String,
    pub attempts: i32,
    pub next_attempt_at: chrono::DateTime<chrono::Utc>,
    pub last_error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<outbox::Delivery> for DeliveryView {
    fn from(d: outbox::Delivery) -> Self {
        let at = herald_core::time::from_ms;
        DeliveryView {
            id: d.id,
            channel: d.channel,
            kind: d.kind,
            notification_id: d.notification_id,
            user: d.user_ref,
            target: d.target,
            status: d.status,
            attempts: d.attempts,
            next_attempt_at: at(d.next_attempt_at),
            last_error: d.last_error,
            created_at: at(d.created_at),
            delivered_at: d.delivered_at.map(at),
        }
    }
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryList {
    pub total_count: i64,
    pub deliveries: Vec<DeliveryView>,
}

/// Which dead deliveries to re-queue.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// These deliveries; with neither field, every dead one.
    #[serde(default)]
    pub ids: Vec<String>,
    /// Every dead one of this channel.
    pub channel: Option<String>,
}

/// How many were re-queued.
#[derive(Serialize, ToSchema)]
pub struct RetryResponse {
    pub retried: u64,
}

async fn require_admin(state: &AppState, user: &herald_model::EntityRef) -> Result<(), ApiError> {
    if state.hub.is_admin(user).await? {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "only administrators can see and retry deliveries"))
    }
}

/// List deliveries, newest first (administrators).
#[utoipa::path(get, path = "/api/deliveries", tag = "operations",
    params(
        ("status" = Option<String>, Query, description = "pending, digest, merged, delivered or dead"),
        ("channel" = Option<String>, Query, description = "Email, Slack or Webhook"),
        ("offset" = Option<i64>, Query), ("limit" = Option<i64>, Query, description = "Default 100, at most 1000"),
    ),
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn list(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    query: QueryPairs,
) -> Result<Response, ApiError> {
    require_admin(&state, &user).await?;
    let filter = ListFilter {
        status: query.get("status").map(str::to_string),
        channel: query.get("channel").map(str::to_string),
        limit: query.int("limit")?.unwrap_or(100),
        offset: query.int("offset")?.unwrap_or(0),
    };
    let (rows, total) = outbox::list(&state.hub.db, &filter).await?;
    Ok(Json(DeliveryList { total_count: total, deliveries: rows.into_iter().map(Into::into).collect() })
        .into_response())
}

/// Re-queue dead deliveries with fresh attempts (administrators).
#[utoipa::path(post, path = "/api/deliveries/retry", tag = "operations",
    request_body(content = RetryRequest, example = json!({"channel": "Email"})),
    responses((status = 200, body = RetryResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []), ("session" = [])))]
async fn retry(
    State(state): State<AppState>,
    UserCaller(user): UserCaller,
    body: ApiJson<RetryRequest>,
) -> Result<Response, ApiError> {
    require_admin(&state, &user).await?;
    let req = body.value;
    if req.ids.len() > 1000 {
        return Err(ApiError::bad_request("at most 1000 ids per request"));
    }
    let retried = outbox::retry_dead(&state.hub.db, &req.ids, req.channel.as_deref()).await?;
    Ok(Json(RetryResponse { retried }).into_response())
}
