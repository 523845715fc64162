//! Status updates: the PSP's signed webhook that settles a pending payment.
//!
//! The signature is the authentication: `Oncepay-Signature: t=<unix
//! seconds>,v1=<hex>`, where `<hex>` is HMAC-SHA256 keyed with the webhook
//! secret over `"<t>.<raw body>"`, and `t` must be within five minutes of
//! now so a captured request cannot be replayed later. No merchant key is
//! needed; the payment is looked up by id alone. Repeated event ids are the
//! engine's business: it answers them as before.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use hmac::{Hmac, Mac};
use oncepay_domain::fields::Fields;
use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{PaymentStatus, RequestError};
use oncepay_engine::{StatusUpdate, StatusUpdateAnswer};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use utoipa::ToSchema;

use crate::body::{RawBody, parse_json};
use crate::error::ApiError;
use crate::payments::{PaymentPath, payment_response};
use crate::state::AppState;
use crate::views::{PaymentView, Problem};

/// The header carrying the signature.
pub const ONCEPAY_SIGNATURE: &str = "oncepay-signature";

/// How far `t` may be from now, in seconds.
const TOLERANCE_SECS: i64 = 300;

/// Longest event id accepted, in characters.
const MAX_EVENT_ID_CHARS: usize = 255;

/// The body of a status update.
#[derive(Debug, ToSchema)]
pub struct StatusUpdateBody {
    /// The PSP's id of this event, 1 to 255 characters; repeats change nothing.
    #[schema(example = "evt_123")]
    pub event_id: String,
    /// The final status the PSP reports.
    pub status: FinalStatus,
}

/// A status a payment can settle in.
#[derive(Debug, Clone, Copy, ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum FinalStatus {
    /// The PSP took the money.
    Succeeded,
    /// The PSP declined.
    Failed,
}

/// Settles a pending payment, as signed by the PSP.
#[utoipa::path(
    post, path = "/v1/payments/{id}/status", tag = "status updates",
    params(
        ("id" = String, Path, description = "The payment id, `pay_…`"),
        ("Oncepay-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`"),
    ),
    request_body = StatusUpdateBody,
    responses(
        (status = 200, description = "The payment has the reported status", body = PaymentView),
        (status = 401, description = "Missing, wrong or stale signature", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No webhook secret is configured", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such payment", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The payment is final in the other status", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn update_payment_status(
    State(state): State<AppState>,
    path: PaymentPath,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let secret = state
        .webhook_secret
        .as_ref()
        .ok_or(ApiError::StatusUpdatesDisabled)?;
    let signature = headers
        .get(ONCEPAY_SIGNATURE)
        .and_then(|value| value.to_str().ok());
    verify_signature(secret, signature, &body, now_millis() / 1000)
        .map_err(ApiError::InvalidSignature)?;

    let body = parse_update(&body)?;
    let update = StatusUpdate {
        payment_id: path.payment_id()?,
        event_id: body.event_id,
        status: body.status.into(),
    };

    match state.engine.update_status(update).await? {
        StatusUpdateAnswer::Accepted(payment) => Ok(payment_response(StatusCode::OK, &payment)),
        StatusUpdateAnswer::Conflict(payment) => Err(ApiError::StatusConflict(payment.id)),
        StatusUpdateAnswer::NotFound => Err(ApiError::PaymentNotFound),
    }
}

impl From<FinalStatus> for PaymentStatus {
    fn from(status: FinalStatus) -> Self {
        match status {
            FinalStatus::Succeeded => Self::Succeeded,
            FinalStatus::Failed => Self::Failed,
        }
    }
}

/// Reads and checks the body: JSON, the schema, the event id's length.
fn parse_update(body: &[u8]) -> Result<StatusUpdateBody, ApiError> {
    let value = parse_json(body)?;
    let fields = Fields::of(&value, "the status update", &["event_id", "status"])?;
    let event_id = fields.string("event_id")?;
    let status = match fields.string("status")? {
        "succeeded" => FinalStatus::Succeeded,
        "failed" => FinalStatus::Failed,
        _ => {
            let detail = "status must be \"succeeded\" or \"failed\"";
            return Err(RequestError::field("status", detail).into());
        }
    };
    let length = event_id.chars().count();
    let printable = !oncepay_domain::request::has_control_characters(event_id);
    if !(1..=MAX_EVENT_ID_CHARS).contains(&length) || !printable {
        let detail = "event_id must be 1 to 255 characters, without control characters".to_owned();
        return Err(RequestError::field("event_id", detail).into());
    }
    Ok(StatusUpdateBody {
        event_id: event_id.to_owned(),
        status,
    })
}

/// Checks `Oncepay-Signature` against the raw body at `now_secs`.
///
/// # Errors
///
/// Why the signature is refused, phrased to follow "the Oncepay-Signature
/// header".
fn verify_signature(
    secret: &SecretString,
    header: Option<&str>,
    body: &[u8],
    now_secs: i64,
) -> Result<(), &'static str> {
    let header = header.ok_or("is missing")?;
    let (t, candidates) = parse_signature(header).ok_or("is not t=<unix seconds>,v1=<hex>")?;
    let t_secs: i64 = t.parse().map_err(|_| "has a timestamp out of range")?;
    if (now_secs - t_secs).abs() > TOLERANCE_SECS {
        return Err("has a timestamp more than 300 seconds away from now");
    }

    let key = secret.expose_secret().as_bytes();
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| "cannot be checked")?;
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    // Several v1 values may be sent while the PSP rotates its secret.
    let valid = candidates
        .iter()
        .any(|candidate| mac.clone().verify_slice(candidate).is_ok());
    valid.then_some(()).ok_or("does not match the body")
}

