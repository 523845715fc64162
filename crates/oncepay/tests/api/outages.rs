//! A durable store that fails under oncepay: the caller learns that it may
//! retry, never the internal error, and nothing is charged or burnt.

use rusqlite::Connection;

use crate::helpers::{Answer, Settings, TestApp, fresh_key, payment_body};

/// Pieces of SQLite's and serde_json's own error texts, which must never
/// reach a client.
const INTERNAL_WORDS: [&str; 4] = ["sqlite", "database is locked", "line 1", "column"];

fn assert_no_internal_detail(answer: &Answer) {
    let text = answer.text().to_lowercase();
    for word in INTERNAL_WORDS {
        assert!(
            !text.contains(word),
            "internal detail {word:?} leaked: {text}"
        );
    }
}

#[tokio::test]
async fn a_payment_while_the_store_is_locked_is_a_503_and_the_same_key_proceeds_after() {
    let app = TestApp::spawn_with(Settings::new().on_sqlite()).await;
    let key = fresh_key();
    let blocker = Connection::open(app.database_path()).expect("open the store's file");
    blocker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");

    let refused = app.post_payment(&key, &payment_body("pm_card_ok")).await;
    blocker
        .execute_batch("COMMIT")
        .expect("release the write lock");
    let retried = app.post_payment(&key, &payment_body("pm_card_ok")).await;

    refused.assert_problem(503, "store-unavailable");
    assert_no_internal_detail(&refused);
    retried.assert_succeeded();
    assert_eq!(retried.replayed(), Some("false"));
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn a_payment_record_that_cannot_be_read_is_a_500_without_internal_detail() {
    let app = TestApp::spawn_with(Settings::new().on_sqlite()).await;
    let paid = app
        .post_payment(&fresh_key(), &payment_body("pm_card_ok"))
        .await;
    let id = paid.payment_id();
    // Breaking a stored row is the only way to reach this path from outside;
    // it ties this one test to the SQLite store's `payments` table.
    let store = Connection::open(app.database_path()).expect("open the store's file");
    let changed = store
        .execute(
            "UPDATE payments SET metadata = '{broken' WHERE id = ?1",
            [&id],
        )
        .expect("break the stored payment");
    assert_eq!(changed, 1);

    let answer = app.get_payment(&id).await;

    answer.assert_problem(500, "internal-error");
    assert_no_internal_detail(&answer);
}
