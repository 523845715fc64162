//! Micro-benchmarks of the pieces every payment request goes through: key
//! parsing, request parsing and fingerprinting, and one durable claim plus
//! settlement per store: SQLite always (a temporary file, durable
//! group-committed writes); PostgreSQL when `BENCH_POSTGRES_URL` names a
//! database to write into, MongoDB when `BENCH_MONGODB_URL` does (each run
//! writes fresh keys there; unset, that store is skipped and says so).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use oncepay_domain::{
    IdempotencyKey, MerchantId, Payment, PaymentRequest, PaymentStatus, RequestFingerprint,
};
use oncepay_engine::{Claim, ClaimOutcome, DurableStore, Lease, Settlement};
use oncepay_store_mongo::MongoStore;
use oncepay_store_postgres::PostgresStore;
use oncepay_store_sqlite::SqliteStore;

const BODY: &str = r#"{"amount": 2500, "currency": "EUR", "payment_method": "pm_card_ok",
    "description": "Blue mug", "metadata": {"order": "1001", "customer": "c_42"}}"#;

fn key_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("idempotency key");
    group.bench_function("bare", |b| {
        b.iter(|| IdempotencyKey::parse(b"8e03978e-40d5-43e8-bc93-6894a57f9324"))
    });
    group.bench_function("sf-string", |b| {
        b.iter(|| IdempotencyKey::parse(b"\"8e03978e-40d5-43e8-bc93-6894a57f9324\""))
    });
    group.finish();
}

fn request_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("payment request");
    group.bench_function("parse JSON and rules", |b| {
        b.iter(|| {
            let value: serde_json::Value = serde_json::from_str(BODY).unwrap();
            PaymentRequest::parse(&value).unwrap()
        })
    });
    let request = PaymentRequest::parse(&serde_json::from_str(BODY).unwrap()).unwrap();
    group.bench_function("canonical fingerprint", |b| {
        b.iter(|| RequestFingerprint::of("POST", "/v1/payments", &request.to_canonical_json()))
    });
    group.finish();
}

fn new_payment(now: i64) -> Payment {
    let request = PaymentRequest::parse(&serde_json::from_str(BODY).unwrap()).unwrap();
    Payment::pending(MerchantId::default_merchant(), request, now)
}

/// One first execution's store work: claim a fresh key, then settle it.
async fn claim_and_settle(store: &dyn DurableStore, run: u64, n: u64) {
    let now = 1_700_000_000_000;
    let key = IdempotencyKey::parse(format!("bench-{run}-{n}").as_bytes()).unwrap();
    let claim = Claim {
        merchant: MerchantId::default_merchant(),
        key: key.clone(),
        fingerprint: Some(RequestFingerprint::from_stored("f".repeat(64))),
        lease: Lease {
            owner: "bench".to_owned(),
            until_millis: now + 30_000,
        },
        new_payment: Some(new_payment(now)),
        now_millis: now,
        expires_at_millis: now + 86_400_000,
    };
    let ClaimOutcome::Created(payment) = store.claim(claim).await.unwrap() else {
        panic!("a fresh key is created");
    };
    let settlement = Settlement {
        merchant: MerchantId::default_merchant(),
        key,
        lease_owner: "bench".to_owned(),
        payment: std::sync::Arc::new(payment),
        change: Some((PaymentStatus::Succeeded, "psp: succeeded".to_owned())),
        now_millis: now + 1,
    };
    store.settle(settlement).await.unwrap();
}

/// Claims and settlements on `store`, alone and 64 at a time.
fn claims_on(
    c: &mut Criterion,
    name: &str,
    runtime: &tokio::runtime::Runtime,
    store: Arc<dyn DurableStore>,
) {
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let next = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group(format!("{name} claim+settle"));
    for concurrency in [1u64, 64] {
        group.throughput(Throughput::Elements(concurrency));
        group.bench_with_input(
            BenchmarkId::from_parameter(concurrency),
            &concurrency,
            |b, &n| {
                b.to_async(runtime).iter(|| {
                    let (store, next) = (Arc::clone(&store), Arc::clone(&next));
                    async move {
                        let tasks: Vec<_> = (0..n)
                            .map(|_| {
                                let (store, id) =
                                    (Arc::clone(&store), next.fetch_add(1, Ordering::Relaxed));
                                tokio::spawn(
                                    async move { claim_and_settle(&*store, run, id).await },
                                )
                            })
                            .collect();
                        for task in tasks {
                            task.await.unwrap();
                        }
                    }
                })
            },
        );
    }
    group.finish();
}

fn store_claims(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Arc::new(SqliteStore::open(&dir.path().join("bench.db")).unwrap());
    claims_on(c, "sqlite", &runtime, sqlite);

    match std::env::var("BENCH_POSTGRES_URL") {
        Ok(url) => {
            let store = runtime.block_on(PostgresStore::connect(&url, 16)).unwrap();
            claims_on(c, "postgres", &runtime, Arc::new(store));
        }
        Err(_) => eprintln!(
            "postgres claim+settle skipped: set BENCH_POSTGRES_URL to a database to write into"
        ),
    }
    match std::env::var("BENCH_MONGODB_URL") {
        Ok(url) => {
            let store = runtime.block_on(MongoStore::open(&url, 16)).unwrap();
            claims_on(c, "mongodb", &runtime, Arc::new(store));
        }
        Err(_) => eprintln!(
            "mongodb claim+settle skipped: set BENCH_MONGODB_URL to a database to write into"
        ),
    }
}

criterion_group!(benches, key_parsing, request_parsing, store_claims);
criterion_main!(benches);
