//! The `Idempotency-Key` header as an extractor.
//!
//! Parsing rules (bare or RFC 8941 sf-string, 1 to 255 printable ASCII
//! characters, exactly one header) live in the domain crate; this module only
//! maps them onto the API's errors. The key itself is never logged: the
//! request span gets a short digest of it.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use oncepay_domain::{IdempotencyKey, KeyError};
use oncepay_engine::engine::key_digest;
use tracing::Span;

use crate::error::ApiError;

/// The header's name.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// A request's valid idempotency key.
#[derive(Debug, Clone)]
pub struct IdempotencyKeyHeader(pub IdempotencyKey);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let values: Vec<&[u8]> = parts
            .headers
            .get_all(IDEMPOTENCY_KEY)
            .iter()
            .map(|value| value.as_bytes())
            .collect();
        let key = IdempotencyKey::from_header_values(&values).map_err(|error| match error {
            KeyError::Missing => ApiError::MissingIdempotencyKey,
            other => ApiError::InvalidIdempotencyKey(other),
        })?;
        let span = Span::current();
        if !span.is_disabled() {
            span.record("idempotency_key", key_digest(&key));
        }
        Ok(Self(key))
    }
}
