//! The shared conformance suite, against a MongoDB-compatible server.
//!
//! Each test gets its own database, dropped when the test passes. The
//! server is `ONCEPAY_TEST_MONGODB_URL` (`.ci/mongo start` starts one and
//! prints it). When it is unset or cannot be reached, the tests fail under
//! `CI` and are skipped, with a message saying so, anywhere else.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use mongodb::bson::doc;
use mongodb::options::ClientOptions;
use mongodb::{Client, Database};
use oncepay_engine::DurableStore;
use oncepay_store_conformance::{StoreHarness, conformance_suite};
use oncepay_store_mongo::MongoStore;

const URL_VARIABLE: &str = "ONCEPAY_TEST_MONGODB_URL";

struct MongoHarness {
    url: String,
    database: Database,
}

impl MongoHarness {
    async fn new() -> Option<Self> {
        let Ok(url) = std::env::var(URL_VARIABLE) else {
            return skip(&format!("{URL_VARIABLE} is not set"));
        };
        let admin = match admin_client(&url).await {
            Ok(admin) => admin,
            Err(error) => return skip(&format!("MongoDB at {url} cannot be reached ({error})")),
        };
        let database = admin.database(&unique_database());
        Some(Self { url, database })
    }
}

fn skip<T>(why: &str) -> Option<T> {
    if std::env::var_os("CI").is_some() {
        panic!("MongoDB is required in CI but {why}");
    }
    eprintln!("skipped: {why}");
    None
}

async fn admin_client(url: &str) -> Result<Client, mongodb::error::Error> {
    let mut options = ClientOptions::parse(url).await?;
    options.server_selection_timeout = Some(Duration::from_secs(3));
    let client = Client::with_options(options)?;
    client
        .database("admin")
        .run_command(doc! { "ping": 1 })
        .await?;
    Ok(client)
}

fn unique_database() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("conformance_{}_{nanos}", std::process::id())
}

#[async_trait]
impl StoreHarness for MongoHarness {
    async fn open(&self) -> Arc<dyn DurableStore> {
        let store = MongoStore::connect(&self.url, self.database.name(), 8).await;
        Arc::new(store.expect("the store connects and creates its indexes"))
    }

    async fn clean_up(&self) {
        self.database
            .drop()
            .await
            .expect("drop the test's database");
    }
}

conformance_suite!(MongoHarness::new().await);

// Beyond the suite: crashes between the writes of one step, which only a
// store without multi-document transactions can be left with.

use mongodb::bson::Document;
use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{Payment, PaymentStatus};
use oncepay_engine::{ClaimOutcome, RecordedUpdate, UpdateOutcome};
use oncepay_store_conformance::fixtures::{LEASE_MS, NOW, claim, merchant, settlement};

async fn create(store: &dyn DurableStore, key: &str) -> Payment {
    match store.claim(claim(key, 1, "first", NOW)).await {
        Ok(ClaimOutcome::Created(payment)) => payment,
        other => panic!("a new key must be created, got {other:?}"),
    }
}

