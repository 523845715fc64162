//! Migrations, applied in order at start, each once, even when several
//! processes start together (an advisory lock serialises them).

use oncepay_engine::StoreError;
use sqlx::{Executor, PgConnection, PgPool};

use crate::unavailable;

/// Any fixed number; names the advisory lock migrations hold.
const MIGRATION_LOCK: i64 = 0x006f_6e63_6570_6179;

/// (version, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE payments (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        merchant TEXT NOT NULL,
        idempotency_key TEXT NOT NULL,
        amount BIGINT NOT NULL,
        currency TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
        payment_method TEXT NOT NULL,
        description TEXT,
        metadata TEXT NOT NULL,
        psp_key TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        checked_at BIGINT NOT NULL,
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
        lease_until BIGINT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        PRIMARY KEY (merchant, key)
    );
    CREATE INDEX records_by_expiry ON idempotency_records (expires_at);
    CREATE INDEX records_leased ON idempotency_records (lease_until)
        WHERE lease_owner IS NOT NULL;
    CREATE INDEX records_by_payment ON idempotency_records (payment_id);
    CREATE TABLE status_events (
        payment_id TEXT NOT NULL REFERENCES payments (id),
        event_id TEXT NOT NULL,
        outcome TEXT NOT NULL,
        received_at BIGINT NOT NULL,
        PRIMARY KEY (payment_id, event_id)
    );",
)];

/// Applies every migration the database has not seen yet.
pub async fn migrate(pool: &PgPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    apply_all(&mut tx).await?;
    tx.commit().await.map_err(unavailable)
}

async fn apply_all(tx: &mut PgConnection) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    let create = "CREATE TABLE IF NOT EXISTS schema_migrations (
        version BIGINT PRIMARY KEY,
        applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )";
    Executor::execute(&mut *tx, create)
        .await
        .map_err(unavailable)?;
    // An owned list: a slice iterator held across an await trips rustc's
    // higher-ranked `Send` inference for callers in async traits.
    for (version, sql) in MIGRATIONS.to_vec() {
        apply(tx, version, sql).await?;
    }
    Ok(())
}

async fn apply(tx: &mut PgConnection, version: i64, sql: &'static str) -> Result<(), StoreError> {
    let applied: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)")
            .bind(version)
            .fetch_one(&mut *tx)
            .await
            .map_err(unavailable)?;
    if applied {
        return Ok(());
    }
    Executor::execute(&mut *tx, sql)
        .await
        .map_err(unavailable)?;
    sqlx::query("INSERT INTO schema_migrations (version) VALUES ($1)")
        .bind(version)
        .execute(&mut *tx)
        .await
        .map_err(unavailable)?;
    Ok(())
}
