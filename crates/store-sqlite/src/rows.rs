//! Payments as rows: the mapping between the domain type and the table.

use oncepay_domain::{
    Amount, Currency, IdempotencyKey, MerchantId, Money, Payment, PaymentId, PaymentStatus, PspKey,
};
use oncepay_engine::StoreError;
use rusqlite::{Connection, Row, params};

use crate::{execute, query_one};

/// The columns every payment query selects, in the order `from_row` reads;
/// a macro so that queries can be whole string literals, prepared once.
macro_rules! payment_columns {
    () => {
        "seq, id, merchant, amount, currency, status, payment_method, description, metadata, \
         psp_key, created_at, updated_at, history"
    };
}
pub(crate) use payment_columns;

/// A payment and its position in the merchant's list.
pub struct StoredPayment {
    pub seq: i64,
    pub payment: Payment,
}

/// Reads one row selected with [`PAYMENT_COLUMNS`].
pub fn from_row(row: &Row<'_>) -> rusqlite::Result<Result<StoredPayment, StoreError>> {
    let seq: i64 = row.get(0)?;
    let id: String = row.get(1)?;
    let merchant: String = row.get(2)?;
    let amount: i64 = row.get(3)?;
    let currency: String = row.get(4)?;
    let status: String = row.get(5)?;
    let payment_method: String = row.get(6)?;
    let description: Option<String> = row.get(7)?;
    let metadata: String = row.get(8)?;
    let psp_key: String = row.get(9)?;
    let created_at: i64 = row.get(10)?;
    let updated_at: i64 = row.get(11)?;
    let history: String = row.get(12)?;
    let parsed = (|| {
        let corrupt = |what: &str| StoreError::Corrupt(format!("payment {id}: {what}"));
        let payment = Payment {
            id: PaymentId::from_stored(id.clone()),
            merchant: MerchantId::parse(&merchant).ok_or_else(|| corrupt("merchant"))?,
            money: Money {
                amount: Amount::parse(amount).map_err(|_| corrupt("amount"))?,
                currency: Currency::parse(&currency).map_err(|_| corrupt("currency"))?,
            },
            status: PaymentStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
            payment_method,
            description,
            metadata: serde_json::from_str(&metadata).map_err(|_| corrupt("metadata"))?,
            psp_key: PspKey::from_stored(psp_key),
            created_at_millis: created_at,
            updated_at_millis: updated_at,
            history: serde_json::from_str(&history).map_err(|_| corrupt("history"))?,
        };
        Ok(StoredPayment { seq, payment })
    })();
    Ok(parsed)
}

/// Loads a payment by id, whatever its merchant.
pub fn load(connection: &Connection, id: &str) -> Result<Option<Payment>, StoreError> {
    let sql = concat!(
        "SELECT ",
        payment_columns!(),
        " FROM payments WHERE id = ?1"
    );
    query_one(connection, sql, [id], from_row)?
        .transpose()
        .map(|stored| stored.map(|stored| stored.payment))
}

/// Records a new payment, guarded by `key`.
pub fn insert(
    connection: &Connection,
    payment: &Payment,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    execute(
        connection,
        "INSERT INTO payments (id, merchant, idempotency_key, amount, currency, status,
                payment_method, description, metadata, psp_key, created_at, updated_at,
                checked_at, history)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11, ?13)",
        params![
            payment.id.as_str(),
            payment.merchant.as_str(),
            key.as_str(),
            payment.money.amount.minor_units(),
            payment.money.currency.code(),
            payment.status.as_str(),
            payment.payment_method,
            payment.description,
            to_json(&payment.metadata)?,
            payment.psp_key.as_str(),
            payment.created_at_millis,
            payment.updated_at_millis,
            to_json(&payment.history)?,
        ],
    )?;
    Ok(())
}

/// Writes a payment's status and history, and when the PSP was last asked.
pub fn update_status(
    connection: &Connection,
    payment: &Payment,
    checked_at: Option<i64>,
) -> Result<(), StoreError> {
    execute(
        connection,
        "UPDATE payments SET status = ?2, updated_at = ?3, history = ?4,
                checked_at = COALESCE(?5, checked_at)
             WHERE id = ?1",
        params![
            payment.id.as_str(),
            payment.status.as_str(),
            payment.updated_at_millis,
            to_json(&payment.history)?,
            checked_at,
        ],
    )?;
    Ok(())
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}
