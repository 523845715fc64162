//! Request bodies: raw bytes within the size limit, and JSON values.
//!
//! The size limit itself is axum's `DefaultBodyLimit`, set by the router;
//! [`RawBody`] turns its refusal into the `payload-too-large` problem.
//! Handlers read JSON from the raw bytes with [`parse_json`], so they can
//! look at the bytes first (a byte-identical payment retry is replayed
//! unread). The `Content-Type` of a body is not checked: it only has to
//! parse.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde_json::Value;

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
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(bytes).map_err(ApiError::InvalidJson)
}
