//! `GET /metrics`: the engine's counters and the request counts, in the
//! OpenMetrics text format that Prometheus scrapes.
//!
//! Requests are counted by the middleware; this module only serves them.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

/// The content type of the OpenMetrics text exposition.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric, as text.
#[utoipa::path(
    get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "OpenMetrics text", body = String, content_type = "application/openmetrics-text"))
)]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let text = state.engine.metrics().render();
    ([(header::CONTENT_TYPE, OPENMETRICS)], text)
}
