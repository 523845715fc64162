//! Payments as rows: the mapping between the domain type and the table.

use oncepay_domain::{
    Amount, Currency, IdempotencyKey, MerchantId, Money, Payment, PaymentId, PaymentStatus, PspKey,
};
use oncepay_engine::StoreError;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::unavailable;

/// The columns every payment query selects, in the order `from_row` reads.
pub const PAYMENT_COLUMNS: &str = "seq, id, merchant, amount, currency, status, payment_method, \
     description, metadata, psp_key, created_at, updated_at, history";

/// A payment and its position in the merchant's list.
pub struct StoredPayment {
    pub seq: i64,
    pub payment: Payment,
}

/// Reads one row selected with [`PAYMENT_COLUMNS`].
pub fn from_row(row: &PgRow) -> Result<StoredPayment, StoreError> {
    let id: String = row.try_get(1).map_err(unavailable)?;
    let corrupt = |what: &str| StoreError::Corrupt(format!("payment {id}: {what}"));
    let text = |index: usize| row.try_get::<String, _>(index).map_err(unavailable);
    let number = |index: usize| row.try_get::<i64, _>(index).map_err(unavailable);
    let payment = Payment {
        id: PaymentId::from_stored(id.clone()),
        merchant: MerchantId::parse(&text(2)?).ok_or_else(|| corrupt("merchant"))?,
        money: Money {
            amount: Amount::parse(number(3)?).map_err(|_| corrupt("amount"))?,
            currency: Currency::parse(&text(4)?).map_err(|_| corrupt("currency"))?,
        },
        status: PaymentStatus::parse(&text(5)?).ok_or_else(|| corrupt("status"))?,
        payment_method: text(6)?,
        description: row.try_get(7).map_err(unavailable)?,
        metadata: serde_json::from_str(&text(8)?).map_err(|_| corrupt("metadata"))?,
        psp_key: PspKey::from_stored(text(9)?),
        created_at_millis: number(10)?,
        updated_at_millis: number(11)?,
        history: serde_json::from_str(&text(12)?).map_err(|_| corrupt("history"))?,
    };
    Ok(StoredPayment {
        seq: number(0)?,
        payment,
    })
}

/// Loads a payment by id, whatever its merchant.
pub async fn load(connection: &mut PgConnection, id: &str) -> Result<Option<Payment>, StoreError> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(connection)
        .await
        .map_err(unavailable)?;
    row.map(|row| from_row(&row).map(|stored| stored.payment))
        .transpose()
}

/// Loads a payment by id and locks its row until the transaction ends.
pub async fn lock(connection: &mut PgConnection, id: &str) -> Result<Option<Payment>, StoreError> {
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1 FOR UPDATE");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(connection)
        .await
        .map_err(unavailable)?;
    row.map(|row| from_row(&row).map(|stored| stored.payment))
        .transpose()
}

/// Records a new payment, guarded by `key`.
pub async fn insert(
    connection: &mut PgConnection,
    payment: &Payment,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO payments (id, merchant, idempotency_key, amount, currency, status,
            payment_method, description, metadata, psp_key, created_at, updated_at,
            checked_at, history)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11, $13)",
    )
    .bind(payment.id.as_str())
    .bind(payment.merchant.as_str())
    .bind(key.as_str())
    .bind(payment.money.amount.minor_units())
    .bind(payment.money.currency.code())
    .bind(payment.status.as_str())
    .bind(&payment.payment_method)
    .bind(&payment.description)
    .bind(to_json(&payment.metadata)?)
    .bind(payment.psp_key.as_str())
    .bind(payment.created_at_millis)
    .bind(payment.updated_at_millis)
    .bind(to_json(&payment.history)?)
    .execute(connection)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Writes a payment's status and history, and when the PSP was last asked.
pub async fn update_status(
    connection: &mut PgConnection,
    payment: &Payment,
    checked_at: Option<i64>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE payments SET status = $2, updated_at = $3, history = $4,
            checked_at = COALESCE($5, checked_at)
         WHERE id = $1",
    )
    .bind(payment.id.as_str())
    .bind(payment.status.as_str())
    .bind(payment.updated_at_millis)
    .bind(to_json(&payment.history)?)
    .bind(checked_at)
    .execute(connection)
    .await
    .map_err(unavailable)?;
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}
