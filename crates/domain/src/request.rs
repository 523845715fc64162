//! The body of `POST /v1/payments`, parsed into domain values.

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

use crate::fields::Fields;
use crate::{Amount, Currency, Money};

/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Most metadata keys accepted.
pub const MAX_METADATA_KEYS: usize = 50;
/// Longest payment method token accepted, in bytes.
pub const MAX_PAYMENT_METHOD_LEN: usize = 255;

/// A valid request to pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// How much, in which currency.
    pub money: Money,
    /// The provider token.
    pub payment_method: String,
    /// Optional free text.
    pub description: Option<String>,
    /// Optional flat string map.
    pub metadata: BTreeMap<String, String>,
}

/// Why a payment body was refused, naming the field when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{detail}")]
pub struct RequestError {
    /// The offending field, if the problem is one field.
    pub field: Option<&'static str>,
    /// What is wrong, safe to show the client.
    pub detail: String,
}

impl RequestError {
    /// A refusal of one field.
    pub fn field(field: &'static str, detail: impl Into<String>) -> Self {
        Self {
            field: Some(field),
            detail: detail.into(),
        }
    }

    /// A refusal of the body as a whole.
    pub fn whole(detail: impl Into<String>) -> Self {
        Self {
            field: None,
            detail: detail.into(),
        }
    }
}

/// The members a payment body may hold.
const PAYMENT_FIELDS: &[&str] = &[
    "amount",
    "currency",
    "payment_method",
    "description",
    "metadata",
];

impl PaymentRequest {
    /// Parses and checks a JSON body that is already known to be JSON.
    pub fn parse(body: &Value) -> Result<Self, RequestError> {
        let fields = Fields::of(body, "the payment body", PAYMENT_FIELDS)?;
        let amount = Amount::parse(fields.integer("amount")?)
            .map_err(|e| RequestError::field("amount", e.to_string()))?;
        let currency = Currency::parse(fields.string("currency")?)
            .map_err(|e| RequestError::field("currency", e.to_string()))?;
        let payment_method = fields.string("payment_method")?;
        let description = fields.optional_string("description")?;
        let metadata = fields.optional_string_map("metadata")?.unwrap_or_default();
        check_text_fields(payment_method, description, &metadata)?;
        check_payment_method(payment_method)?;
        check_description(description)?;
        if metadata.len() > MAX_METADATA_KEYS {
            return Err(RequestError::field(
                "metadata",
                "metadata holds at most 50 keys",
            ));
        }
        Ok(Self {
            money: Money { amount, currency },
            payment_method: payment_method.to_owned(),
            description: description.map(str::to_owned),
            metadata,
        })
    }
}

impl PaymentRequest {
    /// The request's meaning as JSON, for its fingerprint: an absent or
    /// `null` description, and absent, `null` or empty metadata, read as
    /// absent. (An empty description is kept: it is stored as given.)
    pub fn to_canonical_json(&self) -> Value {
        let mut object = serde_json::Map::new();
        object.insert("amount".to_owned(), self.money.amount.minor_units().into());
        object.insert("currency".to_owned(), self.money.currency.code().into());
        object.insert(
            "payment_method".to_owned(),
            self.payment_method.clone().into(),
        );
        if let Some(description) = &self.description {
            object.insert("description".to_owned(), description.clone().into());
        }
        if !self.metadata.is_empty() {
            let metadata = self
                .metadata
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())));
            object.insert("metadata".to_owned(), Value::Object(metadata.collect()));
        }
        Value::Object(object)
    }
}

fn check_text_fields(
    payment_method: &str,
    description: Option<&str>,
    metadata: &BTreeMap<String, String>,
) -> Result<(), RequestError> {
    let refuse = |field| RequestError::field(field, format!("{field} holds a control character"));
    if has_control_characters(payment_method) {
        return Err(refuse("payment_method"));
    }
    if description.is_some_and(has_control_characters) {
        return Err(refuse("description"));
    }
    if metadata
        .iter()
        .flat_map(|(k, v)| [k, v])
        .any(|text| has_control_characters(text))
    {
        return Err(refuse("metadata"));
    }
    Ok(())
}

fn check_payment_method(method: &str) -> Result<(), RequestError> {
    if method.trim().is_empty() {
        return Err(RequestError::field(
            "payment_method",
            "payment_method must not be empty",
        ));
    }
    if method.len() > MAX_PAYMENT_METHOD_LEN {
        return Err(RequestError::field(
            "payment_method",
            "payment_method is longer than 255 bytes",
        ));
    }
    if looks_like_card_number(method) {
        return Err(RequestError::field(
            "payment_method",
            "payment_method looks like a card number; send a provider token instead",
        ));
    }
    Ok(())
}

