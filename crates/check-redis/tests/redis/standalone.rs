//! The scenarios against the shared standalone Redis, one test each.

use std::time::Duration;

use oncepay_check_redis::RedisCheckOptions;
use oncepay_engine::FastCheck;

use crate::helpers::{SharedCheck, fingerprint, scope};
use crate::scenarios;

#[tokio::test]
async fn a_new_key_is_marked_then_reported_in_flight() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    scenarios::a_new_key_is_marked_then_reported_in_flight(&shared.check).await;
}

#[tokio::test]
async fn an_answer_replaces_the_mark_and_round_trips() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    scenarios::an_answer_replaces_the_mark_and_round_trips(&shared.check).await;
}

#[tokio::test]
async fn clear_removes_the_mark() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    scenarios::clear_removes_the_mark(&shared.check).await;
}

#[tokio::test]
async fn clear_never_deletes_an_answer() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    scenarios::clear_never_deletes_an_answer(&shared.check).await;
}

#[tokio::test]
async fn clearing_an_unknown_key_succeeds() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    scenarios::clearing_an_unknown_key_succeeds(&shared.check).await;
}

#[tokio::test]
async fn a_mark_lapses_after_its_lifetime() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    scenarios::a_mark_lapses_after_its_lifetime(&shared.check).await;
}

#[tokio::test]
async fn an_answer_lapses_after_its_lifetime() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    scenarios::an_answer_lapses_after_its_lifetime(&shared.check).await;
}

#[tokio::test]
async fn merchants_do_not_share_keys() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    scenarios::merchants_do_not_share_keys(&shared.check).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_racing_duplicates_mark_a_key_once() {
    // A loaded CI machine may take longer than the production timeout to
    // serve 200 calls at once; this test is about atomicity, not speed.
    let options = RedisCheckOptions {
        call_timeout: Duration::from_secs(5),
        ..RedisCheckOptions::default()
    };
    let Some(shared) = SharedCheck::connect_with(options).await else {
        return;
    };
    scenarios::racing_duplicates_mark_a_key_once(shared.check.clone(), 200).await;
}

#[tokio::test]
async fn the_idempotency_key_never_appears_in_redis_key_names() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };

    shared
        .check
        .begin(&scope("secret-looking-key-4242"), &fingerprint(1), 30_000)
        .await
        .expect("begin");

    let names = shared.keys_in_redis();
    assert_eq!(names.len(), 1);
    assert!(!names[0].contains("secret-looking-key-4242"));
    assert!(names[0].contains("{acme:"));
}

#[tokio::test]
async fn a_standalone_server_is_reported_as_redis() {
    let Some(shared) = SharedCheck::connect().await else {
        return;
    };
    assert_eq!(shared.check.backend(), "redis");
}
