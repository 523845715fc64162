//! Upgrading a SQLite file written by the previous release (schema version 1,
//! before migration 2 rebuilt `payments`), through the real binary.
//!
//! `fixtures/schema-v1` holds what release aaef14d wrote and answered: its
//! `oncepay.db` and the simulated PSP's `psp-ledger.db`, made by that
//! release's own binary (merchants `acme` and `beta`, retention 100 years so
//! the records never lapse), and `answers.json`, every answer it gave. The
//! file holds final payments, pending ones (one still waiting for a status
//! update, one whose PSP answer was lost), status updates (applied and
//! contradicting), an issued key not used yet, and a payment whose process
//! was killed (SIGKILL) while the PSP held its charge, so its lease lapsed
//! unreleased.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OpenFlags, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::helpers::{Answer, Settings, TestApp, eventually, payment_body};

const ACME: &str = "acme-key-0123456789";
const BETA: &str = "beta-key-0123456789";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/fixtures/schema-v1")
        .join(name)
}

/// What the previous release answered while it wrote the fixture.
fn old_answers() -> Value {
    let text = std::fs::read_to_string(fixture("answers.json")).expect("read answers.json");
    serde_json::from_str(&text).expect("answers.json is JSON")
}

fn settings() -> Settings {
    Settings::new()
        .on_sqlite()
        .merchants(&[("acme", ACME), ("beta", BETA)])
        .env("ONCEPAY_RECOVERY_INTERVAL_MS", 100)
}

fn api_key(merchant: &str) -> &'static str {
    match merchant {
        "acme" => ACME,
        "beta" => BETA,
        other => panic!("no API key for merchant {other}"),
    }
}

fn text(value: &Value) -> &str {
    value.as_str().expect("a string in answers.json")
}

/// An app on copies of the fixture's files, not started yet.
fn app_on_fixture() -> TestApp {
    TestApp::prepared_on(
        settings(),
        &fixture("oncepay.db"),
        &fixture("psp-ledger.db"),
    )
}

async fn post_raw(app: &TestApp, merchant: &str, key: &str, body: &str) -> Answer {
    let request = app.payment_request_by(Some(api_key(merchant)), &[key], body);
    app.send(request).await
}

async fn listed_ids(app: &TestApp, merchant: &str, query: &str) -> Vec<String> {
    let page = app
        .get_by(Some(api_key(merchant)), &format!("/v1/payments?{query}"))
        .await
        .assert_status(200)
        .json();
    let data = page["data"].as_array().expect("a data array");
    data.iter().map(|p| text(&p["id"]).to_owned()).collect()
}

fn open_read_only(path: &Path) -> Connection {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).expect("open the database read-only")
}

fn applied_versions(connection: &Connection) -> Vec<i64> {
    let mut statement = connection
        .prepare("SELECT version FROM schema_migrations ORDER BY version")
        .expect("read schema_migrations");
    let versions = statement
        .query_map([], |row| row.get(0))
        .expect("read schema_migrations");
    versions.collect::<Result<_, _>>().expect("versions")
}

fn payments_table_sql(connection: &Connection) -> String {
    connection
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'payments'",
            [],
            |row| row.get(0),
        )
        .expect("the payments table")
}

/// Asserts the file was upgraded and every reference still points somewhere.
fn assert_upgraded(path: &Path) {
    let connection = open_read_only(path);
    assert_eq!(applied_versions(&connection), [1, 2]);
    assert!(!payments_table_sql(&connection).contains("AUTOINCREMENT"));
    let dangling: Vec<String> = connection
        .prepare("PRAGMA foreign_key_check")
        .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
        .expect("run foreign_key_check");
    assert!(dangling.is_empty(), "rows pointing nowhere in {dangling:?}");
}

/// Every payment the old release showed is shown again, byte for byte
/// while final; every final answer is replayed byte for byte, and a
/// different body under an old key is refused.
async fn assert_old_payments_and_answers_kept(app: &TestApp, old: &Value) {
    let payments = old["payments"].as_object().expect("payments");
    for (id, shown) in payments {
        let merchant = text(&shown["merchant"]);
        let now = app
            .get_by(Some(api_key(merchant)), &format!("/v1/payments/{id}"))
            .await
            .assert_status(200)
            .json();
        let before: Value = serde_json::from_str(text(&shown["answer"])).expect("a payment");
        if before["status"] == "pending" {
            assert_eq!(now["amount"], before["amount"], "{id}");
        } else {
            assert_eq!(now, before, "{id} is shown as the old release showed it");
        }
    }

    for request in old["requests"].as_array().expect("requests") {
        let (merchant, key, body) = (
            text(&request["merchant"]),
            text(&request["key"]),
            text(&request["body"]),
        );
        let status = request["status"].as_u64().expect("a status");
        if status == 201 || status == 402 {
            let replay = post_raw(app, merchant, key, body).await;
            assert_eq!(u64::from(replay.status), status, "{key}: {}", replay.text());
            assert_eq!(replay.replayed(), Some("true"), "{key}");
            assert_eq!(replay.text(), text(&request["answer"]), "{key}");
        }
        let mut other: Value = serde_json::from_str(body).expect("a body");
        other["amount"] = Value::from(1);
        post_raw(app, merchant, key, &other.to_string())
            .await
            .assert_problem(422, "idempotency-key-reused");
    }
}

