//! What driver errors mean to the store.
//!
//! Two server refusals are part of normal operation and become decisions:
//! a duplicate key (another writer created the document first) and a write
//! conflict (another writer changed it at the same moment). Undecodable
//! documents are corrupt; everything else, from a refused connection to a
//! failed election, is the store being unavailable.

use mongodb::error::{Error, ErrorKind, WriteFailure};
use oncepay_engine::StoreError;

/// The server's code for a unique index violation.
const DUPLICATE_KEY: i32 = 11000;
/// The server's code for two writers racing on one document. MongoDB retries
/// these itself outside transactions, so they should not reach us; a
/// compatible server that passes them on is handled all the same.
const WRITE_CONFLICT: i32 = 112;

/// A write that lost to another writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The unique index already holds the key.
    DuplicateKey,
    /// Another writer changed the document at the same moment.
    WriteConflict,
}

/// The refusal behind `error`, if it is one.
pub fn refusal(error: &Error) -> Option<Refusal> {
    let code = match error.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(failure)) => failure.code,
        ErrorKind::Command(failure) => failure.code,
        _ => return None,
    };
    match code {
        DUPLICATE_KEY => Some(Refusal::DuplicateKey),
        WRITE_CONFLICT => Some(Refusal::WriteConflict),
        _ => None,
    }
}

/// Splits a write's result into done, lost to another writer (`None`), or
/// failed.
pub fn unless_refused<T>(result: Result<T, Error>) -> Result<Option<T>, StoreError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(error) if refusal(&error).is_some() => Ok(None),
        Err(error) => Err(store_error(error)),
    }
}

/// Maps a driver error that is not a decision.
pub fn store_error(error: Error) -> StoreError {
    match error.kind.as_ref() {
        ErrorKind::BsonDeserialization(_) => StoreError::Corrupt(error.to_string()),
        _ => StoreError::Unavailable(error.to_string()),
    }
}
