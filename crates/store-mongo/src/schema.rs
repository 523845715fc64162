//! Indexes, created at start. `createIndexes` is idempotent, so any number
//! of processes may start together; changing an index's options under the
//! same name is refused by the server, so a changed index needs a new name.
//!
//! On a sharded cluster a unique index must start with the shard key: shard
//! the records on `{merchant: 1, key: 1}`, the status events on
//! `{payment_id: 1, event_id: 1}`, and the payments on `{_id: 1}` (their
//! `(merchant, seq)` and `psp_key` indexes are then enforced per shard only;
//! both values are generated unique, so those indexes only catch bugs).

use std::time::Duration;

use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;
use oncepay_engine::StoreError;

use crate::MongoStore;
use crate::errors::store_error;

/// Creates every index the store's queries and guarantees rely on.
pub async fn create_indexes(store: &MongoStore) -> Result<(), StoreError> {
    store
        .records
        .create_indexes(record_indexes())
        .await
        .map_err(store_error)?;
    store
        .payments
        .create_indexes(payment_indexes())
        .await
        .map_err(store_error)?;
    store
        .status_events
        .create_index(unique(
            "event_once",
            doc! { "payment_id": 1, "event_id": 1 },
        ))
        .await
        .map_err(store_error)?;
    Ok(())
}

fn record_indexes() -> Vec<IndexModel> {
    vec![
        // The last line of defence against a second execution.
        unique("key_once", doc! { "merchant": 1, "key": 1 }),
        plain("leased", doc! { "lease_until": 1 }),
        plain("by_payment", doc! { "payment_id": 1 }),
        plain("by_expiry", doc! { "expires_at": 1 }),
        // A backstop behind `reap`; see `claims::purge_after` for why it can
        // never remove a record that still guards anything.
        IndexModel::builder()
            .keys(doc! { "purge_after": 1 })
            .options(
                IndexOptions::builder()
                    .name("purge".to_owned())
                    .expire_after(Duration::ZERO)
                    .build(),
            )
            .build(),
    ]
}

fn payment_indexes() -> Vec<IndexModel> {
    vec![
        unique("list_order", doc! { "merchant": 1, "seq": -1 }),
        unique("psp_key_once", doc! { "psp_key": 1 }),
        plain("pending_by_check", doc! { "status": 1, "checked_at": 1 }),
    ]
}

fn unique(name: &str, keys: Document) -> IndexModel {
    let options = IndexOptions::builder()
        .name(name.to_owned())
        .unique(true)
        .build();
    IndexModel::builder().keys(keys).options(options).build()
}

fn plain(name: &str, keys: Document) -> IndexModel {
    let options = IndexOptions::builder().name(name.to_owned()).build();
    IndexModel::builder().keys(keys).options(options).build()
}
