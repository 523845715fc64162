//! Claims and settlements: every decision about a key, one transaction each.
//!
//! These run on the writer thread, inside the group's transaction, so no two
//! of them ever interleave; the primary key on (merchant, key) still refuses a
//! second record should that ever change.

use oncepay_domain::{IdempotencyKey, MerchantId, Payment};
use oncepay_engine::{Claim, ClaimOutcome, SettleOutcome, Settlement, StoreError};
use rusqlite::{Connection, params};

use crate::{execute, query_one, rows};

/// The parts of an idempotency record a claim decides on.
struct Record {
    fingerprint: Option<String>,
    payment_id: Option<String>,
    lease_owner: Option<String>,
    lease_until: Option<i64>,
}

fn load_record(
    connection: &Connection,
    merchant: &MerchantId,
    key: &IdempotencyKey,
) -> Result<Option<Record>, StoreError> {
    query_one(
        connection,
        "SELECT fingerprint, payment_id, lease_owner, lease_until
         FROM idempotency_records WHERE merchant = ?1 AND key = ?2",
        params![merchant.as_str(), key.as_str()],
        |row| {
            Ok(Record {
                fingerprint: row.get(0)?,
                payment_id: row.get(1)?,
                lease_owner: row.get(2)?,
                lease_until: row.get(3)?,
            })
        },
    )
}

/// Registers an issued key; an existing record for it is left alone.
pub fn issue_key(
    connection: &Connection,
    merchant: &MerchantId,
    key: &IdempotencyKey,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    execute(
        connection,
        "INSERT OR IGNORE INTO idempotency_records (merchant, key, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        params![merchant.as_str(), key.as_str(), now, expires_at],
    )?;
    Ok(())
}

/// Decides what a request on a key means; see [`ClaimOutcome`].
pub fn claim(connection: &Connection, claim: &Claim) -> Result<ClaimOutcome, StoreError> {
    let record = load_record(connection, &claim.merchant, &claim.key)?;
    let Some(Record {
        fingerprint: Some(recorded),
        payment_id,
        lease_owner,
        lease_until,
    }) = record
    else {
        return create(connection, claim);
    };
    if claim
        .fingerprint
        .as_ref()
        .is_some_and(|mine| mine.as_str() != recorded)
    {
        return Ok(ClaimOutcome::Mismatch);
    }
    let payment = load_guarded(connection, payment_id.as_deref())?;
    if let (Some(_), Some(until)) = (&lease_owner, lease_until)
        && until > claim.now_millis
    {
        return Ok(ClaimOutcome::InFlight {
            lease_until_millis: until,
        });
    }
    let took_over = lease_owner.is_some();
    if payment.status.is_final() {
        release_lease(connection, &claim.merchant, &claim.key)?;
        return Ok(ClaimOutcome::Finished(payment));
    }
    take_lease(connection, claim)?;
    Ok(ClaimOutcome::Resumed { payment, took_over })
}

