//! Payments: create one under an idempotency key, read one, list them.
//!
//! Creating a payment runs the contract's order of checks: merchant, key,
//! body, JSON, payment rules, then the engine. Rejected requests never reach
//! the engine, so they record nothing against the key. One shortcut sits
//! between body and JSON: a body that is byte for byte the one of the key's
//! recorded final answer was valid then and is the same request now, so the
//! engine replays it unread. The engine's answer is then shown by the
//! payment's status: `201` succeeded, `202` pending, `402` declined.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oncepay_domain::{Payment, PaymentId, PaymentRequest, PaymentStatus, RequestFingerprint};
use oncepay_engine::{KeptAnswer, KeyScope, Page, PaymentAnswer, StoreError};
use serde::Deserialize;
use tracing::Span;
use utoipa::IntoParams;

use crate::auth::AuthenticatedMerchant;
use crate::body::{RawBody, parse_json};
use crate::cursor;
use crate::error::ApiError;
use crate::idempotency_key::IdempotencyKeyHeader;
use crate::state::AppState;
use crate::views::{
    CreatePaymentBody, PaymentJson, PaymentListView, PaymentView, Problem, location_of,
};

/// Tells a first answer (`false`) from a retried one (`true`).
const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Page size when the client names none, and the largest allowed.
const DEFAULT_LIMIT: usize = 20;
const MAX_LIMIT: usize = 100;

