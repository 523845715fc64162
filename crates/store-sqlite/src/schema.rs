//! Migrations, applied in order at start, each once.

use oncepay_engine::StoreError;
use rusqlite::Connection;

use crate::unavailable;

/// (version, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE payments (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        merchant TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        amount INTEGER NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        payment_method TEXT NOT NULL,
        description TEXT,
        metadata TEXT NOT NULL,
        psp_key TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        checked_at INTEGER NOT NULL,
        history TEXT NOT NULL
    );
    CREATE INDEX payments_by_merchant ON payments (merchant, seq DESC);
    CREATE INDEX payments_pending ON payments (checked_at) WHERE status = 'pending';

    CREATE TABLE idempotency_records (
        merchant TEXT NOT NULL,
        key TEXT NOT NULL,
        fingerprint TEXT,
        payment_id TEXT REFERENCES payments (id),
        lease_owner TEXT,
        lease_until INTEGER,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (merchant, key)
    );
    CREATE INDEX records_by_expiry ON idempotency_records (expires_at);
    CREATE INDEX records_leased ON idempotency_records (lease_until)
        WHERE lease_owner IS NOT NULL;

    CREATE TABLE status_events (
        payment_id TEXT NOT NULL REFERENCES payments (id),
        event_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (payment_id, event_id)
    );",
)];

/// Applies every migration the file has not seen yet, each in a transaction.
pub fn migrate(connection: &Connection) -> Result<(), StoreError> {
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_at INTEGER NOT NULL
            )",
        )
        .map_err(unavailable)?;
    for (version, sql) in MIGRATIONS {
        apply(connection, *version, sql).map_err(unavailable)?;
    }
    Ok(())
}

fn apply(connection: &Connection, version: i64, sql: &str) -> rusqlite::Result<()> {
    let applied: bool = connection.query_row(
        "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
        [version],
        |row| row.get(0),
    )?;
    if applied {
        return Ok(());
    }
    connection.execute_batch(&format!(
        "BEGIN IMMEDIATE;
         {sql};
         INSERT INTO schema_migrations (version, applied_at)
             VALUES ({version}, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
         COMMIT;"
    ))
}
