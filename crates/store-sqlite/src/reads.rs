//! Queries that change nothing: one payment, the list, stalled keys.

use oncepay_domain::{IdempotencyKey, MerchantId, Payment, PaymentId};
use oncepay_engine::{Cursor, Page, PageQuery, StoreError};
use rusqlite::{Connection, params};

use crate::rows::{self, payment_columns};
use crate::{execute, query_one, unavailable};

/// One payment of a merchant.
pub fn payment(
    connection: &Connection,
    merchant: &MerchantId,
    id: &PaymentId,
) -> Result<Option<Payment>, StoreError> {
    let sql = concat!(
        "SELECT ",
        payment_columns!(),
        " FROM payments WHERE id = ?1 AND merchant = ?2"
    );
    query_one(
        connection,
        sql,
        params![id.as_str(), merchant.as_str()],
        rows::from_row,
    )?
    .transpose()
    .map(|stored| stored.map(|stored| stored.payment))
}

/// A page of the merchant's payments, newest first, strictly after `cursor`.
pub fn list(
    connection: &Connection,
    merchant: &MerchantId,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<Page, StoreError> {
    let sql = concat!(
        "SELECT ",
        payment_columns!(),
        " FROM payments WHERE merchant = ?1 AND seq < ?2 ORDER BY seq DESC LIMIT ?3"
    );
    let query = PageQuery::new(cursor, limit);
    let mut statement = connection.prepare_cached(sql).map_err(unavailable)?;
    let fetched = statement
        .query_map(
            params![merchant.as_str(), query.before, query.fetch],
            rows::from_row,
        )
        .map_err(unavailable)?
        .map(|row| row.map_err(unavailable)?.map(|s| (s.seq, s.payment)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(query.page(fetched))
}

/// Keys with a lapsed lease, then keys guarding a pending payment the PSP
/// was last asked about before `checked_before`.
pub fn stalled(
    connection: &Connection,
    now: i64,
    checked_before: i64,
    limit: usize,
) -> Result<Vec<(MerchantId, IdempotencyKey)>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut statement = connection
        .prepare_cached(
            "SELECT merchant, key FROM idempotency_records
             WHERE lease_owner IS NOT NULL AND lease_until <= ?1
             UNION
             SELECT p.merchant, p.idempotency_key FROM payments p
             JOIN idempotency_records r ON r.merchant = p.merchant AND r.key = p.idempotency_key
             WHERE p.status = 'pending' AND p.checked_at <= ?2 AND r.lease_owner IS NULL
             LIMIT ?3",
        )
        .map_err(unavailable)?;
    let keys = statement
        .query_map(params![now, checked_before, limit], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })
        .map_err(unavailable)?
        .map(|row| {
            let (merchant, key) = row.map_err(unavailable)?;
            let merchant = MerchantId::parse(&merchant)
                .ok_or_else(|| StoreError::Corrupt(format!("merchant {merchant:?}")))?;
            Ok((merchant, IdempotencyKey::from_stored(key)))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(keys)
}

/// Deletes records past expiry that no longer guard a pending payment.
///
/// A payment that settled late keeps its record for a whole retention period
/// after its last change (the record's own span, `expires_at - created_at`),
/// so a client told "pending" a moment ago can still retry safely.
pub fn reap(connection: &Connection, now: i64, limit: usize) -> Result<u64, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let deleted = execute(
        connection,
        "DELETE FROM idempotency_records WHERE rowid IN (
                SELECT r.rowid FROM idempotency_records r
                LEFT JOIN payments p ON p.id = r.payment_id
                WHERE r.expires_at <= ?1 AND r.lease_owner IS NULL
                  AND (p.id IS NULL
                       OR (p.status != 'pending'
                           AND p.updated_at + (r.expires_at - r.created_at) <= ?1))
                LIMIT ?2)",
        params![now, limit],
    )?;
    Ok(deleted as u64)
}
