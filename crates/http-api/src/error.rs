//! The one place where errors become HTTP answers.
//!
//! Every refusal and failure of the API is an [`ApiError`]; its
//! [`IntoResponse`] mapping is the contract's error table: status code,
//! stable problem `type`, a `title`, a human `detail` that never holds
//! internal error text, and the extra members and headers some kinds carry.
//! Bodies are RFC 9457 `application/problem+json`. What went wrong inside is
//! attached to the response as a [`ProblemReport`] for the request log, and is
//! logged there once.

use std::borrow::Cow;
use std::sync::Arc;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use oncepay_domain::{KeyError, Payment, PaymentId, RequestError};
use oncepay_engine::StoreError;

use crate::views::{PaymentView, Problem, location_of};

/// Where every problem `type` URI starts.
const PROBLEM_BASE: &str = "https://oncepay.dev/problems/";

/// Everything the API refuses or fails at.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `POST /v1/payments` came without an `Idempotency-Key` header.
    #[error("missing idempotency key")]
    MissingIdempotencyKey,
    /// The `Idempotency-Key` header is empty, malformed, too long or repeated.
    #[error("invalid idempotency key: {0}")]
    InvalidIdempotencyKey(KeyError),
    /// The body is not JSON.
    #[error("body is not JSON: {0}")]
    InvalidJson(serde_json::Error),
    /// The body could not be read to its end (the client broke it off).
    #[error("body could not be read")]
    UnreadableBody,
    /// The body is JSON but breaks the schema or a rule.
    #[error("invalid request: {0}")]
    InvalidRequest(RequestError),
    /// A query parameter is out of range.
    #[error("invalid query parameter {name}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// What a valid value looks like.
        detail: &'static str,
    },
    /// A list cursor oncepay did not hand out.
    #[error("invalid cursor")]
    InvalidCursor,
    /// No bearer key, or one that no merchant holds.
    #[error("unauthorized")]
    Unauthorized,
    /// A status update whose `Oncepay-Signature` does not verify.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// Status updates need a webhook secret, and none is configured.
    #[error("status updates are disabled")]
    StatusUpdatesDisabled,
    /// No such payment for this caller.
    #[error("payment not found")]
    PaymentNotFound,
    /// No such route.
    #[error("route not found")]
    NotFound,
    /// The route exists, the method does not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// Another request holds the key's lease.
    #[error("idempotency key in use")]
    IdempotencyKeyInUse {
        /// Seconds after which a retry may be answered.
        retry_after_secs: u64,
    },
    /// A final payment was asked to move to the other final state.
    #[error("status conflict on {0}")]
    StatusConflict(PaymentId),
    /// The body is larger than the configured limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// The key was used before for a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// The PSP declined the payment.
    #[error("payment declined: {}", .0.id)]
    PaymentDeclined(Arc<Payment>),
    /// The durable store is down; retrying later may help.
    #[error("store unavailable: {0}")]
    StoreUnavailable(StoreError),
    /// A bug or broken data; the cause is logged, never shown.
    #[error("internal error: {0}")]
    Internal(StoreError),
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) => Self::StoreUnavailable(error),
            StoreError::Corrupt(_) => Self::Internal(error),
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        Self::InvalidRequest(error)
    }
}

/// What the request log learns about a refused or failed request.
#[derive(Debug, Clone)]
pub struct ProblemReport {
    /// The problem slug, such as `invalid-request`.
    pub slug: &'static str,
    /// The internal cause of a server-side failure; never sent to clients.
    pub cause: Option<String>,
}

