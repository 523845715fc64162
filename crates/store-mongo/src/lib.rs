//! The MongoDB durable store.
//!
//! Every decision is a single-document write: no multi-document transaction
//! is used, so the store behaves the same on a standalone server, a replica
//! set and a sharded cluster. The unique index on (merchant, key) of the
//! idempotency records settles the race between two first requests, and
//! every later change to a record or a payment is a conditional
//! `findOneAndUpdate` that names the state it expects (`claims.rs`). Where
//! one step writes two documents, the comment there says why a crash
//! between them is safe.
//!
//! The tests run against SecantusDB, a single-node server that speaks
//! MongoDB's wire protocol (`.ci/mongo` starts one). It matches MongoDB in
//! everything this store relies on: unique indexes under concurrent inserts,
//! conditional `findAndModify`, retryable writes answered from the server's
//! record, null matching missing fields, TTL indexes (swept about once a
//! minute). Two differences matter, and the code is written for MongoDB:
//! SecantusDB acknowledges `j: true` before its log is synced unless it runs
//! with `--sync-on-commit` (`.ci/mongo` passes it); and as a one-node
//! replica set it never makes a majority write wait for another node, nor
//! rolls one back in a failover, so the reason for the majority concerns
//! below is exercised only on a real replica set. Sharding is not tested.
//!
//! Modules: `documents` (stored shapes), `schema` (indexes), `claims`
//! (claims and settlements), `payments` (inserting and finalising payment
//! documents), `status_events` (signed status updates), `reads` (lookups,
//! the list, stalled keys), `retention` (the reaper and the TTL index),
//! `errors` (driver errors), `store` (the `DurableStore` impl).

mod claims;
mod documents;
mod errors;
mod payments;
mod reads;
mod retention;
mod schema;
mod status_events;
mod store;

use std::time::Duration;

use mongodb::bson::doc;
use mongodb::options::{Acknowledgment, ClientOptions, ReadConcern, WriteConcern};
use mongodb::{Client, Collection, Cursor, Database};
use oncepay_engine::StoreError;
use serde::de::DeserializeOwned;

use crate::documents::{
    COUNTERS, ListedPayment, PAYMENTS, RECORDS, RecordDoc, STATUS_EVENTS, StatusEventDoc,
};
use crate::errors::store_error;

/// The database used when the URL names none.
pub const DEFAULT_DATABASE: &str = "oncepay";

/// How long an operation waits for a usable server before the store counts
/// as unavailable, unless the URL says otherwise.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// The MongoDB store; implements `oncepay_engine::DurableStore`.
#[derive(Debug, Clone)]
pub struct MongoStore {
    database: Database,
    records: Collection<RecordDoc>,
    payments: Collection<ListedPayment>,
    counters: Collection<mongodb::bson::Document>,
    status_events: Collection<StatusEventDoc>,
}

impl MongoStore {
    /// Connects to `url` with a pool of at most `pool_size` connections,
    /// uses the database named in the URL's path (or [`DEFAULT_DATABASE`]),
    /// and creates the indexes.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unavailable`] when the URL is invalid, no server answers,
    /// or the indexes cannot be created.
    pub async fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let options = ClientOptions::parse(url).await.map_err(store_error)?;
        let database = options
            .default_database
            .clone()
            .unwrap_or_else(|| DEFAULT_DATABASE.to_owned());
        Self::connect_with(options, &database, pool_size).await
    }

    /// Like [`MongoStore::open`], in the database named `database` whatever
    /// the URL says (tests use it to give each test a database of its own).
    ///
    /// # Errors
    ///
    /// As for [`MongoStore::open`].
    pub async fn connect(url: &str, database: &str, pool_size: u32) -> Result<Self, StoreError> {
        let options = ClientOptions::parse(url).await.map_err(store_error)?;
        Self::connect_with(options, database, pool_size).await
    }

    async fn connect_with(
        mut options: ClientOptions,
        database: &str,
        pool_size: u32,
    ) -> Result<Self, StoreError> {
        apply_defaults(&mut options, pool_size);
        let client = Client::with_options(options).map_err(store_error)?;
        let database = client.database(database);
        let store = Self {
            records: database.collection(RECORDS),
            payments: database.collection(PAYMENTS),
            counters: database.collection(COUNTERS),
            status_events: database.collection(STATUS_EVENTS),
            database,
        };
        schema::create_indexes(&store).await?;
        Ok(store)
    }

    /// Answers when a server accepts commands.
    async fn ping(&self) -> Result<(), StoreError> {
        self.database
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

/// Durable defaults, each kept when the URL sets it.
///
/// A claim acknowledged by one node only could be rolled back by a failover
/// and the key claimed a second time, so writes wait for a majority and the
/// journal, and reads see only majority-committed data. A URL that weakens
/// this (`w=1`) trades that guarantee for latency; on a standalone server a
/// majority is the one node, so nothing is lost there.
fn apply_defaults(options: &mut ClientOptions, pool_size: u32) {
    options.max_pool_size = Some(pool_size);
    options.app_name.get_or_insert_with(|| "oncepay".to_owned());
    options
        .server_selection_timeout
        .get_or_insert(SERVER_SELECTION_TIMEOUT);
    options.write_concern.get_or_insert_with(|| {
        WriteConcern::builder()
            .w(Acknowledgment::Majority)
            .journal(true)
            .build()
    });
    options
        .read_concern
        .get_or_insert_with(ReadConcern::majority);
}

/// Reads every document a cursor yields.
async fn read_all<T: DeserializeOwned>(mut cursor: Cursor<T>) -> Result<Vec<T>, StoreError> {
    let mut all = Vec::new();
    while cursor.advance().await.map_err(store_error)? {
        all.push(cursor.deserialize_current().map_err(store_error)?);
    }
    Ok(all)
}
