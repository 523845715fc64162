//! Migrations, applied in order at start, each once.

use oncepay_engine::StoreError;
use rusqlite::{Connection, OptionalExtension};

use tracing::info;

use crate::unavailable;

/// (version, SQL). Append only: a released migration never changes.
///
/// Migrations run with foreign keys off, as SQLite requires for rebuilding a
/// table that others refer to, and each is checked against them before it
/// commits (see [`apply`]).
const MIGRATIONS: &[(i64, &str)] = &[
    (
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
    ),
    // `payments` without two costs on every insert, found profiling `first`:
    // AUTOINCREMENT updated `sqlite_sequence` for each row, and a UNIQUE
    // index on `psp_key` that nothing reads (each key holds 80 random bits
    // of its own). Payments are never deleted, so a plain INTEGER PRIMARY
    // KEY still numbers them in order, as listing needs. Rebuilding copies
    // every payment once, at the first start after an upgrade.
    (
        2,
        "CREATE TABLE payments_rebuilt (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            merchant TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            amount INTEGER NOT NULL,
            currency TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
            payment_method TEXT NOT NULL,
            description TEXT,
            metadata TEXT NOT NULL,
            psp_key TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            checked_at INTEGER NOT NULL,
            history TEXT NOT NULL
        );
        INSERT INTO payments_rebuilt (seq, id, merchant, idempotency_key, amount, currency,
                status, payment_method, description, metadata, psp_key, created_at,
                updated_at, checked_at, history)
            SELECT seq, id, merchant, idempotency_key, amount, currency, status,
                payment_method, description, metadata, psp_key, created_at, updated_at,
                checked_at, history
            FROM payments ORDER BY seq;
        DROP TABLE payments;
        ALTER TABLE payments_rebuilt RENAME TO payments;
        CREATE INDEX payments_by_merchant ON payments (merchant, seq DESC);
        CREATE INDEX payments_pending ON payments (checked_at) WHERE status = 'pending';
        DELETE FROM sqlite_sequence WHERE name = 'payments';",
    ),
];

/// Applies every migration the file has not seen yet, each in a transaction,
/// and leaves foreign keys on.
pub fn migrate(connection: &Connection) -> Result<(), StoreError> {
    migrate_through(connection, i64::MAX)
}

fn migrate_through(connection: &Connection, last: i64) -> Result<(), StoreError> {
    connection
        .execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version INTEGER PRIMARY KEY,
                applied_at INTEGER NOT NULL
            );
            PRAGMA foreign_keys = OFF;",
        )
        .map_err(unavailable)?;
    let applied = MIGRATIONS
        .iter()
        .filter(|(version, _)| *version <= last)
        .try_for_each(|(version, sql)| apply(connection, *version, sql));
    // On again whatever happened: the store never writes with them off.
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(unavailable)?;
    applied
}

fn apply(connection: &Connection, version: i64, sql: &str) -> Result<(), StoreError> {
    let applied: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |row| row.get(0),
        )
        .map_err(unavailable)?;
    if applied {
        return Ok(());
    }
    info!(version, "applying schema migration");
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(unavailable)?;
    if let Err(error) = run_migration(connection, version, sql) {
        // SQLite may have rolled back already; the error that matters is
        // the migration's.
        let _ = connection.execute_batch("ROLLBACK");
        return Err(error);
    }
    connection.execute_batch("COMMIT").map_err(unavailable)
}

