//! Request bodies: raw bytes within the size limit, and JSON values.
//!
//! The size limit itself is axum's `DefaultBodyLimit`, set by the router;
//! [`RawBody`] turns its refusal into the `payload-too-large` problem.
//! Handlers read JSON from the raw bytes with [`parse_json`], so they can
//! look at the bytes first (a byte-identical payment retry is replayed
//! unread). The `Content-Type` of a body is not checked: it only has to
//! parse.

use std::fmt;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use oncepay_domain::fields::quoted_name;
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::ApiError;

/// The whole body, as sent.
#[derive(Debug, Clone)]
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Bytes::from_request(request, state).await {
            Ok(bytes) => Ok(Self(bytes)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::PayloadTooLarge)
            }
            // The client went away or sent a broken body: nothing readable.
            Err(_) => Err(ApiError::UnreadableBody),
        }
    }
}

/// Parses bytes as JSON, or says where they stop being JSON.
///
/// An object that names a member twice is refused as well. JSON leaves such
/// a body's meaning open and parsers differ (serde_json keeps the last
/// value, others the first), so a proxy or log in front of oncepay could
/// read another amount than the one charged.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice::<UniqueMembers>(bytes)
        .map(|UniqueMembers(value)| value)
        .map_err(ApiError::InvalidJson)
}

/// A JSON value in which every object names each of its members once.
struct UniqueMembers(Value);

impl<'de> Deserialize<'de> for UniqueMembers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(UniqueMembersVisitor).map(Self)
    }
}

struct UniqueMembersVisitor;

impl<'de> Visitor<'de> for UniqueMembersVisitor {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(value.into())
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so every parsed float has a Number.
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut values = Vec::with_capacity(items.size_hint().unwrap_or(0));
        while let Some(UniqueMembers(value)) = items.next_element()? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut members: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(name) = members.next_key::<String>()? {
            if object.contains_key(&name) {
                return Err(de::Error::custom(format_args!(
                    "an object names the member {} twice",
                    quoted_name(&name)
                )));
            }
            let UniqueMembers(value) = members.next_value()?;
            object.insert(name, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn json_parses_as_serde_json_reads_it() -> Result<(), ApiError> {
        let text = r#"{"a": [1, -2, 2.5, "s", null, true, {"b": {}}], "c": {"a": 1}}"#;

        let parsed = parse_json(text.as_bytes())?;

        assert_eq!(
            parsed,
            serde_json::from_str::<Value>(text).unwrap_or_default()
        );
        assert_eq!(parsed["a"][6], json!({"b": {}}));
        Ok(())
    }

    #[test]
    fn a_member_named_twice_at_any_depth_is_refused_with_its_name() {
        let bodies = [
            (r#"{"amount": 500, "amount": 900}"#, "amount"),
            (r#"{"metadata": {"order": "1", "order": "2"}}"#, "order"),
            (r#"[{"x": 1}, {"y": 1, "y": 2}]"#, "y"),
        ];

        for (body, name) in bodies {
            let refused = parse_json(body.as_bytes());

            let Err(ApiError::InvalidJson(error)) = refused else {
                panic!("{body} was accepted");
            };
            assert!(error.is_data(), "{error}");
            assert!(error.to_string().contains(&format!("{name:?}")), "{error}");
        }
    }
}
