//! Claims and settlements, as single-document writes that each check the
//! state they expect.
//!
//! A new key is claimed in two steps:
//!
//! 1. Insert the idempotency record, naming a payment id generated before
//!    and carrying the payment itself, and holding the lease. The unique
//!    index on (merchant, key) lets exactly one racer through; the others get
//!    a duplicate key, read the winner's record and answer from it.
//! 2. Insert the payment, now that the key is won, so a lost race never
//!    leaves a payment behind in anyone's list.
//!
//! A crash between the two leaves a leased record whose payment is absent.
//! Readers treat that as in flight (lists and lookups just do not show it
//! yet). Once the lease lapses, the next claim on the key, a retry or the
//! recovery job, takes the lease over and finishes step 2 from the copy in
//! the record. Nothing reached the PSP before step 2, so the resumed attempt
//! is the first charge; if the crashed attempt's insert lands after all, the
//! unique `_id` makes the two inserts one.
//!
//! Every later change to a record (take the lease, release it) is a
//! conditional update naming the lease holder it expects, so of two racers
//! exactly one succeeds and the other reads the record again.

use mongodb::bson::{Bson, Document, doc};
use oncepay_domain::{IdempotencyKey, MerchantId, Payment};
use oncepay_engine::{Claim, ClaimOutcome, SettleOutcome, Settlement, StoreError};
use tracing::warn;

use crate::MongoStore;
use crate::documents::{PaymentDoc, RecordDoc};
use crate::errors::{store_error, unless_refused};
use crate::payments::{self, ATTEMPTS};
use crate::retention::{mark_purgeable, purge_after};

/// What one pass over a key decided.
enum Step {
    Decided(Box<ClaimOutcome>),
    /// Another writer changed the record between our read and our write.
    Raced,
}

impl Step {
    fn decided(outcome: ClaimOutcome) -> Self {
        Self::Decided(Box::new(outcome))
    }
}

fn key_filter(merchant: &str, key: &str) -> Document {
    doc! { "merchant": merchant, "key": key }
}

/// Registers an issued key; an existing record for it is left alone.
pub async fn issue_key(
    store: &MongoStore,
    merchant: &MerchantId,
    key: &IdempotencyKey,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let lifetime = expires_at.saturating_sub(now).max(0);
    let record = RecordDoc {
        merchant: merchant.as_str().to_owned(),
        key: key.as_str().to_owned(),
        fingerprint: None,
        payment_id: None,
        payment: None,
        lease_owner: None,
        lease_until: None,
        created_at: now,
        expires_at,
        retention_ms: lifetime,
        // It guards nothing, so the TTL index may take it once it expires.
        purge_after: Some(purge_after(lifetime)),
    };
    unless_refused(store.records.insert_one(&record).await)?;
    Ok(())
}

/// Decides what a request on a key means; see [`ClaimOutcome`].
pub async fn claim(store: &MongoStore, claim: &Claim) -> Result<ClaimOutcome, StoreError> {
    for _ in 0..ATTEMPTS {
        if let Step::Decided(outcome) = decide(store, claim).await? {
            return Ok(*outcome);
        }
    }
    Err(StoreError::Unavailable(
        "a claim kept racing other writers".to_owned(),
    ))
}

async fn decide(store: &MongoStore, claim: &Claim) -> Result<Step, StoreError> {
    let filter = key_filter(claim.merchant.as_str(), claim.key.as_str());
    let record = store.records.find_one(filter).await.map_err(store_error)?;
    let Some(record) = record else {
        return create(store, claim).await;
    };
    match record.payment_id.clone() {
        None => adopt_issued(store, claim).await,
        Some(id) => answer_guarded(store, claim, record, &id).await,
    }
}

/// The record a claim on a new key writes.
fn new_record(claim: &Claim, payment: &Payment) -> RecordDoc {
    let retention_ms = claim
        .expires_at_millis
        .saturating_sub(claim.now_millis)
        .max(0);
    RecordDoc {
        merchant: claim.merchant.as_str().to_owned(),
        key: claim.key.as_str().to_owned(),
        fingerprint: claim.fingerprint.as_ref().map(|f| f.as_str().to_owned()),
        payment_id: Some(payment.id.as_str().to_owned()),
        payment: Some(PaymentDoc::new(payment, &claim.key, retention_ms)),
        lease_owner: Some(claim.lease.owner.clone()),
        lease_until: Some(claim.lease.until_millis),
        created_at: claim.now_millis,
        expires_at: claim.expires_at_millis,
        retention_ms,
        purge_after: None,
    }
}

