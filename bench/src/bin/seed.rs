//! Seeds a SQLite store with settled payments for the growth figures of
//! `bench/run`: straight into the file, not through HTTP, so ten million of
//! them take minutes rather than hours.
//!
//! The store is opened once through `SqliteStore::open`, which creates the
//! file and applies the migrations, then closed; the rows go in through a
//! plain rusqlite connection, in large transactions with `synchronous = OFF`
//! and no rollback journal. That is only safe because nobody else has the
//! file open and a seeding that dies half-way is thrown away.
//!
//! Every row has the shape oncepay writes for a payment that succeeded at
//! once: a `pay_` id and a `psp_` key, a history of `created` then
//! `psp: succeeded`, and an idempotency record with the request's
//! fingerprint, the payment's id and no lease. Payment ids and PSP keys are
//! time-ordered like oncepay's own (48 bits of creation milliseconds, then 80
//! random bits), created one millisecond apart and ending now, so the seeded
//! rows lie before the live ones in the id indexes, as in a store that has
//! been running for hours. Idempotency keys are random UUIDs, as most
//! clients send, so they land all over the (merchant, key) index.
//!
//! Prints progress on stderr, at every tenth, and one JSON line on stdout:
//! `{"records": N, "seconds": S, "file_mib": M}`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{MerchantId, PaymentStatus, RequestFingerprint, StatusChange};
use oncepay_store_sqlite::SqliteStore;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rusqlite::{Connection, Transaction, params};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
struct Args {
    /// The SQLite file; created with oncepay's schema if it does not exist.
    path: PathBuf,
    /// How many payments, each with its idempotency record, to add.
    records: u64,
    /// Whose payments they are. `bench/run` starts oncepay without API keys,
    /// where every request acts for the `default` merchant.
    #[arg(long, default_value = MerchantId::DEFAULT)]
    merchant: String,
    /// Rows per transaction.
    #[arg(long, default_value_t = 100_000)]
    batch: u64,
}

/// Records stay this long past their creation: far beyond any benchmark, so
/// oncepay's reaper never deletes seeded rows while it is being measured.
const RECORD_LIFETIME_MILLIS: i64 = 30 * 24 * 3600 * 1000;

const CURRENCIES: [&str; 4] = ["EUR", "USD", "GBP", "CHF"];

/// One payment and its idempotency record, ready to insert.
struct SeededPayment {
    id: String,
    key: String,
    psp_key: String,
    amount: i64,
    currency: &'static str,
    description: Option<String>,
    metadata: String,
    created_at: i64,
    settled_at: i64,
    history: String,
    fingerprint: String,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.batch > 0, "--batch must be at least 1");
    let merchant = MerchantId::parse(&args.merchant).context("--merchant is not a merchant id")?;

    drop(SqliteStore::open(&args.path).context("opening the store")?);
    let mut connection = Connection::open(&args.path)?;
    configure_for_seeding(&connection)?;

    let started = Instant::now();
    let batches = generate_in_background(args.records, args.batch);
    let mut inserted = 0;
    let mut reported = 0;
    for batch in batches {
        insert_batch(&mut connection, merchant.as_str(), &batch)?;
        inserted += batch.len() as u64;
        if inserted * 10 / args.records.max(1) > reported {
            reported = inserted * 10 / args.records.max(1);
            report_progress(inserted, args.records, started);
        }
    }
    connection.pragma_update(None, "journal_mode", "WAL")?;
    drop(connection);

    let seconds = started.elapsed().as_secs_f64();
    let file_mib = file_size(&args.path)? as f64 / (1024.0 * 1024.0);
    println!(
        "{}",
        json!({"records": inserted, "seconds": round2(seconds), "file_mib": round2(file_mib)})
    );
    Ok(())
}

/// Seeding only: no fsync, no rollback journal, a large page cache. The
/// store's own connections set their pragmas again when oncepay opens it.
fn configure_for_seeding(connection: &Connection) -> rusqlite::Result<()> {
    connection.pragma_update(None, "journal_mode", "OFF")?;
    connection.pragma_update(None, "synchronous", "OFF")?;
    connection.pragma_update(None, "cache_size", -512 * 1024)?;
    connection.pragma_update(None, "foreign_keys", "OFF")
}

/// Makes the rows on a second thread, so that building JSON and hashing
/// fingerprints overlaps with SQLite's work on the first.
fn generate_in_background(records: u64, batch: u64) -> mpsc::Receiver<Vec<SeededPayment>> {
    let (sender, receiver) = mpsc::sync_channel(2);
    let first_created_at = now_millis() - records as i64;
    thread::spawn(move || {
        let mut rng = StdRng::from_entropy();
        let mut next = 0;
        while next < records {
            let end = (next + batch).min(records);
            let rows = (next..end)
                .map(|n| seeded_payment(&mut rng, n, first_created_at + n as i64))
                .collect();
            if sender.send(rows).is_err() {
                return;
            }
            next = end;
        }
    });
    receiver
}

