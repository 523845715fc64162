//! Idempotency keys issued by oncepay: `POST /v1/idempotency-keys`.
//!
//! Clients may bring their own keys; an issued one is unguessable (128
//! random bits), registered for the calling merchant, and valid for the
//! retention period.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use oncepay_domain::time_fmt::rfc3339;

use crate::auth::AuthenticatedMerchant;
use crate::error::ApiError;
use crate::state::AppState;
use crate::views::{IssuedKeyView, Problem};

/// Issues a fresh idempotency key to the calling merchant.
#[utoipa::path(
    post, path = "/v1/idempotency-keys", tag = "idempotency keys",
    responses(
        (status = 201, description = "A fresh key and its expiry", body = IssuedKeyView),
        (status = 401, description = "No valid API key", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn issue_key(
    State(state): State<AppState>,
    AuthenticatedMerchant(merchant): AuthenticatedMerchant,
) -> Result<(StatusCode, Json<IssuedKeyView>), ApiError> {
    let (key, expires_at_millis) = state.engine.issue_key(&merchant).await?;

    let view = IssuedKeyView {
        key: key.as_str().to_owned(),
        expires_at: rfc3339(expires_at_millis),
    };
    Ok((StatusCode::CREATED, Json(view)))
}
