//! Liveness and readiness probes.
//!
//! `/healthz` answers while the process serves HTTP at all; `/readyz` also
//! pings the durable store, so a load balancer stops sending payments to a
//! process whose store is down.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;
use crate::state::AppState;
use crate::views::Problem;

/// The body of a healthy probe.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthView {
    /// `ok` or `ready`.
    pub status: &'static str,
}

/// Answers while the process is up.
#[utoipa::path(
    get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = HealthView))
)]
pub async fn healthz() -> Json<HealthView> {
    Json(HealthView { status: "ok" })
}

/// Answers when the durable store answers.
#[utoipa::path(
    get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready to take payments", body = HealthView),
        (status = 503, description = "The store is down", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<HealthView>, ApiError> {
    // Whatever the store's failure, the process is not ready: always 503.
    state
        .engine
        .store()
        .ping()
        .await
        .map_err(ApiError::StoreUnavailable)?;
    Ok(Json(HealthView { status: "ready" }))
}