impl ApiError {
    /// Status, slug and title: the contract's error table.
    fn kind(&self) -> (StatusCode, &'static str, &'static str) {
        use StatusCode as S;
        match self {
            Self::MissingIdempotencyKey => (
                S::BAD_REQUEST,
                "missing-idempotency-key",
                "Missing idempotency key",
            ),
            Self::InvalidIdempotencyKey(_) => (
                S::BAD_REQUEST,
                "invalid-idempotency-key",
                "Invalid idempotency key",
            ),
            Self::InvalidJson(_) | Self::UnreadableBody => {
                (S::BAD_REQUEST, "invalid-json", "Body is not JSON")
            }
            Self::InvalidRequest(_) => (S::BAD_REQUEST, "invalid-request", "Invalid request"),
            Self::InvalidParameter { .. } => (
                S::BAD_REQUEST,
                "invalid-parameter",
                "Invalid query parameter",
            ),
            Self::InvalidCursor => (S::BAD_REQUEST, "invalid-cursor", "Invalid cursor"),
            Self::Unauthorized => (S::UNAUTHORIZED, "unauthorized", "Unauthorized"),
            Self::InvalidSignature(_) => {
                (S::UNAUTHORIZED, "invalid-signature", "Invalid signature")
            }
            Self::StatusUpdatesDisabled => (
                S::FORBIDDEN,
                "status-updates-disabled",
                "Status updates disabled",
            ),
            Self::PaymentNotFound => (S::NOT_FOUND, "payment-not-found", "Payment not found"),
            Self::NotFound => (S::NOT_FOUND, "not-found", "Not found"),
            Self::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            Self::IdempotencyKeyInUse { .. } => (
                S::CONFLICT,
                "idempotency-key-in-use",
                "Idempotency key in use",
            ),
            Self::StatusConflict(_) => (S::CONFLICT, "status-conflict", "Status conflict"),
            Self::PayloadTooLarge => (
                S::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
            ),
            Self::IdempotencyKeyReused => (
                S::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
            ),
            Self::PaymentDeclined(_) => {
                (S::PAYMENT_REQUIRED, "payment-declined", "Payment declined")
            }
            Self::StoreUnavailable(_) => (
                S::SERVICE_UNAVAILABLE,
                "store-unavailable",
                "Store unavailable",
            ),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, "internal-error", "Internal error"),
        }
    }

    /// The human explanation; safe to show, so built from client input only.
    fn detail(&self) -> Cow<'static, str> {
        match self {
            Self::MissingIdempotencyKey => {
                "POST /v1/payments needs an Idempotency-Key header".into()
            }
            Self::InvalidIdempotencyKey(error) => error.to_string().into(),
            // Only `parse_json`'s own refusal is a data error; its message
            // names the repeated member and says where it is.
            Self::InvalidJson(error) if error.is_data() => {
                format!("the request body is not valid JSON: {error}").into()
            }
            Self::InvalidJson(error) => format!(
                "the request body is not valid JSON (line {}, column {})",
                error.line(),
                error.column()
            )
            .into(),
            Self::UnreadableBody => "the request body could not be read".into(),
            Self::InvalidRequest(error) => error.detail.clone().into(),
            Self::InvalidParameter { name, detail } => format!("{name}: {detail}").into(),
            Self::InvalidCursor => "the cursor is not one oncepay handed out".into(),
            Self::Unauthorized => {
                "send Authorization: Bearer <api key> with a configured key".into()
            }
            Self::InvalidSignature(reason) => {
                format!("the Oncepay-Signature header {reason}").into()
            }
            Self::StatusUpdatesDisabled => {
                "status updates need ONCEPAY_WEBHOOK_SECRET to be configured".into()
            }
            Self::PaymentNotFound => "no payment with this id".into(),
            Self::NotFound => "no such route".into(),
            Self::MethodNotAllowed => "this route does not accept this method".into(),
            Self::IdempotencyKeyInUse { .. } => {
                "a request with this idempotency key is still being executed; retry later".into()
            }
            Self::StatusConflict(_) => {
                "the payment is final in the other status and never changes".into()
            }
            Self::PayloadTooLarge => "the request body is larger than the configured limit".into(),
            Self::IdempotencyKeyReused => {
                "this idempotency key was used for a different request".into()
            }
            Self::PaymentDeclined(_) => "the payment service provider declined the payment".into(),
            Self::StoreUnavailable(_) => "the payment store is unavailable; retry later".into(),
            Self::Internal(_) => "something went wrong on our side".into(),
        }
    }

    /// The problem body, with the extra members of this kind.
    fn problem(&self, status: StatusCode, slug: &str, title: &str) -> Problem {
        let mut problem = Problem {
            problem_type: format!("{PROBLEM_BASE}{slug}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: self.detail().into_owned(),
            field: None,
            payment_id: None,
            payment: None,
        };
        match self {
            Self::InvalidRequest(error) => problem.field = error.field.map(str::to_owned),
            Self::StatusConflict(id) => problem.payment_id = Some(id.to_string()),
            Self::PaymentDeclined(payment) => {
                problem.payment_id = Some(payment.id.to_string());
                problem.payment = Some(PaymentView::from(payment.as_ref()));
            }
            _ => {}
        }
        problem
    }

    /// Headers that go with this kind: challenges, back-off, locations.
    fn extra_headers(&self, response: &mut Response) {
        let headers = response.headers_mut();
        match self {
            Self::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            Self::IdempotencyKeyInUse { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::StatusConflict(id) => headers.extend(location_of(id)),
            Self::PaymentDeclined(payment) => headers.extend(location_of(&payment.id)),
            _ => {}
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, slug, title) = self.kind();
        let body = Json(self.problem(status, slug, title));

        // Headers given after the body override the `application/json` of `Json`.
        let content_type = HeaderValue::from_static("application/problem+json");
        let mut response = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
        self.extra_headers(&mut response);

        let cause = status.is_server_error().then(|| self.to_string());
        response
            .extensions_mut()
            .insert(ProblemReport { slug, cause });
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body_of(error: ApiError) -> (StatusCode, serde_json::Value) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("an in-memory body");
        (
            status,
            serde_json::from_slice(&bytes).expect("problem JSON"),
        )
    }

    #[tokio::test]
    async fn internal_error_text_never_reaches_the_client() {
        let secret = "disk I/O error at /var/lib/oncepay/secret.db";
        for error in [
            ApiError::from(StoreError::Corrupt(secret.to_owned())),
            ApiError::from(StoreError::Unavailable(secret.to_owned())),
        ] {
            let (_, body) = body_of(error).await;
            assert!(!body.to_string().contains("secret.db"), "{body}");
        }
    }

    #[tokio::test]
    async fn a_problem_names_its_type_status_and_field() {
        let error = ApiError::InvalidRequest(RequestError {
            field: Some("amount"),
            detail: "amount must be positive".to_owned(),
        });

        let (status, body) = body_of(error).await;

        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["type"], "https://oncepay.dev/problems/invalid-request");
        assert_eq!(body["status"], 400);
        assert_eq!(body["field"], "amount");
    }

    #[test]
    fn an_in_flight_key_tells_the_client_when_to_retry() {
        let response = ApiError::IdempotencyKeyInUse {
            retry_after_secs: 7,
        }
        .into_response();

        assert_eq!(response.status(), StatusCode::CONFLICT);
        assert_eq!(response.headers()[header::RETRY_AFTER], "7");
    }
}