/// Listing shows the old order, page by page, and an old cursor still
/// continues where it stood, also once a new payment lists first.
async fn assert_old_pages_kept(app: &TestApp, old: &Value) {
    let pages = old["pages"].as_object().expect("pages");
    for (merchant, pages) in pages {
        let mut cursor: Option<String> = None;
        for page in pages.as_array().expect("pages of a merchant") {
            let query = match &cursor {
                Some(cursor) => format!("limit=4&cursor={cursor}"),
                None => "limit=4".to_owned(),
            };
            let expected: Vec<String> = page["ids"]
                .as_array()
                .expect("ids")
                .iter()
                .map(|id| text(id).to_owned())
                .collect();
            assert_eq!(listed_ids(app, merchant, &query).await, expected);
            cursor = page["next_cursor"].as_str().map(str::to_owned);
        }
    }

    let acme = pages["acme"].as_array().expect("acme's pages");
    let old_cursor = text(&acme[0]["next_cursor"]);
    let second_page = listed_ids(app, "acme", &format!("limit=4&cursor={old_cursor}")).await;
    let new = app
        .post_payment_by(Some(ACME), "after-upgrade", &payment_body("pm_card_ok"))
        .await
        .assert_succeeded();
    assert_eq!(listed_ids(app, "acme", "limit=1").await, [text(&new["id"])]);
    let again = listed_ids(app, "acme", &format!("limit=4&cursor={old_cursor}")).await;
    assert_eq!(again, second_page, "an old cursor still continues");
}

#[tokio::test]
async fn a_file_written_by_the_previous_release_keeps_every_payment_record_and_event() {
    let old = old_answers();
    let mut app = app_on_fixture();
    let written = Connection::open(app.database_path()).expect("open the fixture copy");
    assert_eq!(
        applied_versions(&written),
        [1],
        "the fixture predates migration 2"
    );
    assert!(payments_table_sql(&written).contains("AUTOINCREMENT"));
    drop(written);

    app.restart().await;

    assert_upgraded(&app.database_path());
    assert_old_payments_and_answers_kept(&app, &old).await;
    assert_old_pages_kept(&app, &old).await;
    for update in old["status_updates"].as_array().expect("status updates") {
        let id = text(&update["payment_id"]);
        let answer = app
            .settle(id, text(&update["event_id"]), text(&update["status"]))
            .await;
        let status = update["answer_status"].as_u64().expect("a status");
        assert_eq!(u64::from(answer.status), status, "{}", answer.text());
    }
    let issued = text(&old["issued_key"]);
    let first = app
        .post_payment_by(Some(ACME), issued, &payment_body("pm_card_ok"))
        .await;
    first.assert_status(201);
    assert_eq!(first.replayed(), Some("false"));
}

/// The payment whose process the old release lost mid-charge: no answer
/// was ever given, so it is found among the payments by its description.
fn crashed_payment_id(old: &Value) -> String {
    let body: Value = serde_json::from_str(text(&old["in_flight"]["body"])).expect("a body");
    let payments = old["payments"].as_object().expect("payments");
    let (id, _) = payments
        .iter()
        .find(|(_, shown)| {
            let payment: Value = serde_json::from_str(text(&shown["answer"])).expect("a payment");
            payment["description"] == body["description"]
        })
        .expect("the crashed payment is in the old list");
    id.clone()
}

#[tokio::test]
async fn pending_payments_of_the_previous_release_are_recovered_once() {
    let old = old_answers();
    let mut app = app_on_fixture();
    let charged_before = app.charges();
    let ids: BTreeMap<String, String> = old["requests"]
        .as_array()
        .expect("requests")
        .iter()
        .filter(|r| r["status"] == 202)
        .map(|r| {
            let answer: Value = serde_json::from_str(text(&r["answer"])).expect("a payment");
            (text(&r["key"]).to_owned(), text(&answer["id"]).to_owned())
        })
        .collect();
    let in_flight = crashed_payment_id(&old);

    app.restart().await;

    // The lost PSP answer and the crashed process's payment: recovery asks
    // the PSP again with each payment's own PSP key, and the PSP answers
    // with the charge it already booked.
    for id in [ids["v1-timeout"].as_str(), in_flight.as_str()] {
        eventually(
            "recovery settles the payment",
            Duration::from_secs(10),
            || {
                let app = &app;
                async move {
                    let payment = app.get_by(Some(ACME), &format!("/v1/payments/{id}")).await;
                    (payment.json()["status"] == "succeeded").then_some(())
                }
            },
        )
        .await;
    }
    let waiting = &ids["v1-pending"];
    app.settle(waiting, "evt-after-upgrade", "succeeded")
        .await
        .assert_status(200);
    assert_eq!(app.charges(), charged_before, "nothing charged again");
}

