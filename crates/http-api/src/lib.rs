//! The HTTP API of oncepay.
//!
//! [`router`] builds the axum application from an [`AppState`]. A request
//! passes the [`middleware`] (request id, span, body limit, count, one log
//! line), then a handler per resource: [`keys`], [`payments`],
//! [`status_updates`], [`health`], [`metrics`] and [`openapi`]. Handlers turn
//! HTTP into domain values through extractors ([`auth`],
//! [`idempotency_key`], [`body`]), ask the engine, and show its answer
//! through [`views`]; every refusal is an [`ApiError`], mapped to
//! problem+json in [`error`] alone.

pub mod auth;
pub mod body;
pub mod cursor;
pub mod error;
pub mod health;
pub mod idempotency_key;
pub mod keys;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod payments;
pub mod state;
pub mod status_updates;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

pub use auth::Auth;
pub use error::ApiError;
pub use state::AppState;

/// Every route's pattern, as routed and as counted in the metrics.
const KEYS: &str = "/v1/idempotency-keys";
const PAYMENTS: &str = "/v1/payments";
const PAYMENT: &str = "/v1/payments/{id}";
const PAYMENT_STATUS: &str = "/v1/payments/{id}/status";
const HEALTHZ: &str = "/healthz";
const READYZ: &str = "/readyz";
const METRICS: &str = "/metrics";
const OPENAPI: &str = "/openapi.json";
const ROUTES: [&str; 8] = [
    KEYS,
    PAYMENTS,
    PAYMENT,
    PAYMENT_STATUS,
    HEALTHZ,
    READYZ,
    METRICS,
    OPENAPI,
];

/// The static name of a matched route's pattern; `unmatched` for none.
fn route_label(matched: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|route| **route == matched)
        .copied()
        .unwrap_or(middleware::UNMATCHED)
}

/// The whole API, ready to serve.
pub fn router(state: AppState) -> Router {
    let metrics = Arc::clone(state.engine.metrics());
    let max_body_bytes = state.max_body_bytes;
    let routes = Router::new()
        .route(KEYS, post(keys::issue_key))
        .route(
            PAYMENTS,
            post(payments::create_payment).get(payments::list_payments),
        )
        .route(PAYMENT, get(payments::get_payment))
        .route(PAYMENT_STATUS, post(status_updates::update_payment_status))
        .route(HEALTHZ, get(health::healthz))
        .route(READYZ, get(health::readyz))
        .route(METRICS, get(metrics::metrics))
        .route(OPENAPI, get(openapi::openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    middleware::around_requests(routes, metrics, max_body_bytes).with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}
