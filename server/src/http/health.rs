//! Liveness and readiness probes.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::startup::AppState;

/// Liveness: the process is alive and serving.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "Alive", example = json!({"status": "ok"}))))]
pub async fn healthz() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

/// Readiness: the database answers and accepts a write; 503 with the reason otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready", example = json!({"status": "ready"})),
    (status = 503, description = "Not ready", example = json!({"status": "unavailable", "reason": "the database is out of disk space; nothing was stored; retry once space is freed"})),
))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let db = &state.hub.db;
    let check = tokio::time::timeout(std::time::Duration::from_secs(2), async {
        db.ping().await?;
        db.probe_write(herald_core::time::now_ms()).await
    })
    .await;
    let unavailable = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "5")],
            Json(json!({ "status": "unavailable", "reason": reason })),
        )
            .into_response()
    };
    match check {
        Ok(Ok(())) => Json(json!({ "status": "ready" })).into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check failed");
            unavailable(e.unavailable().map_or("the database does not answer", |why| why.message()))
        }
        Err(_) => unavailable("the database did not answer within 2 seconds"),
    }
}
