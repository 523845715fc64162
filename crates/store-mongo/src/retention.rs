//! When an idempotency record may go: the reaper, and the TTL index behind
//! it.
//!
//! `reap` is the rule the engine relies on: a record goes once it is past its
//! expiry, unleased, and guards either nothing or a final payment that last
//! changed at least one retention period ago. It judges by the engine's
//! clock and reads the payment, which a TTL index cannot do.
//!
//! The TTL index on `purge_after` is a backstop for deployments where no
//! reaper runs. The field is set only once a record can no longer matter to
//! a pending payment: at issue for a key that guards nothing, and after the
//! payment was written final (by `settle` or a status update). While the
//! payment is pending the field is absent, so the TTL monitor never sees the
//! record. A crash before the field is set leaves the record to `reap`. The
//! date is a retention (or the issued key's lifetime) plus a grace period
//! from the wall clock, because the TTL monitor runs on the server's clock:
//! the grace covers clock skew between the two, so the index never removes
//! a record before `reap` would.

use std::collections::HashMap;

use mongodb::bson::{DateTime, doc};
use oncepay_domain::time_fmt::now_millis;
use oncepay_engine::StoreError;
use serde::Deserialize;

use crate::MongoStore;
use crate::documents::RecordDoc;
use crate::errors::store_error;
use crate::read_all;

/// How long past the reaper's moment the TTL index waits.
const PURGE_GRACE_MS: i64 = 60 * 60 * 1000;

/// Records judged per round trip for their payments.
const REAP_BATCH: usize = 100;

/// What the reaper needs to know of a payment.
#[derive(Debug, Deserialize)]
struct PaymentState {
    #[serde(rename = "_id")]
    id: String,
    status: String,
    updated_at: i64,
}

/// The TTL date for a record that may go `delay_ms` from now.
pub fn purge_after(delay_ms: i64) -> DateTime {
    let at = now_millis()
        .saturating_add(delay_ms.max(0))
        .saturating_add(PURGE_GRACE_MS);
    DateTime::from_millis(at)
}

/// Lets the TTL index remove the record guarding `payment_id`, which is now
/// final, a retention from now. The record of a later payment under the
/// same key (after this one's record was reaped) is left alone.
pub async fn mark_purgeable(
    store: &MongoStore,
    merchant: &str,
    key: &str,
    payment_id: &str,
    retention_ms: i64,
) -> Result<(), StoreError> {
    store
        .records
        .update_one(
            doc! { "merchant": merchant, "key": key, "payment_id": payment_id },
            doc! { "$set": { "purge_after": purge_after(retention_ms) } },
        )
        .await
        .map_err(store_error)?;
    Ok(())
}

/// Deletes up to `limit` records that no longer guard anything; see the
/// module docs. Payments are kept.
pub async fn reap(store: &MongoStore, now: i64, limit: usize) -> Result<u64, StoreError> {
    let filter = doc! { "expires_at": { "$lte": now }, "lease_owner": null };
    let mut candidates = store
        .records
        .find(filter)
        .projection(doc! { "payment": 0 })
        .sort(doc! { "expires_at": 1 })
        .await
        .map_err(store_error)?;
    let limit = u64::try_from(limit).unwrap_or(u64::MAX);
    let mut deleted = 0;
    let mut batch = Vec::with_capacity(REAP_BATCH);
    while deleted < limit {
        let more = candidates.advance().await.map_err(store_error)?;
        if more {
            batch.push(candidates.deserialize_current().map_err(store_error)?);
        }
        if batch.len() == REAP_BATCH || (!more && !batch.is_empty()) {
            deleted += reap_batch(store, &batch, now, limit - deleted).await?;
            batch.clear();
        }
        if !more {
            break;
        }
    }
    Ok(deleted)
}

async fn reap_batch(
    store: &MongoStore,
    batch: &[RecordDoc],
    now: i64,
    limit: u64,
) -> Result<u64, StoreError> {
    let ids: Vec<&str> = batch
        .iter()
        .filter_map(|record| record.payment_id.as_deref())
        .collect();
    let found = store
        .payments
        .clone_with_type::<PaymentState>()
        .find(doc! { "_id": { "$in": ids } })
        .projection(doc! { "status": 1, "updated_at": 1 })
        .await
        .map_err(store_error)?;
    let payments: HashMap<String, PaymentState> = read_all(found)
        .await?
        .into_iter()
        .map(|state| (state.id.clone(), state))
        .collect();
    let mut deleted = 0;
    for record in batch.iter().filter(|r| may_go(r, &payments, now)) {
        if deleted == limit {
            break;
        }
        // Conditional on what was judged: a record claimed, leased or
        // replaced meanwhile no longer matches and stays.
        let gone = store
            .records
            .delete_one(doc! {
                "merchant": &record.merchant,
                "key": &record.key,
                "payment_id": record.payment_id.as_deref(),
                "lease_owner": null,
                "expires_at": { "$lte": now },
            })
            .await
            .map_err(store_error)?;
        deleted += gone.deleted_count;
    }
    Ok(deleted)
}

fn may_go(record: &RecordDoc, payments: &HashMap<String, PaymentState>, now: i64) -> bool {
    let Some(id) = &record.payment_id else {
        return true;
    };
    // A record whose payment is not there yet is a creation in flight.
    payments.get(id).is_some_and(|payment| {
        payment.status != "pending" && payment.updated_at.saturating_add(record.retention_ms) <= now
    })
}
