//! Response bodies of the API, built from domain types.
//!
//! These types are the JSON contract: snake_case fields that may be added
//! to, never renamed. They are kept apart from the domain types so that a
//! change inside the engine cannot silently change what clients see.
//! Timestamps are RFC 3339 in UTC.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderValue, header};
use oncepay_domain::time_fmt::rfc3339;
use oncepay_domain::{Payment, PaymentId, PaymentStatus, StatusChange};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Where a payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatusView {
    /// The outcome is not known yet.
    Pending,
    /// The PSP took the money.
    Succeeded,
    /// The PSP declined.
    Failed,
}

impl From<PaymentStatus> for PaymentStatusView {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::Pending => Self::Pending,
            PaymentStatus::Succeeded => Self::Succeeded,
            PaymentStatus::Failed => Self::Failed,
        }
    }
}

/// One status a payment entered, with its time and cause.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct HistoryEntryView {
    /// The status entered.
    pub status: PaymentStatusView,
    /// When, RFC 3339.
    #[schema(example = "2026-01-31T12:00:00.123Z")]
    pub at: String,
    /// Why, such as `created` or `psp: succeeded`.
    pub cause: String,
}

/// A payment as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PaymentView {
    /// The payment's id, `pay_` and 32 hex digits.
    #[schema(example = "pay_0123456789abcdef0123456789abcdef")]
    pub id: String,
    /// Minor units of the currency (cents).
    #[schema(example = 1000)]
    pub amount: i64,
    /// ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// Where the payment stands.
    pub status: PaymentStatusView,
    /// The provider token, as given.
    #[schema(example = "pm_card_ok")]
    pub payment_method: String,
    /// The client's description, or null.
    pub description: Option<String>,
    /// The client's metadata; `{}` when none was given.
    pub metadata: BTreeMap<String, String>,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// Time of the last change, RFC 3339.
    pub updated_at: String,
    /// Every status entered, oldest first.
    pub history: Vec<HistoryEntryView>,
}

impl From<&StatusChange> for HistoryEntryView {
    fn from(change: &StatusChange) -> Self {
        Self {
            status: change.status.into(),
            at: rfc3339(change.at_millis),
            cause: change.cause.clone(),
        }
    }
}

impl From<&Payment> for PaymentView {
    fn from(payment: &Payment) -> Self {
        Self {
            id: payment.id.to_string(),
            amount: payment.money.amount.minor_units(),
            currency: payment.money.currency.code().to_owned(),
            status: payment.status.into(),
            payment_method: payment.payment_method.clone(),
            description: payment.description.clone(),
            metadata: payment.metadata.clone(),
            created_at: rfc3339(payment.created_at_millis),
            updated_at: rfc3339(payment.updated_at_millis),
            history: payment.history.iter().map(HistoryEntryView::from).collect(),
        }
    }
}

/// The JSON of [`PaymentView`], serialized straight from the payment it
/// borrows, without first copying every field into a view: a replay's
/// answer is mostly this rendering. `views_render_alike` holds the two to
/// the same bytes.
#[derive(Serialize)]
pub struct PaymentJson<'a> {
    id: &'a str,
    amount: i64,
    currency: &'a str,
    status: PaymentStatusView,
    payment_method: &'a str,
    description: Option<&'a str>,
    metadata: &'a BTreeMap<String, String>,
    created_at: String,
    updated_at: String,
    history: HistoryJson<'a>,
}

impl<'a> From<&'a Payment> for PaymentJson<'a> {
    fn from(payment: &'a Payment) -> Self {
        Self {
            id: payment.id.as_str(),
            amount: payment.money.amount.minor_units(),
            currency: payment.money.currency.code(),
            status: payment.status.into(),
            payment_method: &payment.payment_method,
            description: payment.description.as_deref(),
            metadata: &payment.metadata,
            created_at: rfc3339(payment.created_at_millis),
            updated_at: rfc3339(payment.updated_at_millis),
            history: HistoryJson(&payment.history),
        }
    }
}