fn run_migration(connection: &Connection, version: i64, sql: &str) -> Result<(), StoreError> {
    connection.execute_batch(sql).map_err(unavailable)?;
    let broken: Option<String> = connection
        .query_row("PRAGMA foreign_key_check", [], |row| row.get(0))
        .optional()
        .map_err(unavailable)?;
    if let Some(table) = broken {
        return Err(StoreError::Corrupt(format!(
            "migration {version} would leave rows of {table} pointing nowhere"
        )));
    }
    connection
        .execute(
            "INSERT INTO schema_migrations (version, applied_at)
                 VALUES (?1, CAST(strftime('%s', 'now') AS INTEGER) * 1000)",
            [version],
        )
        .map_err(unavailable)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use oncepay_domain::{IdempotencyKey, MerchantId, Payment, PaymentRequest};
    use oncepay_engine::DurableStore;

    use super::*;
    use crate::{SqliteStore, rows};

    fn payment(merchant: &MerchantId, amount: u64) -> Payment {
        let body = serde_json::json!({"amount": amount, "currency": "EUR", "payment_method": "pm"});
        let request = PaymentRequest::parse(&body).expect("valid request");
        Payment::pending(merchant.clone(), request, 1_000 + amount as i64)
    }

    fn index_names(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare("SELECT name FROM pragma_index_list('payments') ORDER BY name")
            .expect("index list");
        statement
            .query_map([], |row| row.get(0))
            .expect("index list")
            .collect::<Result<_, _>>()
            .expect("index names")
    }

    /// A file written before migration 2 keeps every payment, in order,
    /// with its key's record, and loses the AUTOINCREMENT counter and the
    /// index on PSP keys; foreign keys stay enforced and new payments still
    /// list first.
    #[tokio::test]
    async fn rebuilding_payments_keeps_them_in_order_with_their_records() -> Result<(), StoreError>
    {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let path = dir.path().join("old.db");
        let merchant = MerchantId::parse("m").expect("valid merchant");
        let old: Vec<Payment> = (1..=3).map(|n| payment(&merchant, n)).collect();
        {
            let connection = Connection::open(&path).map_err(unavailable)?;
            crate::configure(&connection)?;
            migrate_through(&connection, 1)?;
            assert_eq!(index_names(&connection).len(), 4, "migration 1's indexes");
            for (n, payment) in old.iter().enumerate() {
                let key = IdempotencyKey::from_stored(format!("key-{n}"));
                rows::insert(&connection, payment, &key)?;
                crate::execute(
                    &connection,
                    "INSERT INTO idempotency_records
                         (merchant, key, fingerprint, payment_id, created_at, expires_at)
                         VALUES ('m', ?1, 'f', ?2, 0, 1)",
                    rusqlite::params![key.as_str(), payment.id.as_str()],
                )?;
            }
        }

        let store = SqliteStore::open(&path)?;
        let listed = store.list(&merchant, None, 10).await?;
        let ids: Vec<_> = listed.payments.iter().map(|p| p.id.clone()).collect();
        let newest_first: Vec<_> = old.iter().rev().map(|p| p.id.clone()).collect();
        assert_eq!(ids, newest_first);
        drop(store);

        let connection = Connection::open(&path).map_err(unavailable)?;
        crate::configure(&connection)?;
        migrate(&connection)?;
        let table: String = connection
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'payments'",
                [],
                |row| row.get(0),
            )
            .map_err(unavailable)?;
        assert!(!table.contains("AUTOINCREMENT"), "{table}");
        let indexes = index_names(&connection);
        assert_eq!(indexes.len(), 3, "{indexes:?}");
        assert!(indexes.contains(&"payments_by_merchant".to_owned()));
        assert!(indexes.contains(&"payments_pending".to_owned()));
        let records: i64 = connection
            .query_row(
                "SELECT count(*) FROM idempotency_records r JOIN payments p ON p.id = r.payment_id",
                [],
                |row| row.get(0),
            )
            .map_err(unavailable)?;
        assert_eq!(records, 3);
        let dangling = crate::execute(
            &connection,
            "INSERT INTO idempotency_records
                 (merchant, key, fingerprint, payment_id, created_at, expires_at)
                 VALUES ('m', 'dangling', 'f', 'pay_nowhere', 0, 1)",
            [],
        );
        assert!(dangling.is_err(), "foreign keys are enforced again");

        let newer = payment(&merchant, 4);
        rows::insert(
            &connection,
            &newer,
            &IdempotencyKey::from_stored("key-4".to_owned()),
        )?;
        drop(connection);
        let store = SqliteStore::open(&path)?;
        let listed = store.list(&merchant, None, 1).await?;
        assert_eq!(listed.payments[0].id, newer.id);
        Ok(())
    }
}
