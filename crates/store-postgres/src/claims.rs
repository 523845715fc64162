//! Claims and settlements: every decision about a key, one transaction each.
//!
//! Isolation is READ COMMITTED, on purpose, with explicit row locks:
//!
//! - A claim first locks the key's record with `SELECT ... FOR UPDATE`, so
//!   two claims on one existing key run one after the other, and the second
//!   sees what the first committed (READ COMMITTED re-reads a row after
//!   waiting for its lock).
//! - When the key is new there is no row to lock. Both racers then insert a
//!   payment and the record; the primary key on (merchant, key) makes the
//!   second insert wait for the first transaction, after which its
//!   `ON CONFLICT ... WHERE fingerprint IS NULL` matches nothing. That
//!   transaction rolls back, taking its payment with it, and the claim runs
//!   again: now it finds and locks the winner's record.
//! - A settlement locks the record, then the payment; a status update locks
//!   the payment. The order is always record before payment, so they cannot
//!   deadlock, and a status update and a settlement never interleave.
//!
//! SERIALIZABLE would give the same answers with retries on serialization
//! failures instead of waits; the locks keep the common path free of retries.

use oncepay_domain::{IdempotencyKey, MerchantId, Payment};
use oncepay_engine::{Claim, ClaimOutcome, SettleOutcome, Settlement, StoreError};
use sqlx::{PgConnection, PgPool, Row};

use crate::rows;
use crate::unavailable;

/// How often a claim that lost the insert race runs again; once is enough,
/// since the second run finds the winner's record.
const CLAIM_ATTEMPTS: usize = 3;

struct Record {
    fingerprint: Option<String>,
    payment_id: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
}

enum Decision {
    Decided(Box<ClaimOutcome>),
    LostInsertRace,
}

async fn lock_record(
    tx: &mut PgConnection,
    merchant: &MerchantId,
    key: &IdempotencyKey,
) -> Result<Option<Record>, StoreError> {
    let row = sqlx::query(
        "SELECT fingerprint, payment_id, lease_owner, lease_until
         FROM idempotency_records WHERE merchant = $1 AND key = $2 FOR UPDATE",
    )
    .bind(merchant.as_str())
    .bind(key.as_str())
    .fetch_optional(tx)
    .await
    .map_err(unavailable)?;
    row.map(|row| {
        Ok(Record {
            fingerprint: row.try_get(0).map_err(unavailable)?,
            payment_id: row.try_get(1).map_err(unavailable)?,
            lease_owner: row.try_get(2).map_err(unavailable)?,
            lease_until: row.try_get(3).map_err(unavailable)?,
        })
    })
    .transpose()
}

/// Registers an issued key; an existing record for it is left alone.
pub async fn issue_key(
    pool: &PgPool,
    merchant: &MerchantId,
    key: &IdempotencyKey,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO idempotency_records (merchant, key, created_at, expires_at)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
    )
    .bind(merchant.as_str())
    .bind(key.as_str())
    .bind(now)
    .bind(expires_at)
    .execute(pool)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Decides what a request on a key means; see [`ClaimOutcome`].
pub async fn claim(pool: &PgPool, claim: &Claim) -> Result<ClaimOutcome, StoreError> {
    for _ in 0..CLAIM_ATTEMPTS {
        let mut tx = pool.begin().await.map_err(unavailable)?;
        match decide(&mut tx, claim).await? {
            Decision::Decided(outcome) => {
                tx.commit().await.map_err(unavailable)?;
                return Ok(*outcome);
            }
            Decision::LostInsertRace => tx.rollback().await.map_err(unavailable)?,
        }
    }
    Err(StoreError::Unavailable(
        "a claim kept losing the insert race".to_owned(),
    ))
}