/// A payment's history as [`HistoryEntryView`]s, borrowed.
struct HistoryJson<'a>(&'a [StatusChange]);

#[derive(Serialize)]
struct HistoryEntryJson<'a> {
    status: PaymentStatusView,
    at: String,
    cause: &'a str,
}

impl Serialize for HistoryJson<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|change| HistoryEntryJson {
            status: change.status.into(),
            at: rfc3339(change.at_millis),
            cause: &change.cause,
        }))
    }
}

/// A page of the merchant's payments, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentListView {
    /// The payments of this page.
    pub data: Vec<PaymentView>,
    /// Whether older payments follow.
    pub has_more: bool,
    /// The cursor of the next page, or null on the last one.
    pub next_cursor: Option<String>,
}

/// A freshly issued idempotency key.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyView {
    /// The key, to send as `Idempotency-Key`.
    #[schema(example = "idk_01a2446b2f7c9e0b3f6d8a21c4e5f7091b2d3c4e5f60")]
    pub key: String,
    /// When oncepay forgets it, RFC 3339.
    pub expires_at: String,
}

/// The body of `POST /v1/payments`, for the API description.
///
/// Requests are checked by `oncepay_domain::PaymentRequest::parse`, which
/// owns the rules; this type only describes them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePaymentBody {
    /// Minor units, 1 ..= 10 000 000 000.
    #[schema(example = 1000, minimum = 1, maximum = 10_000_000_000_i64)]
    pub amount: i64,
    /// Upper-case ISO 4217 code.
    #[schema(example = "EUR")]
    pub currency: String,
    /// A provider token; card numbers are refused.
    #[schema(example = "pm_card_ok")]
    pub payment_method: String,
    /// At most 1000 characters.
    pub description: Option<String>,
    /// At most 50 string values.
    pub metadata: Option<BTreeMap<String, String>>,
}

/// An RFC 9457 problem details body, built by `ApiError` alone.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A stable URI naming the kind of problem.
    #[serde(rename = "type")]
    #[schema(example = "https://oncepay.dev/problems/invalid-request")]
    pub problem_type: String,
    /// A short summary of the kind of problem.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for a person.
    pub detail: String,
    /// The offending request field, when one is to blame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The payment concerned (declines and status conflicts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The declined payment in full.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentView>,
}

/// The `Location` header of a payment.
pub fn location_of(id: &PaymentId) -> HeaderMap {
    let mut headers = HeaderMap::new();
    // Stored ids are `pay_` and hex, so the value is always valid; a broken
    // record only loses its Location header.
    if let Ok(value) = HeaderValue::try_from(format!("/v1/payments/{id}")) {
        headers.insert(header::LOCATION, value);
    }
    headers
}

#[cfg(test)]
mod tests {
    use oncepay_domain::{MerchantId, PaymentRequest};

    use super::*;

    /// The borrowed rendering is byte for byte the view's: clients must not
    /// see a replay differ from the first answer.
    #[test]
    fn views_render_alike() {
        let body = serde_json::json!({
            "amount": 1250, "currency": "EUR", "payment_method": "pm_card_ok",
            "description": "tea \"for two\" \u{2615}\n",
            "metadata": {"order": "o-1", "é": "\\u0000"},
        });
        let request = PaymentRequest::parse(&body).expect("a valid request");
        let merchant = MerchantId::parse("m").expect("a valid merchant");
        let mut payment = Payment::pending(merchant, request, 1_767_225_600_123);
        payment
            .apply(
                PaymentStatus::Succeeded,
                "psp: succeeded".to_owned(),
                1_767_225_600_456,
            )
            .expect("pending may succeed");
        let bare = Payment {
            description: None,
            metadata: BTreeMap::new(),
            ..payment.clone()
        };
        for payment in [&payment, &bare] {
            let view = serde_json::to_string(&PaymentView::from(payment)).expect("renders");
            let borrowed = serde_json::to_string(&PaymentJson::from(payment)).expect("renders");
            assert_eq!(borrowed, view);
        }
    }
}