fn check_description(description: Option<&str>) -> Result<(), RequestError> {
    match description {
        Some(text) if text.chars().count() > MAX_DESCRIPTION_CHARS => Err(RequestError::field(
            "description",
            "description is longer than 1000 characters",
        )),
        _ => Ok(()),
    }
}

/// 12 to 19 digits, no letters, and anything else between them.
///
/// Digits of any script count (fullwidth `４` too), and every character that
/// is neither a letter nor a digit counts as a separator — white space,
/// punctuation, dashes, invisible formatting characters — so a card number
/// cannot slip through in any spelling.
pub fn looks_like_card_number(text: &str) -> bool {
    let digits = text.chars().filter(|c| c.is_numeric()).count();
    let no_letters = text.chars().all(|c| c.is_numeric() || !c.is_alphanumeric());
    no_letters && (12..=19).contains(&digits)
}

/// True when a text holds a NUL or another C0 control character other than
/// tab and line breaks: no store should be asked to keep those.
pub fn has_control_characters(text: &str) -> bool {
    text.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<PaymentRequest, RequestError> {
        PaymentRequest::parse(&body)
    }

    #[test]
    fn a_complete_body_is_accepted() {
        let body = json!({"amount": 1000, "currency": "EUR", "payment_method": "pm_card_ok",
            "description": "tea", "metadata": {"order": "42"}});
        let request = parse(body).expect("valid body");
        assert_eq!(request.money.amount.minor_units(), 1000);
        assert_eq!(
            request.metadata.get("order").map(String::as_str),
            Some("42")
        );
    }

    #[test]
    fn card_numbers_are_refused_in_every_usual_spelling() {
        for number in [
            "4242424242424242",
            "4242 4242 4242 4242",
            "4242-4242-4242-4242",
        ] {
            let error = parse(json!({"amount": 1, "currency": "EUR", "payment_method": number}))
                .expect_err("card number");
            assert_eq!(error.field, Some("payment_method"));
        }
    }

    #[test]
    fn absent_null_and_empty_optional_fields_mean_the_same_request() {
        let base = json!({"amount": 5, "currency": "EUR", "payment_method": "pm_card_ok"});
        let mut explicit = base.clone();
        explicit["description"] = Value::Null;
        explicit["metadata"] = json!({});
        let canonical = |body: &Value| parse(body.clone()).expect("valid").to_canonical_json();
        assert_eq!(canonical(&base), canonical(&explicit));
        explicit["description"] = "tea".into();
        assert_ne!(canonical(&base), canonical(&explicit));
    }

    #[test]
    fn control_characters_are_refused_in_every_text_field() {
        let base = json!({"amount": 5, "currency": "EUR", "payment_method": "pm_card_ok"});
        for (field, value) in [
            ("description", json!("a\u{0}b")),
            ("payment_method", json!("pm\u{0}ok")),
            ("metadata", json!({"k": "v\u{1}"})),
        ] {
            let mut body = base.clone();
            body[field] = value;
            assert_eq!(parse(body).expect_err(field).field, Some(field));
        }
        let mut multi_line = base.clone();
        multi_line["description"] = json!("line one\nline two");
        assert!(parse(multi_line).is_ok());
    }

    #[test]
    fn tokens_and_short_numbers_are_not_card_numbers() {
        for token in [
            "pm_card_ok",
            "tok_4242424242424242",
            "12345678901",
            "order 2024-06-01",
        ] {
            assert!(!looks_like_card_number(token), "{token}");
        }
    }

    #[test]
    fn floats_unknown_fields_and_nested_metadata_are_refused() {
        let base = |extra: Value| {
            let mut body =
                json!({"amount": 1000, "currency": "EUR", "payment_method": "pm_card_ok"});
            if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
                body.extend(extra.clone());
            }
            body
        };
        assert!(parse(base(json!({"amount": 10.5}))).is_err());
        assert!(parse(base(json!({"tip": 1}))).is_err());
        assert!(parse(base(json!({"metadata": {"a": {"b": "c"}}}))).is_err());
        assert!(parse(base(json!({"description": "x".repeat(1001)}))).is_err());
        assert!(parse(base(json!({"description": "é".repeat(1000)}))).is_ok());
    }
}