/// Records the payment and the key's record together, with the lease held.
fn create(connection: &Connection, claim: &Claim) -> Result<ClaimOutcome, StoreError> {
    let Some(payment) = claim.new_payment.clone() else {
        return Ok(ClaimOutcome::Gone);
    };
    let fingerprint = claim.fingerprint.as_ref().map(|f| f.as_str());
    rows::insert(connection, &payment, &claim.key)?;
    execute(
        connection,
        "INSERT INTO idempotency_records
                (merchant, key, fingerprint, payment_id, lease_owner, lease_until,
                 created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (merchant, key) DO UPDATE SET
                fingerprint = excluded.fingerprint, payment_id = excluded.payment_id,
                lease_owner = excluded.lease_owner, lease_until = excluded.lease_until,
                expires_at = excluded.expires_at
             WHERE idempotency_records.fingerprint IS NULL",
        params![
            claim.merchant.as_str(),
            claim.key.as_str(),
            fingerprint,
            payment.id.as_str(),
            claim.lease.owner,
            claim.lease.until_millis,
            claim.now_millis,
            claim.expires_at_millis,
        ],
    )?;
    Ok(ClaimOutcome::Created(payment))
}

fn load_guarded(connection: &Connection, payment_id: Option<&str>) -> Result<Payment, StoreError> {
    let missing = || StoreError::Corrupt("an idempotency record points at no payment".to_owned());
    let id = payment_id.ok_or_else(missing)?;
    rows::load(connection, id)?.ok_or_else(missing)
}

fn take_lease(connection: &Connection, claim: &Claim) -> Result<(), StoreError> {
    execute(
        connection,
        "UPDATE idempotency_records SET lease_owner = ?3, lease_until = ?4
             WHERE merchant = ?1 AND key = ?2",
        params![
            claim.merchant.as_str(),
            claim.key.as_str(),
            claim.lease.owner,
            claim.lease.until_millis
        ],
    )?;
    Ok(())
}

fn release_lease(
    connection: &Connection,
    merchant: &MerchantId,
    key: &IdempotencyKey,
) -> Result<(), StoreError> {
    execute(
        connection,
        "UPDATE idempotency_records SET lease_owner = NULL, lease_until = NULL
             WHERE merchant = ?1 AND key = ?2",
        params![merchant.as_str(), key.as_str()],
    )?;
    Ok(())
}

/// The row a settlement writes when nothing touched the payment since its
/// claim: prepared by the caller, so the writer thread only binds it.
pub struct PlannedRow {
    status: &'static str,
    updated_at: i64,
    history_before: String,
    history_after: String,
}

/// The payment as the settlement leaves it if nothing changed it since the
/// claim, and the row that records it.
pub fn plan_settlement(settlement: &Settlement) -> Result<(Payment, PlannedRow), StoreError> {
    let mut settled = Payment::clone(&settlement.payment);
    settlement.apply_to(&mut settled);
    let row = PlannedRow {
        status: settled.status.as_str(),
        updated_at: settled.updated_at_millis,
        history_before: rows::to_json(&settlement.payment.history)?,
        history_after: rows::to_json(&settled.history)?,
    };
    Ok((settled, row))
}

/// What [`settle`] did.
pub enum Settled {
    /// The planned row was written and the lease released.
    AsPlanned,
    /// Something else happened (rarely); the outcome says what.
    Otherwise(Box<SettleOutcome>),
}

/// Records what the PSP said and releases the lease, if it is still ours.
///
/// Two statements in the usual case: release the lease only if this attempt
/// still holds it, then write the planned row only if the payment's history
/// is still the one the claim read. A payment that a signed status update
/// settled meanwhile has a longer history; it is read back and the PSP's
/// answer applied to it as it stands.
pub fn settle(
    connection: &Connection,
    settlement: &Settlement,
    planned: &PlannedRow,
) -> Result<Settled, StoreError> {
    let id = settlement.payment.id.as_str();
    let released = execute(
        connection,
        "UPDATE idempotency_records SET lease_owner = NULL, lease_until = NULL
             WHERE merchant = ?1 AND key = ?2 AND lease_owner = ?3",
        params![
            settlement.merchant.as_str(),
            settlement.key.as_str(),
            settlement.lease_owner
        ],
    )?;
    if released == 0 {
        let payment = load_guarded(connection, Some(id))?;
        return Ok(Settled::Otherwise(Box::new(SettleOutcome::LeaseLost(
            payment,
        ))));
    }
    let written = execute(
        connection,
        "UPDATE payments SET status = ?2, updated_at = ?3, history = ?4, checked_at = ?5
             WHERE id = ?1 AND history = ?6",
        params![
            id,
            planned.status,
            planned.updated_at,
            planned.history_after,
            settlement.now_millis,
            planned.history_before,
        ],
    )?;
    if written == 1 {
        return Ok(Settled::AsPlanned);
    }
    let mut payment = load_guarded(connection, Some(id))?;
    settlement.apply_to(&mut payment);
    rows::update_status(connection, &payment, Some(settlement.now_millis))?;
    Ok(Settled::Otherwise(Box::new(SettleOutcome::Settled(
        payment,
    ))))
}
