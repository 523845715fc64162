//! The PostgreSQL durable store.
//!
//! Every decision is one transaction at READ COMMITTED. What makes that
//! enough is written next to the code that relies on it (`claims.rs`): the
//! key's record row is locked with `SELECT ... FOR UPDATE` before anything is
//! decided, and the primary key on (merchant, key) settles the race between
//! two first requests. Many oncepay processes can share one database.

mod claims;
mod reads;
mod rows;
mod schema;
mod status_events;
mod store;

use std::time::Duration;

use oncepay_engine::StoreError;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// How long a session may sit idle inside a transaction.
const IDLE_IN_TRANSACTION: &str = "5s";
/// How long a statement may wait for a row lock.
const LOCK_WAIT: &str = "3s";
/// How long a statement may run.
const STATEMENT_LIMIT: &str = "10s";

/// The PostgreSQL store; implements `oncepay_engine::DurableStore`.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects with a pool of at most `pool_size` connections and applies
    /// the migrations.
    pub async fn connect(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.parse().map_err(unavailable)?;
        Self::connect_with(options, pool_size).await
    }

    /// Like [`PostgresStore::connect`], with options built by the caller
    /// (tests use it to put each test in its own schema).
    pub async fn connect_with(
        options: PgConnectOptions,
        pool_size: u32,
    ) -> Result<Self, StoreError> {
        // A process that freezes or loses its network mid-transaction would
        // otherwise hold its row locks, and every process retrying those
        // keys would wait behind it. The server ends such a session after
        // IDLE_IN_TRANSACTION (well inside a lease), and no statement waits
        // for a lock longer than LOCK_WAIT: the request gets a 503 instead
        // and records nothing.
        let options = options.options([
            ("idle_in_transaction_session_timeout", IDLE_IN_TRANSACTION),
            ("lock_timeout", LOCK_WAIT),
            ("statement_timeout", STATEMENT_LIMIT),
        ]);
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(unavailable)?;
        schema::migrate(&pool).await?;
        Ok(Self { pool })
    }
}

pub(crate) fn unavailable(error: sqlx::Error) -> StoreError {
    StoreError::Unavailable(error.to_string())
}
