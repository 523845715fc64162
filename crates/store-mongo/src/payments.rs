//! Payment documents: loading one, adding a new one to the end of its
//! merchant's list, and the conditional write that makes one final.

use mongodb::bson::{Document, doc};
use mongodb::options::ReturnDocument;
use oncepay_domain::Payment;
use oncepay_engine::StoreError;

use crate::MongoStore;
use crate::documents::{ListedPayment, PaymentDoc, to_bson};
use crate::errors::{store_error, unless_refused};

/// How often a write that lost to another writer is tried again before the
/// store gives up as unavailable.
pub const ATTEMPTS: usize = 5;

/// Loads a payment by id, whatever its merchant.
pub async fn load(store: &MongoStore, id: &str) -> Result<Option<PaymentDoc>, StoreError> {
    let found = store
        .payments
        .find_one(doc! { "_id": id })
        .await
        .map_err(store_error)?;
    Ok(found.map(|listed| listed.payment))
}

/// Loads a payment that must exist, because a record or event names it.
pub async fn load_named(store: &MongoStore, id: &str) -> Result<PaymentDoc, StoreError> {
    load(store, id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("payment {id} is named but absent")))
}

/// Inserts a payment at the end of its merchant's list.
///
/// Inserting the same payment twice is harmless: the second insert hits the
/// unique `_id` and finds the first. Two attempts finishing one creation
/// (see `claims`) rely on that.
pub async fn insert(store: &MongoStore, payment: PaymentDoc) -> Result<Payment, StoreError> {
    for _ in 0..ATTEMPTS {
        let listed = ListedPayment {
            seq: next_seq(store, &payment.merchant).await?,
            payment: payment.clone(),
        };
        let inserted = unless_refused(store.payments.insert_one(&listed).await)?;
        if inserted.is_some() {
            return listed.payment.to_payment();
        }
        if let Some(existing) = load(store, &payment.id).await? {
            return existing.to_payment();
        }
    }
    Err(StoreError::Unavailable(
        "inserting a payment kept conflicting with other writers".to_owned(),
    ))
}

/// Hands out the merchant's next list position.
///
/// A position taken by an insert that then fails is never used; the list
/// only needs positions to grow, not to be dense.
async fn next_seq(store: &MongoStore, merchant: &str) -> Result<i64, StoreError> {
    for _ in 0..ATTEMPTS {
        // Two first payments of a merchant may both upsert its counter; the
        // loser's duplicate key is retried and then finds the counter.
        let bumped = store
            .counters
            .find_one_and_update(doc! { "_id": merchant }, doc! { "$inc": { "seq": 1_i64 } })
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        if let Some(counter) = unless_refused(bumped)?.flatten() {
            return counter
                .get_i64("seq")
                .map_err(|error| StoreError::Corrupt(format!("payment counter: {error}")));
        }
    }
    Err(StoreError::Unavailable(
        "the payment counter kept conflicting with other writers".to_owned(),
    ))
}

/// Notes that the PSP was asked about the payment at `now`; returns it.
pub async fn mark_checked(store: &MongoStore, id: &str, now: i64) -> Result<Payment, StoreError> {
    let checked = store
        .payments
        .find_one_and_update(doc! { "_id": id }, doc! { "$set": { "checked_at": now } })
        .return_document(ReturnDocument::After)
        .await
        .map_err(store_error)?;
    checked
        .ok_or_else(|| StoreError::Corrupt(format!("payment {id} is named but absent")))?
        .payment
        .to_payment()
}

/// Writes the final status `payment` was just moved to (its last history
/// entry), with `extra` fields, if the stored payment is still pending.
///
/// `None` when it is not: someone made it final first, and final states
/// never change, so their write stands.
pub async fn make_final(
    store: &MongoStore,
    payment: &Payment,
    mut extra: Document,
) -> Result<Option<PaymentDoc>, StoreError> {
    let change = payment
        .history
        .last()
        .ok_or_else(|| StoreError::Corrupt(format!("payment {} has no history", payment.id)))?;
    extra.insert("status", payment.status.as_str());
    extra.insert("updated_at", payment.updated_at_millis);
    let update = doc! { "$set": extra, "$push": { "history": to_bson(change)? } };
    let filter = doc! { "_id": payment.id.as_str(), "status": "pending" };
    for _ in 0..ATTEMPTS {
        let moved = store
            .payments
            .find_one_and_update(filter.clone(), update.clone())
            .return_document(ReturnDocument::After)
            .await;
        if let Some(found) = unless_refused(moved)? {
            return Ok(found.map(|listed| listed.payment));
        }
    }
    Err(StoreError::Unavailable(
        "a status change kept conflicting with other writers".to_owned(),
    ))
}