fn seeded_payment(rng: &mut StdRng, n: u64, created_at: i64) -> SeededPayment {
    let amount = rng.gen_range(100..=250_000);
    let currency = CURRENCIES[(n % 4) as usize];
    let description = n.is_multiple_of(3).then(|| format!("Order {n}"));
    let metadata: BTreeMap<String, String> = if n.is_multiple_of(2) {
        BTreeMap::from([("order_id".to_owned(), format!("ord_{n}"))])
    } else {
        BTreeMap::new()
    };
    let settled_at = created_at + rng.gen_range(1..=3);
    let body = request_body(amount, currency, description.as_deref(), &metadata);
    let history = [
        StatusChange {
            status: PaymentStatus::Pending,
            at_millis: created_at,
            cause: "created".to_owned(),
        },
        StatusChange {
            status: PaymentStatus::Succeeded,
            at_millis: settled_at,
            cause: "psp: succeeded".to_owned(),
        },
    ];
    SeededPayment {
        id: time_ordered_token(rng, "pay_", created_at),
        key: uuid_v4(rng),
        psp_key: time_ordered_token(rng, "psp_", created_at),
        amount,
        currency,
        description,
        metadata: serde_json::to_string(&metadata).unwrap_or_default(),
        created_at,
        settled_at,
        history: serde_json::to_string(&history).unwrap_or_default(),
        fingerprint: RequestFingerprint::of("POST", "/v1/payments", &body)
            .as_str()
            .to_owned(),
    }
}

/// The request as the fingerprint sees it: no `description` or `metadata`
/// member when there is none (`PaymentRequest::to_canonical_json`).
fn request_body(
    amount: i64,
    currency: &str,
    description: Option<&str>,
    metadata: &BTreeMap<String, String>,
) -> Value {
    let mut body = json!({"amount": amount, "currency": currency, "payment_method": "pm_card_ok"});
    if let Some(description) = description {
        body["description"] = description.into();
    }
    if !metadata.is_empty() {
        body["metadata"] = json!(metadata);
    }
    body
}

/// `prefix` and 32 hex digits: 48 bits of `millis`, then 80 random bits.
fn time_ordered_token(rng: &mut StdRng, prefix: &str, millis: i64) -> String {
    let random: u128 = rng.r#gen::<u128>() >> 48;
    let token = ((millis as u128) << 80) | random;
    format!("{prefix}{token:032x}")
}

/// A random (version 4) UUID in its usual text form.
fn uuid_v4(rng: &mut StdRng) -> String {
    let bits: u128 = rng.r#gen::<u128>() & !(0xF000 << 64) & !(0xC << 60);
    let bits = bits | (0x4000 << 64) | (0x8 << 60);
    let hex = format!("{bits:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

fn insert_batch(
    connection: &mut Connection,
    merchant: &str,
    batch: &[SeededPayment],
) -> rusqlite::Result<()> {
    let transaction = connection.transaction()?;
    insert_payments(&transaction, merchant, batch)?;
    insert_records(&transaction, merchant, batch)?;
    transaction.commit()
}

fn insert_payments(
    transaction: &Transaction<'_>,
    merchant: &str,
    batch: &[SeededPayment],
) -> rusqlite::Result<()> {
    let mut insert = transaction.prepare_cached(
        "INSERT INTO payments (id, merchant, idempotency_key, amount, currency, status,
                payment_method, description, metadata, psp_key, created_at, updated_at,
                checked_at, history)
             VALUES (?1, ?2, ?3, ?4, ?5, 'succeeded', 'pm_card_ok', ?6, ?7, ?8, ?9, ?10, ?10, ?11)",
    )?;
    for row in batch {
        insert.execute(params![
            row.id,
            merchant,
            row.key,
            row.amount,
            row.currency,
            row.description,
            row.metadata,
            row.psp_key,
            row.created_at,
            row.settled_at,
            row.history,
        ])?;
    }
    Ok(())
}

/// Inserts the records in key order: random keys, sorted, touch the
/// (merchant, key) index page after page rather than all over it. Compared
/// once on the project's 2-core VM, ten million records took 207 s this way
/// against 234 s in creation order.
fn insert_records(
    transaction: &Transaction<'_>,
    merchant: &str,
    batch: &[SeededPayment],
) -> rusqlite::Result<()> {
    let mut insert = transaction.prepare_cached(
        "INSERT INTO idempotency_records
                (merchant, key, fingerprint, payment_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let mut by_key: Vec<&SeededPayment> = batch.iter().collect();
    by_key.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    for row in by_key {
        insert.execute(params![
            merchant,
            row.key,
            row.fingerprint,
            row.id,
            row.created_at,
            row.created_at + RECORD_LIFETIME_MILLIS,
        ])?;
    }
    Ok(())
}

fn report_progress(inserted: u64, records: u64, started: Instant) {
    let seconds = started.elapsed().as_secs_f64();
    let rate = inserted as f64 / seconds.max(0.001);
    eprintln!("seed: {inserted} / {records} records, {seconds:.1} s, {rate:.0} records/s");
}

fn file_size(path: &Path) -> std::io::Result<u64> {
    Ok(std::fs::metadata(path)?.len())
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}