async fn create(store: &MongoStore, claim: &Claim) -> Result<Step, StoreError> {
    let Some(payment) = &claim.new_payment else {
        return Ok(Step::decided(ClaimOutcome::Gone));
    };
    let record = new_record(claim, payment);
    let won = unless_refused(store.records.insert_one(&record).await)?;
    if won.is_none() {
        return Ok(Step::Raced);
    }
    let created = payments::insert(store, guarded_payment(record)?).await?;
    Ok(Step::decided(ClaimOutcome::Created(created)))
}

/// Turns a key issued by oncepay into a claimed one. The replacement drops
/// `purge_after`, so the TTL index lets go of the record in the same write.
async fn adopt_issued(store: &MongoStore, claim: &Claim) -> Result<Step, StoreError> {
    let Some(payment) = &claim.new_payment else {
        return Ok(Step::decided(ClaimOutcome::Gone));
    };
    let record = new_record(claim, payment);
    let mut filter = key_filter(&record.merchant, &record.key);
    filter.insert("payment_id", Bson::Null);
    let replaced = store.records.replace_one(filter, &record).await;
    let adopted = unless_refused(replaced)?.is_some_and(|result| result.matched_count == 1);
    if !adopted {
        return Ok(Step::Raced);
    }
    let created = payments::insert(store, guarded_payment(record)?).await?;
    Ok(Step::decided(ClaimOutcome::Created(created)))
}

/// Answers a claim on a key that already guards payment `id`.
async fn answer_guarded(
    store: &MongoStore,
    claim: &Claim,
    record: RecordDoc,
    id: &str,
) -> Result<Step, StoreError> {
    if claim
        .fingerprint
        .as_ref()
        .is_some_and(|mine| record.fingerprint.as_deref() != Some(mine.as_str()))
    {
        return Ok(Step::decided(ClaimOutcome::Mismatch));
    }
    if let (Some(owner), Some(until)) = (&record.lease_owner, record.lease_until)
        && until > claim.now_millis
    {
        if *owner == claim.lease.owner {
            // Our own insert, applied by the server although the driver saw
            // an error and retried it into a duplicate key.
            let created = payments::insert(store, guarded_payment(record)?).await?;
            return Ok(Step::decided(ClaimOutcome::Created(created)));
        }
        return Ok(Step::decided(ClaimOutcome::InFlight {
            lease_until_millis: until,
        }));
    }
    match payments::load(store, id).await? {
        None => finish_creation(store, claim, record).await,
        Some(current) => resume(store, claim, &record, current.to_payment()?).await,
    }
}

/// Takes over a key whose winner died before inserting the payment, and
/// inserts it from the record's copy.
async fn finish_creation(
    store: &MongoStore,
    claim: &Claim,
    record: RecordDoc,
) -> Result<Step, StoreError> {
    if !take_lease(store, claim, &record).await? {
        return Ok(Step::Raced);
    }
    let took_over = record.lease_owner.is_some();
    let payment = payments::insert(store, guarded_payment(record)?).await?;
    Ok(Step::decided(ClaimOutcome::Resumed { payment, took_over }))
}

/// Answers from a final payment, or takes the lease to work on a pending
/// one.
async fn resume(
    store: &MongoStore,
    claim: &Claim,
    record: &RecordDoc,
    payment: Payment,
) -> Result<Step, StoreError> {
    let took_over = record.lease_owner.is_some();
    if payment.status.is_final() {
        // A lapsed lease on a final payment is cleared, so recovery stops
        // listing the key.
        if took_over && !set_lease(store, record, None).await? {
            return Ok(Step::Raced);
        }
        return Ok(Step::decided(ClaimOutcome::Finished(payment)));
    }
    // The payment may still turn final between its read and the lease below
    // (a status update needs no lease). Resuming it is then one more PSP
    // call under the same PSP key, and the settlement keeps the status.
    if !take_lease(store, claim, record).await? {
        return Ok(Step::Raced);
    }
    Ok(Step::decided(ClaimOutcome::Resumed { payment, took_over }))
}

/// The payment a claimed record carries.
fn guarded_payment(record: RecordDoc) -> Result<PaymentDoc, StoreError> {
    record.payment.ok_or_else(|| {
        StoreError::Corrupt("an idempotency record carries no payment to insert".to_owned())
    })
}

