//! Queries outside the claim path: one payment, the list, and the keys the
//! recovery job should look at.

use std::collections::HashSet;

use mongodb::bson::doc;
use oncepay_domain::{IdempotencyKey, MerchantId, Payment, PaymentId};
use oncepay_engine::{Cursor, Page, PageQuery, StoreError};
use serde::Deserialize;

use crate::errors::store_error;
use crate::{MongoStore, read_all};

/// A record's key, without the rest.
#[derive(Debug, Deserialize)]
struct KeyRef {
    merchant: String,
    key: String,
}

/// A payment's id, without the rest.
#[derive(Debug, Deserialize)]
struct IdRef {
    #[serde(rename = "_id")]
    id: String,
}

/// One payment of a merchant.
pub async fn payment(
    store: &MongoStore,
    merchant: &MerchantId,
    id: &PaymentId,
) -> Result<Option<Payment>, StoreError> {
    let filter = doc! { "_id": id.as_str(), "merchant": merchant.as_str() };
    let found = store.payments.find_one(filter).await.map_err(store_error)?;
    found.map(|listed| listed.payment.to_payment()).transpose()
}

/// A page of the merchant's payments, newest first, strictly after `cursor`.
///
/// Positions come from a per-merchant counter taken just before each insert,
/// so a page boundary stays put while payments are added in front of it. As
/// with any sequence, a payment whose insert is still in flight may show up
/// a moment after a younger one; a client paging at that moment sees it on
/// its next first page.
pub async fn list(
    store: &MongoStore,
    merchant: &MerchantId,
    cursor: Option<Cursor>,
    limit: usize,
) -> Result<Page, StoreError> {
    let query = PageQuery::new(cursor, limit);
    let found = store
        .payments
        .find(doc! { "merchant": merchant.as_str(), "seq": { "$lt": query.before } })
        .sort(doc! { "seq": -1 })
        .limit(query.fetch)
        .await
        .map_err(store_error)?;
    let fetched = read_all(found)
        .await?
        .iter()
        .map(|listed| {
            listed
                .payment
                .to_payment()
                .map(|payment| (listed.seq, payment))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(query.page(fetched))
}

/// Keys with a lapsed lease, then unleased keys guarding a pending payment
/// the PSP was last asked about before `checked_before`.
pub async fn stalled(
    store: &MongoStore,
    now: i64,
    checked_before: i64,
    limit: usize,
) -> Result<Vec<(MerchantId, IdempotencyKey)>, StoreError> {
    let max = i64::try_from(limit).unwrap_or(i64::MAX);
    let records = store.records.clone_with_type::<KeyRef>();
    let key_only = doc! { "_id": 0, "merchant": 1, "key": 1 };
    let lapsed = records
        .find(doc! { "lease_owner": { "$ne": null }, "lease_until": { "$lte": now } })
        .projection(key_only.clone())
        .limit(max)
        .await
        .map_err(store_error)?;
    let mut keys = read_all(lapsed).await?;

    let due = store
        .payments
        .clone_with_type::<IdRef>()
        .find(doc! { "status": "pending", "checked_at": { "$lte": checked_before } })
        .projection(doc! { "_id": 1 })
        .limit(max)
        .await
        .map_err(store_error)?;
    let due: Vec<String> = read_all(due).await?.into_iter().map(|p| p.id).collect();
    let idle = records
        .find(doc! { "payment_id": { "$in": due }, "lease_owner": null })
        .projection(key_only)
        .await
        .map_err(store_error)?;
    keys.extend(read_all(idle).await?);

    let mut seen = HashSet::new();
    keys.into_iter()
        .filter(|found| seen.insert((found.merchant.clone(), found.key.clone())))
        .take(limit)
        .map(|KeyRef { merchant, key }| {
            let merchant = MerchantId::parse(&merchant)
                .ok_or_else(|| StoreError::Corrupt(format!("merchant {merchant:?}")))?;
            Ok((merchant, IdempotencyKey::from_stored(key)))
        })
        .collect()
}