async fn record_of(harness: &MongoHarness, key: &str) -> Document {
    let records = harness
        .database
        .collection::<Document>("idempotency_records");
    let found = records.find_one(doc! { "key": key }).await;
    found.expect("read").expect("the key has a record")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_that_died_before_inserting_its_payment_is_finished_by_recovery() {
    let Some(harness) = MongoHarness::new().await else {
        return;
    };
    let store = harness.open().await;
    let created = create(store.as_ref(), "k").await;
    let payments = harness.database.collection::<Document>("payments");
    payments
        .delete_one(doc! { "_id": created.id.as_str() })
        .await
        .expect("undo the payment insert, as a crash before it would");

    let default = merchant("default");
    let found = store.payment(&default, &created.id).await.expect("look up");
    assert!(found.is_none(), "not visible while in flight");
    let early = store.claim(claim("k", 1, "early", NOW + 5)).await;
    assert!(matches!(early, Ok(ClaimOutcome::InFlight { .. })));
    let lapsed = NOW + LEASE_MS + 1;
    let stalled = store.stalled(lapsed, NOW - 1, 10).await.expect("stalled");
    assert_eq!(stalled.len(), 1, "the lapsed creation is due: {stalled:?}");

    let mut recovery = claim("k", 1, "recovery", lapsed);
    recovery.fingerprint = None;
    recovery.new_payment = None;
    let resumed = store.claim(recovery).await.expect("claim");

    let ClaimOutcome::Resumed { payment, took_over } = resumed else {
        panic!("recovery resumes the creation, got {resumed:?}");
    };
    assert!(took_over);
    assert_eq!(payment, created, "the payment the dead claim recorded");
    let listed = store.list(&default, None, 10).await.expect("list");
    assert_eq!(listed.payments, vec![created]);
    harness.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_event_applied_but_never_recorded_is_answered_as_a_repeat() {
    let Some(harness) = MongoHarness::new().await else {
        return;
    };
    let store = harness.open().await;
    let created = create(store.as_ref(), "k").await;
    let first = store
        .apply_status_update(&created.id, "evt", PaymentStatus::Succeeded, NOW + 1)
        .await;
    assert!(matches!(first, Ok(UpdateOutcome::Applied(_))));
    let events = harness.database.collection::<Document>("status_events");
    events
        .delete_many(doc! {})
        .await
        .expect("undo the event record, as a crash before it would");

    let again = store
        .apply_status_update(&created.id, "evt", PaymentStatus::Failed, NOW + 2)
        .await
        .expect("apply");

    let UpdateOutcome::Repeated { payment, first } = again else {
        panic!("the event moved the payment before, got {again:?}");
    };
    assert_eq!(first, RecordedUpdate::Applied);
    assert_eq!(payment.status, PaymentStatus::Succeeded);
    let recorded = events.count_documents(doc! {}).await.expect("count");
    assert_eq!(recorded, 1, "the event is recorded again");
    harness.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ttl_index_sees_a_record_only_once_its_payment_is_final() {
    let Some(harness) = MongoHarness::new().await else {
        return;
    };
    let store = harness.open().await;
    let created = create(store.as_ref(), "k").await;
    let pending = store.settle(settlement("k", "first", &created, None)).await;
    assert!(pending.is_ok());
    let record = record_of(&harness, "k").await;
    assert!(
        !record.contains_key("purge_after"),
        "no purge date while pending"
    );

    let before = now_millis();
    let update = store
        .apply_status_update(&created.id, "evt", PaymentStatus::Failed, NOW + 600_000)
        .await;
    assert!(matches!(update, Ok(UpdateOutcome::Applied(_))));

    let record = record_of(&harness, "k").await;
    let purge = record.get_datetime("purge_after").expect("a purge date");
    let retention = 60_000;
    assert!(purge.timestamp_millis() > before + retention);
    harness.clean_up().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let Some(harness) = MongoHarness::new().await else {
        return;
    };
    let store = harness.open().await;
    let created = create(store.as_ref(), "k").await;

    let deliveries: Vec<_> = (0..20)
        .map(|i| {
            let (store, id) = (Arc::clone(&store), created.id.clone());
            let status = [PaymentStatus::Succeeded, PaymentStatus::Failed][i % 2];
            tokio::spawn(
                async move { store.apply_status_update(&id, "evt", status, NOW + 1).await },
            )
        })
        .collect();
    let mut applied = 0;
    for delivery in deliveries {
        match delivery.await.expect("the task ends").expect("apply") {
            UpdateOutcome::Applied(_) => applied += 1,
            UpdateOutcome::Repeated {
                first: RecordedUpdate::Applied,
                ..
            } => {}
            other => panic!("a repeat must be answered as the first delivery, got {other:?}"),
        }
    }

    assert_eq!(applied, 1);
    let default = merchant("default");
    let stored = store.payment(&default, &created.id).await.expect("look up");
    assert_eq!(stored.map(|p| p.history.len()), Some(2));
    harness.clean_up().await;
}