async fn decide(tx: &mut PgConnection, claim: &Claim) -> Result<Decision, StoreError> {
    let record = lock_record(tx, &claim.merchant, &claim.key).await?;
    let Some(Record {
        fingerprint: Some(recorded),
        payment_id,
        lease_owner,
        lease_until,
    }) = record
    else {
        return create(tx, claim).await;
    };
    if claim
        .fingerprint
        .as_ref()
        .is_some_and(|mine| mine.as_str() != recorded)
    {
        return Ok(Decision::Decided(Box::new(ClaimOutcome::Mismatch)));
    }
    let payment = load_guarded(tx, payment_id.as_deref()).await?;
    if let (Some(_), Some(until)) = (&lease_owner, lease_until)
        && until > claim.now_millis
    {
        return Ok(Decision::Decided(Box::new(ClaimOutcome::InFlight {
            lease_until_millis: until,
        })));
    }
    let took_over = lease_owner.is_some();
    if payment.status.is_final() {
        set_lease(tx, &claim.merchant, &claim.key, None).await?;
        return Ok(Decision::Decided(Box::new(ClaimOutcome::Finished(payment))));
    }
    set_lease(
        tx,
        &claim.merchant,
        &claim.key,
        Some((&claim.lease.owner, claim.lease.until_millis)),
    )
    .await?;
    Ok(Decision::Decided(Box::new(ClaimOutcome::Resumed {
        payment,
        took_over,
    })))
}

async fn create(tx: &mut PgConnection, claim: &Claim) -> Result<Decision, StoreError> {
    let Some(payment) = &claim.new_payment else {
        return Ok(Decision::Decided(Box::new(ClaimOutcome::Gone)));
    };
    rows::insert(tx, payment, &claim.key).await?;
    let inserted = sqlx::query(
        "INSERT INTO idempotency_records
            (merchant, key, fingerprint, payment_id, lease_owner, lease_until, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (merchant, key) DO UPDATE SET
            fingerprint = excluded.fingerprint, payment_id = excluded.payment_id,
            lease_owner = excluded.lease_owner, lease_until = excluded.lease_until,
            expires_at = excluded.expires_at
         WHERE idempotency_records.fingerprint IS NULL",
    )
    .bind(claim.merchant.as_str())
    .bind(claim.key.as_str())
    .bind(claim.fingerprint.as_ref().map(|f| f.as_str()))
    .bind(payment.id.as_str())
    .bind(&claim.lease.owner)
    .bind(claim.lease.until_millis)
    .bind(claim.now_millis)
    .bind(claim.expires_at_millis)
    .execute(tx)
    .await
    .map_err(unavailable)?;
    if inserted.rows_affected() == 0 {
        return Ok(Decision::LostInsertRace);
    }
    Ok(Decision::Decided(Box::new(ClaimOutcome::Created(
        payment.clone(),
    ))))
}

async fn load_guarded(
    tx: &mut PgConnection,
    payment_id: Option<&str>,
) -> Result<Payment, StoreError> {
    let missing = || StoreError::Corrupt("an idempotency record points at no payment".to_owned());
    let id = payment_id.ok_or_else(missing)?;
    rows::load(tx, id).await?.ok_or_else(missing)
}

async fn set_lease(
    tx: &mut PgConnection,
    merchant: &MerchantId,
    key: &IdempotencyKey,
    lease: Option<(&str, i64)>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE idempotency_records SET lease_owner = $3, lease_until = $4
         WHERE merchant = $1 AND key = $2",
    )
    .bind(merchant.as_str())
    .bind(key.as_str())
    .bind(lease.map(|(owner, _)| owner))
    .bind(lease.map(|(_, until)| until))
    .execute(tx)
    .await
    .map_err(unavailable)?;
    Ok(())
}

/// Records what the PSP said and releases the lease, if it is still ours.
pub async fn settle(pool: &PgPool, settlement: Settlement) -> Result<SettleOutcome, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let record = lock_record(&mut tx, &settlement.merchant, &settlement.key).await?;
    let mut payment = rows::lock(&mut tx, settlement.payment.id.as_str())
        .await?
        .ok_or_else(|| StoreError::Corrupt("a settlement names no payment".to_owned()))?;
    let still_ours = record
        .and_then(|record| record.lease_owner)
        .is_some_and(|owner| owner == settlement.lease_owner);
    if !still_ours {
        return Ok(SettleOutcome::LeaseLost(payment));
    }
    settlement.apply_to(&mut payment);
    rows::update_status(&mut tx, &payment, Some(settlement.now_millis)).await?;
    set_lease(&mut tx, &settlement.merchant, &settlement.key, None).await?;
    tx.commit().await.map_err(unavailable)?;
    Ok(SettleOutcome::Settled(payment))
}