/// Executes a payment at most once per idempotency key.
#[utoipa::path(
    post, path = "/v1/payments", tag = "payments",
    params(("Idempotency-Key" = String, Header, description = "1 to 255 printable ASCII characters, bare or as an sf-string")),
    request_body = CreatePaymentBody,
    responses(
        (status = 201, description = "The PSP took the money", body = PaymentView),
        (status = 202, description = "The outcome is not known yet", body = PaymentView),
        (status = 402, description = "The PSP declined", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "Missing or invalid key or body", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The key's first request is still executing", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "The key was used for a different request", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create_payment(
    State(state): State<AppState>,
    AuthenticatedMerchant(merchant): AuthenticatedMerchant,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let scope = KeyScope { merchant, key };
    if let Some(kept) = state.engine.replay_exact(&scope, &body).await {
        return exact_replay(kept);
    }

    let request = PaymentRequest::parse(&parse_json(&body)?)?;
    // The parsed request, not the raw body: `"description": null` and no
    // description mean the same payment, so they are the same request.
    let fingerprint = RequestFingerprint::of("POST", "/v1/payments", &request.to_canonical_json());

    let answer = state.engine.pay(scope, fingerprint, request, body).await?;

    payment_answer(answer)
}

/// Shows the engine's answer: the payment by its status, or a refusal.
fn payment_answer(answer: PaymentAnswer) -> Result<Response, ApiError> {
    let (payment, replayed) = match answer {
        PaymentAnswer::First(payment) => (payment, false),
        PaymentAnswer::Retried(payment) => (payment, true),
        PaymentAnswer::InFlight { retry_after_secs } => {
            Span::current().record("idempotency", "in_flight");
            return Err(ApiError::IdempotencyKeyInUse { retry_after_secs });
        }
        PaymentAnswer::Mismatch => {
            Span::current().record("idempotency", "mismatch");
            return Err(ApiError::IdempotencyKeyReused);
        }
    };
    let outcome = if replayed { "replayed" } else { "first" };
    Span::current().record("idempotency", outcome);

    let response = match payment.status {
        PaymentStatus::Succeeded => payment_response(StatusCode::CREATED, &payment),
        PaymentStatus::Pending => payment_response(StatusCode::ACCEPTED, &payment),
        PaymentStatus::Failed => {
            Span::current().record("payment_id", payment.id.as_str());
            ApiError::PaymentDeclined(Arc::clone(&payment)).into_response()
        }
    };
    let replayed = HeaderValue::from_static(if replayed { "true" } else { "false" });
    let replayed = [(IDEMPOTENT_REPLAYED, replayed)];
    Ok((replayed, response).into_response())
}

/// Answers a retry sent with the exact bytes of a final answer's request.
///
/// Rendering the payment was a quarter of a replay's instructions
/// (callgrind), so a succeeded payment is rendered by its first exact replay
/// and its bytes kept with the answer for the next ones. Declines are shown
/// as problems and rendered each time; they are rarely retried.
fn exact_replay(kept: KeptAnswer) -> Result<Response, ApiError> {
    let payment = kept.payment;
    if payment.status != PaymentStatus::Succeeded {
        return payment_answer(PaymentAnswer::Retried(payment));
    }
    Span::current().record("idempotency", "replayed");
    let body = kept.rendering.get_or_render(|| {
        let mut body = render_payment(&payment)?;
        // Kept for as long as the answer: no spare capacity with it.
        body.shrink_to_fit();
        Ok::<_, ApiError>(Bytes::from(body))
    })?;
    let replayed = [(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"))];
    let response = rendered_payment(StatusCode::CREATED, &payment, body);
    Ok((replayed, response).into_response())
}

/// A payment as the body, with its `Location`; notes its id in the request log.
pub fn payment_response(status: StatusCode, payment: &Payment) -> Response {
    match render_payment(payment) {
        Ok(body) => rendered_payment(status, payment, Bytes::from(body)),
        Err(error) => error.into_response(),
    }
}

/// The payment's JSON.
fn render_payment(payment: &Payment) -> Result<Vec<u8>, ApiError> {
    // Serialized into a buffer sized for a typical payment up front: growing
    // the buffer step by step cost more than writing the JSON (callgrind).
    let mut body = Vec::with_capacity(1024);
    serde_json::to_writer(&mut body, &PaymentJson::from(payment)).map_err(|error| {
        let cause = StoreError::Corrupt(format!("cannot render payment: {error}"));
        ApiError::Internal(cause)
    })?;
    Ok(body)
}

/// `body`, the payment's JSON, with its `Location`; notes the payment's id
/// in the request log.
fn rendered_payment(status: StatusCode, payment: &Payment, body: Bytes) -> Response {
    Span::current().record("payment_id", payment.id.as_str());
    let json = HeaderValue::from_static("application/json");
    (
        status,
        location_of(&payment.id),
        [(header::CONTENT_TYPE, json)],
        body,
    )
        .into_response()
}

/// The `{id}` of a payment route; an id of the wrong shape is no payment.
#[derive(Debug, Clone)]
pub struct PaymentPath(String);

impl PaymentPath {
    /// The payment id, if the path holds a well-formed one.
    ///
    /// # Errors
    ///
    /// [`ApiError::PaymentNotFound`] for any other text.
    pub fn payment_id(&self) -> Result<PaymentId, ApiError> {
        PaymentId::parse(&self.0).ok_or(ApiError::PaymentNotFound)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PaymentPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // Only a path that is not UTF-8 fails here, and it names no payment.
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::PaymentNotFound)?;
        Ok(Self(raw))
    }
}

/// One payment of the calling merchant.
#[utoipa::path(
    get, path = "/v1/payments/{id}", tag = "payments",
    params(("id" = String, Path, description = "The payment id, `pay_…`")),
    responses(
        (status = 200, description = "The payment", body = PaymentView),
        (status = 404, description = "No such payment for this merchant", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_payment(
    State(state): State<AppState>,
    AuthenticatedMerchant(merchant): AuthenticatedMerchant,
    path: PaymentPath,
) -> Result<Response, ApiError> {
    let id = path.payment_id()?;

    let payment = state.engine.payment(&merchant, &id).await?;
    let payment = payment.ok_or(ApiError::PaymentNotFound)?;

    Ok(payment_response(StatusCode::OK, &payment))
}

/// Query of `GET /v1/payments`, read as text so errors name the parameter.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size, 1 ..= 100; 20 when absent.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The calling merchant's payments, newest first.
#[utoipa::path(
    get, path = "/v1/payments", tag = "payments",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of payments", body = PaymentListView),
        (status = 400, description = "Bad limit or cursor", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_payments(
    State(state): State<AppState>,
    AuthenticatedMerchant(merchant): AuthenticatedMerchant,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PaymentListView>, ApiError> {
    let Query(query) = query.map_err(|_| ApiError::InvalidParameter {
        name: "query",
        detail: "the query string is malformed or repeats a parameter",
    })?;
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = query.cursor.as_deref().map(cursor::decode).transpose()?;

    let page = state.engine.list(&merchant, cursor, limit).await?;

    Ok(Json(page_view(page)))
}

fn parse_limit(raw: Option<&str>) -> Result<usize, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.parse()
        .ok()
        .filter(|limit| (1..=MAX_LIMIT).contains(limit))
        .ok_or(ApiError::InvalidParameter {
            name: "limit",
            detail: "must be an integer from 1 to 100",
        })
}

fn page_view(page: Page) -> PaymentListView {
    PaymentListView {
        data: page.payments.iter().map(PaymentView::from).collect(),
        has_more: page.next.is_some(),
        next_cursor: page.next.map(cursor::encode),
    }
}