/// Copies `rows` payments of the fixture's first one under merchant `bulk`,
/// so migration 2 has enough to copy to be caught halfway.
fn inflate(path: &Path, rows: i64) {
    let connection = Connection::open(path).expect("open the fixture copy");
    connection
        .execute(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
             INSERT INTO payments (id, merchant, idempotency_key, amount, currency, status,
                     payment_method, description, metadata, psp_key, created_at, updated_at,
                     checked_at, history)
                 SELECT printf('pay_bulk%024d', n.i), 'bulk', 'bulk-' || n.i, amount,
                     currency, status, payment_method, description, metadata,
                     printf('psp_bulk%024d', n.i), created_at, updated_at, checked_at, history
                 FROM n, (SELECT * FROM payments ORDER BY seq LIMIT 1)",
            params![rows],
        )
        .expect("inflate the payments");
    connection
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .expect("checkpoint the inflated file");
}

/// Every payment, in order, as a count and a digest of `columns`.
fn payment_rows(connection: &Connection, columns: &str) -> (i64, String) {
    let sql = format!(
        "SELECT count(*), group_concat({columns}, ',') FROM (SELECT * FROM payments ORDER BY seq)"
    );
    let (count, rows): (i64, String) = connection
        .query_row(&sql, [], |row| Ok((row.get(0)?, row.get(1)?)))
        .expect("read the payments");
    (count, hex::encode(Sha256::digest(rows.as_bytes())))
}

/// What a payment is, whatever happens to it later.
const FIXED: &str = "seq || id || merchant || amount || psp_key || created_at";
/// Every column, so a digest tells whether anything changed.
const ALL: &str = "seq || id || merchant || idempotency_key || amount || currency || status \
                   || payment_method || ifnull(description, '') || metadata || psp_key \
                   || created_at || updated_at || checked_at || history";

fn with_suffix(database: &Path, suffix: &str) -> PathBuf {
    let mut path = database.as_os_str().to_owned();
    path.push(suffix);
    PathBuf::from(path)
}

fn log_len(database: &Path) -> u64 {
    std::fs::metadata(with_suffix(database, "-wal")).map_or(0, |m| m.len())
}

/// Opens a copy, in `dir`, of the database with its log and shared memory.
fn copy_with_log(database: &Path, dir: &Path) -> Connection {
    let copy = dir.join("copy.db");
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(database, suffix);
        if from.exists() {
            std::fs::copy(&from, with_suffix(&copy, suffix)).expect("copy the database");
        }
    }
    Connection::open(&copy).expect("open the copy")
}

#[tokio::test]
async fn a_start_killed_halfway_through_the_upgrade_leaves_it_whole_to_the_next() {
    let mut app = app_on_fixture();
    let database = app.database_path();
    inflate(&database, 100_000);
    let before = open_read_only(&database);
    let (fixed, all) = (payment_rows(&before, FIXED), payment_rows(&before, ALL));
    drop(before);

    // Killed once the migration has copied a few MiB into the log: it is
    // still copying, not listening yet.
    let listening = app.launch();
    let deadline = Instant::now() + Duration::from_secs(30);
    while log_len(&database) < 4 << 20 {
        assert!(Instant::now() < deadline, "the migration never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    app.kill9();
    assert!(listening.try_recv().is_err(), "killed before listening");
    // A copy is opened, so the next start finds the file as the kill left it.
    let copy = tempfile::tempdir().expect("a directory for a copy");
    let killed = copy_with_log(&database, copy.path());
    assert_eq!(applied_versions(&killed), [1], "nothing half-done");
    assert!(payments_table_sql(&killed).contains("AUTOINCREMENT"));
    assert_eq!(payment_rows(&killed, ALL), all, "nothing lost or changed");

    app.restart().await;

    assert_upgraded(&database);
    // Recovery may have settled the pending payments since; nothing else.
    assert_eq!(payment_rows(&open_read_only(&database), FIXED), fixed);
    let newest = app
        .post_payment_by(Some(ACME), "after-the-crash", &payment_body("pm_card_ok"))
        .await
        .assert_succeeded();
    assert_eq!(
        listed_ids(&app, "acme", "limit=1").await,
        [text(&newest["id"])]
    );
}
