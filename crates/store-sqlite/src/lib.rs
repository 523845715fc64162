//! The embedded SQLite durable store: one file, WAL mode, nothing to install.
//!
//! All writes go through one writer thread that commits them in groups: it
//! takes every write waiting in its queue, runs them in one transaction and
//! commits once. A second thread flushes the log to disk behind it (one
//! fsync for every group committed meanwhile) and only then answers the
//! callers, so a caller never hears "done" before its write is durable, and
//! the writer never waits for the disk (see `writer.rs`). SQLite allows one
//! writer at a time anyway; batching turns that into throughput instead of
//! lock contention. Reads use their own connections, which WAL lets run
//! beside the writer.

mod checkpoint;
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

use crate::checkpoint::Checkpointer;
use crate::readers::ReaderPool;
use crate::writer::Writer;

/// The SQLite store; implements `oncepay_engine::DurableStore`.
#[derive(Debug)]
pub struct SqliteStore {
    // Dropped in this order: the writer commits what it holds first.
    writer: Writer,
    readers: ReaderPool,
    _checkpoints: Checkpointer,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, in WAL mode, and applies
    /// the migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(unavailable)?;
        configure(&connection)?;
        schema::migrate(&connection)?;
        let writer = Writer::start(connection)?;
        Ok(Self {
            readers: ReaderPool::new(path, writer.horizon()),
            writer,
            _checkpoints: Checkpointer::start(path)?,
        })
    }
}

/// Pragmas every connection of the store uses.
///
/// `synchronous = NORMAL`: a commit writes the log but does not wait for the
/// disk; the writer's flush thread does, before any caller is answered, so
/// every confirmed write is as durable as with `FULL`, and one fsync serves
/// all the groups committed while the previous one ran. Checkpoints still
/// flush the log before copying it into the database file. The
/// writer leaves most checkpoint work to its own thread (`checkpoint.rs`),
/// and a log that grew during a burst is cut back to 64 MiB once copied.
fn configure(connection: &Connection) -> Result<(), StoreError> {
    connection
        .pragma_update(None, "journal_mode", "WAL")
        .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
        .and_then(|()| connection.pragma_update(None, "foreign_keys", "ON"))
        .and_then(|()| {
            connection.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_FRAMES)
        })
        .and_then(|()| connection.pragma_update(None, "journal_size_limit", 64 << 20))
        .and_then(|()| connection.busy_timeout(std::time::Duration::from_secs(5)))
        .map_err(unavailable)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    limit_page_cache(connection, WRITER_CACHE_KIB)
}

/// Page cache of the writer's connection, in KiB (SQLite's own default,
/// written out): the upper levels of the indexes every payment inserts
/// into stay in memory.
const WRITER_CACHE_KIB: i64 = 2000;

/// Page cache of every other connection (readers, checkpoints) and of each
/// connection's temporary database, in KiB. A reader looks up a row by key
/// or reads one page of a list; what it misses comes from the operating
/// system's file cache.
pub(crate) const HELPER_CACHE_KIB: i64 = 64;

/// Sets how much page cache a connection may keep, for its database and
/// for its temporary one.
///
/// The bundled SQLite is built with `SQLITE_ENABLE_MEMORY_MANAGEMENT`, so
/// the page caches of all connections in the process form one pool, as
/// large as the sum of every cache's limit, and any one connection may fill
/// what the others leave unused. With SQLite's default of 2 000 KiB
/// everywhere, the writer slowly took the unused shares of the checkpoint
/// connection, the readers and its own temporary database (which it barely
/// uses): SQLite's memory grew by about 0.75 MiB a minute through a soak.
/// Small limits for everything but the writer keep the pool near the
/// writer's own 2 MiB, which it fills within seconds.
pub(crate) fn limit_page_cache(connection: &Connection, kib: i64) -> Result<(), StoreError> {
    connection
        .pragma_update(None, "cache_size", -kib)
        .and_then(|()| {
            connection.pragma_update(
                Some(rusqlite::DatabaseName::Temp),
                "cache_size",
                -HELPER_CACHE_KIB,
            )
        })
        .map_err(unavailable)
}

/// Runs one statement through the connection's cache of prepared
/// statements: parsing SQL costs more than most of these writes themselves.
pub(crate) fn execute(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<usize, StoreError> {
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(unavailable)
}

/// Reads at most one row with a cached prepared statement.
pub(crate) fn query_one<T>(
    connection: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    use rusqlite::OptionalExtension;
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(params, read).optional())
        .map_err(unavailable)
}

/// Log length, in pages, at which the writer checkpoints itself between two
/// groups. See `checkpoint.rs`: the background thread copies most pages long
/// before, but only a checkpoint with no write running can finish, and only
/// a finished one lets the log start over. Without this the log grows for as
/// long as writes keep coming (seen: 4.4 GB in a 4-minute soak).
const WRITER_CHECKPOINT_FRAMES: i64 = 2000;

/// Statements each connection keeps prepared; more than the store uses.
const STATEMENT_CACHE: usize = 64;

pub(crate) fn unavailable(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `PRAGMA cache_size` of the connection's database and of its
    /// temporary one (negative: KiB).
    fn cache_sizes(connection: &Connection) -> Result<(i64, i64), StoreError> {
        let size = |schema: &str| {
            connection
                .query_row(&format!("PRAGMA {schema}.cache_size"), [], |row| row.get(0))
                .map_err(unavailable)
        };
        Ok((size("main")?, size("temp")?))
    }

    /// The page caches of every connection share one pool, so a reader or
    /// a temporary database left at SQLite's default would let the writer's
    /// cache (and the process) keep growing; see `limit_page_cache`.
    #[tokio::test]
    async fn only_the_writer_keeps_a_large_page_cache() -> Result<(), StoreError> {
        let dir =
            tempfile::tempdir().map_err(|error| StoreError::Unavailable(error.to_string()))?;
        let store = SqliteStore::open(&dir.path().join("oncepay.db"))?;
        let writer = store.writer.write(cache_sizes).await?;
        let reader = store.readers.read(cache_sizes).await?;
        assert_eq!(writer, (-WRITER_CACHE_KIB, -HELPER_CACHE_KIB));
        assert_eq!(reader, (-HELPER_CACHE_KIB, -HELPER_CACHE_KIB));
        Ok(())
    }
}
