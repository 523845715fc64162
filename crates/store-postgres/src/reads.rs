//! Queries outside the claim path: one payment, the list, stalled keys, the
//! reaper.

use oncepay_domain::{IdempotencyKey, MerchantId, Payment, PaymentId};
use oncepay_engine::{Cursor, Page, PageQuery, StoreError};
use sqlx::{PgPool, Row};

use crate::rows::{self, PAYMENT_COLUMNS};
use crate::unavailable;

/// One payment of a merchant.
pub async fn payment(
    pool: &PgPool,
    merchant: &MerchantId,
    id: &PaymentId,
) -> Result<Option<Payment>, StoreError> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 AND merchant = $2");
    let row = sqlx::query(&sql)
        .bind(id.as_str())
        .bind(merchant.as_str())
        .fetch_optional(pool)
        .await
        .map_err(unavailable)?;
    row.map(|row| rows::from_row(&row).map(|stored| stored.payment))
        .transpose()
}

/// A page of the merchant's payments, newest first, strictly after `cursor`.
pub async fn list(
    pool: &PgPool,
    merchant: &MerchantId,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<Page, StoreError> {
    let sql = format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE merchant = $1 AND seq < $2
         ORDER BY seq DESC LIMIT $3"
    );
    let query = PageQuery::new(cursor, limit);
    let found = sqlx::query(&sql)
        .bind(merchant.as_str())
        .bind(query.before)
        .bind(query.fetch)
        .fetch_all(pool)
        .await
        .map_err(unavailable)?;
    let fetched = found
        .iter()
        .map(|row| rows::from_row(row).map(|s| (s.seq, s.payment)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(query.page(fetched))
}

/// Keys with a lapsed lease, then keys guarding a pending payment the PSP
/// was last asked about before `checked_before`.
pub async fn stalled(
    pool: &PgPool,
    now: i64,
    checked_before: i64,
    limit: usize,
) -> Result<Vec<(MerchantId, IdempotencyKey)>, StoreError> {
    let found = sqlx::query(
        "SELECT merchant, key FROM idempotency_records
         WHERE lease_owner IS NOT NULL AND lease_until <= $1
         UNION
         SELECT p.merchant, p.idempotency_key FROM payments p
         JOIN idempotency_records r ON r.merchant = p.merchant AND r.key = p.idempotency_key
         WHERE p.status = 'pending' AND p.checked_at <= $2 AND r.lease_owner IS NULL
         LIMIT $3",
    )
    .bind(now)
    .bind(checked_before)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(pool)
    .await
    .map_err(unavailable)?;
    found
        .iter()
        .map(|row| {
            let merchant: String = row.try_get(0).map_err(unavailable)?;
            let key: String = row.try_get(1).map_err(unavailable)?;
            let merchant = MerchantId::parse(&merchant)
                .ok_or_else(|| StoreError::Corrupt(format!("merchant {merchant:?}")))?;
            Ok((merchant, IdempotencyKey::from_stored(key)))
        })
        .collect()
}

/// Deletes records past expiry that no longer guard a pending payment.
///
/// A payment that settled late keeps its record for a whole retention period
/// after its last change (the record's own span, `expires_at - created_at`),
/// so a client told "pending" a moment ago can still retry safely.
pub async fn reap(pool: &PgPool, now: i64, limit: usize) -> Result<u64, StoreError> {
    let deleted = sqlx::query(
        "DELETE FROM idempotency_records WHERE (merchant, key) IN (
            SELECT r.merchant, r.key FROM idempotency_records r
            LEFT JOIN payments p ON p.id = r.payment_id
            WHERE r.expires_at <= $1 AND r.lease_owner IS NULL
              AND (p.id IS NULL
                   OR (p.status <> 'pending'
                       AND p.updated_at + (r.expires_at - r.created_at) <= $1))
            LIMIT $2
            FOR UPDATE OF r SKIP LOCKED)",
    )
    .bind(now)
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(deleted.rows_affected())
}