/// Splits `t=<digits>,v1=<hex>[,v1=<hex>...]`; other schemes are ignored.
fn parse_signature(header: &str) -> Option<(&str, Vec<Vec<u8>>)> {
    let mut t = None;
    let mut candidates = Vec::new();
    for part in header.split(',') {
        let (name, value) = part.trim().split_once('=')?;
        match name {
            "t" if t.is_none() => t = Some(value),
            "t" => return None,
            "v1" => candidates.push(hex::decode(value).ok()?),
            _ => {}
        }
    }
    let t = t.filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))?;
    (!candidates.is_empty()).then_some((t, candidates))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn sign(secret: &str, t: i64, body: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
        mac.update(format!("{t}.{body}").as_bytes());
        format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
    }

    fn verify(header: &str, body: &str) -> Result<(), &'static str> {
        let secret = SecretString::from("whsec_test");
        verify_signature(&secret, Some(header), body.as_bytes(), NOW)
    }

    #[test]
    fn a_fresh_signature_over_the_exact_body_verifies() {
        let body = r#"{"event_id":"evt_1","status":"succeeded"}"#;
        assert_eq!(verify(&sign("whsec_test", NOW - 299, body), body), Ok(()));
    }

    #[test]
    fn a_changed_body_a_wrong_secret_or_a_stale_time_is_refused() {
        let body = r#"{"event_id":"evt_1","status":"succeeded"}"#;
        assert!(
            verify(
                &sign("whsec_test", NOW, body),
                &body.replace("succeeded", "failed")
            )
            .is_err()
        );
        assert!(verify(&sign("whsec_other", NOW, body), body).is_err());
        assert!(verify(&sign("whsec_test", NOW - 301, body), body).is_err());
        assert!(verify(&sign("whsec_test", NOW + 301, body), body).is_err());
    }

    #[test]
    fn malformed_headers_are_refused() {
        for header in [
            "",
            "t=1",
            "v1=00",
            "t=x,v1=00",
            "t=1,v1=zz",
            "t=1,t=1,v1=00",
            "garbage",
        ] {
            assert!(verify(header, "{}").is_err(), "{header}");
        }
    }
}
