//! The embedded SQLite durable store: one file, WAL mode, nothing to install.
//!
//! All writes go through one writer thread that commits them in groups: it
//! takes every write waiting in its queue, runs each inside its own savepoint
//! of one transaction, commits once (one fsync for the group) and only then
//! answers the callers. SQLite allows one writer at a time anyway; batching
//! turns that into throughput instead of lock contention, and a caller never
//! hears "done" before its write is durable. Reads use their own connections,
//! which WAL lets run beside the writer.

mod claims;
mod readers;
mod reads;
mod rows;
mod schema;
mod status_events;
mod store;
mod writer;

use std::path::Path;

use oncepay_engine::StoreError;
use rusqlite::Connection;

use crate::readers::ReaderPool;
use crate::writer::Writer;

/// The SQLite store; implements `oncepay_engine::DurableStore`.
#[derive(Debug)]
pub struct SqliteStore {
    writer: Writer,
    readers: ReaderPool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, in WAL mode, and applies
    /// the migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(unavailable)?;
        configure(&connection)?;
        schema::migrate(&connection)?;
        Ok(Self {
            writer: Writer::start(connection)?,
            readers: ReaderPool::new(path),
        })
    }
}

/// Pragmas every connection of the store uses.
///
/// `synchronous = FULL` makes each commit durable (fsync of the WAL), which
/// the group commit pays once per batch rather than once per request.
fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .and_then(|()| connection.pragma_update(None, "synchronous", "FULL"))
        .and_then(|()| connection.pragma_update(None, "foreign_keys", "ON"))
        .and_then(|()| connection.busy_timeout(std::time::Duration::from_secs(5)))
        .map_err(unavailable)
}

pub(crate) fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}