async fn take_lease(
    store: &MongoStore,
    claim: &Claim,
    record: &RecordDoc,
) -> Result<bool, StoreError> {
    let lease = (claim.lease.owner.as_str(), claim.lease.until_millis);
    set_lease(store, record, Some(lease)).await
}

/// Replaces the lease `record` was read with; false when someone else
/// changed it first.
async fn set_lease(
    store: &MongoStore,
    record: &RecordDoc,
    lease: Option<(&str, i64)>,
) -> Result<bool, StoreError> {
    let mut filter = key_filter(&record.merchant, &record.key);
    filter.insert("payment_id", record.payment_id.as_deref());
    filter.insert("lease_owner", record.lease_owner.as_deref());
    let update = doc! { "$set": {
        "lease_owner": lease.map(|(owner, _)| owner),
        "lease_until": lease.map(|(_, until)| until),
    } };
    let updated = store.records.update_one(filter, update).await;
    Ok(unless_refused(updated)?.is_some_and(|result| result.matched_count == 1))
}

/// Records what the PSP said and releases the lease, if it is still ours.
///
/// Three writes, in this order:
///
/// 1. Release the lease, on condition that we hold it. This is the decision:
///    an attempt whose lease was taken over stops here, having written
///    nothing.
/// 2. Write the answer to the payment. A final status is written only while
///    the payment is pending, so neither a status update nor a newer lease
///    holder that got in after step 1 can be overwritten.
/// 3. Once the payment is final, let the TTL index have the record.
///
/// A crash after step 1 loses the PSP's answer but not the payment: it is
/// pending and unleased, so the recovery job or a retry asks the PSP again
/// under the same PSP key and gets the same answer. A crash after step 2
/// leaves the record to the reaper.
pub async fn settle(
    store: &MongoStore,
    settlement: Settlement,
) -> Result<SettleOutcome, StoreError> {
    let id = settlement.payment.id.as_str();
    let Some(retention_ms) = release_lease(store, &settlement).await? else {
        let payment = payments::load_named(store, id).await?.to_payment()?;
        return Ok(SettleOutcome::LeaseLost(payment));
    };
    let payment = record_answer(store, &settlement).await?;
    if payment.status.is_final() {
        let (merchant, key) = (settlement.merchant.as_str(), settlement.key.as_str());
        mark_purgeable(store, merchant, key, id, retention_ms).await?;
    }
    Ok(SettleOutcome::Settled(payment))
}

/// Clears the lease if `settlement` holds it; the record's retention when it
/// did, `None` when the lease was lost.
async fn release_lease(
    store: &MongoStore,
    settlement: &Settlement,
) -> Result<Option<i64>, StoreError> {
    let mut filter = key_filter(settlement.merchant.as_str(), settlement.key.as_str());
    filter.insert("payment_id", settlement.payment.id.as_str());
    filter.insert("lease_owner", settlement.lease_owner.as_str());
    let update = doc! { "$set": { "lease_owner": null, "lease_until": null } };
    for _ in 0..ATTEMPTS {
        let released = store
            .records
            .find_one_and_update(filter.clone(), update.clone())
            .projection(doc! { "payment": 0 })
            .await;
        if let Some(found) = unless_refused(released)? {
            return Ok(found.map(|record| record.retention_ms));
        }
    }
    Err(StoreError::Unavailable(
        "releasing a lease kept conflicting with other writers".to_owned(),
    ))
}

/// Writes the PSP's answer and when it was given; returns the payment as
/// stored afterwards.
async fn record_answer(store: &MongoStore, settlement: &Settlement) -> Result<Payment, StoreError> {
    let (id, now) = (settlement.payment.id.as_str(), settlement.now_millis);
    let mut payment = payments::load_named(store, id).await?.to_payment()?;
    let read = payment.status;
    settlement.apply_to(&mut payment);
    if payment.status == read {
        return payments::mark_checked(store, id, now).await;
    }
    if let Some(moved) = payments::make_final(store, &payment, doc! { "checked_at": now }).await? {
        return moved.to_payment();
    }
    let current = payments::mark_checked(store, id, now).await?;
    if current.status != payment.status {
        // A status update settled it between our read and our write.
        warn!(
            payment_id = %current.id,
            recorded = current.status.as_str(),
            answered = payment.status.as_str(),
            "PSP answer contradicts the recorded status"
        );
    }
    Ok(current)
}
