//! What every Redis deployment must do, written once and run against a
//! standalone server and a cluster. Each scenario uses keys named after it,
//! so they can share one check and one key prefix.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oncepay_check_redis::RedisCheck;
use oncepay_engine::{FastBegin, FastCheck};

use crate::helpers::{final_payment, fingerprint, scope, scope_of};

const LEASE_MILLIS: u64 = 30_000;

/// The first `begin` marks the key; the next one sees the mark, with the
/// first request's fingerprint and the time left.
pub async fn a_new_key_is_marked_then_reported_in_flight(check: &RedisCheck) {
    let key = scope("new-key-is-marked");

    let first = check.begin(&key, &fingerprint(1), LEASE_MILLIS).await;
    let second = check.begin(&key, &fingerprint(2), LEASE_MILLIS).await;

    assert!(matches!(first, Ok(FastBegin::Marked)), "{first:?}");
    let Ok(FastBegin::InFlight {
        fingerprint: theirs,
        remaining_millis,
    }) = second
    else {
        panic!("expected the key in flight, got {second:?}");
    };
    assert_eq!(theirs, fingerprint(1));
    assert!(remaining_millis > 0 && remaining_millis <= LEASE_MILLIS);
}

/// An answer replaces the mark and comes back whole, with the fingerprint of
/// the request it answered.
pub async fn an_answer_replaces_the_mark_and_round_trips(check: &RedisCheck) {
    let key = scope("answer-round-trips");
    let payment = Arc::new(final_payment());
    check
        .begin(&key, &fingerprint(1), LEASE_MILLIS)
        .await
        .expect("begin");

    check
        .answer(&key, &fingerprint(1), Arc::clone(&payment), 60_000)
        .await
        .expect("answer");
    let later = check.begin(&key, &fingerprint(2), LEASE_MILLIS).await;

    let Ok(FastBegin::Answered {
        fingerprint: theirs,
        payment: recorded,
        remaining_millis,
    }) = later
    else {
        panic!("expected the recorded answer, got {later:?}");
    };
    assert_eq!(theirs, fingerprint(1));
    assert_eq!(*recorded, *payment);
    assert!(
        (1..=60_000).contains(&remaining_millis),
        "{remaining_millis}"
    );
}

/// Clearing a mark frees the key for the next request.
pub async fn clear_removes_the_mark(check: &RedisCheck) {
    let key = scope("clear-removes-mark");
    check
        .begin(&key, &fingerprint(1), LEASE_MILLIS)
        .await
        .expect("begin");

    check.clear(&key).await.expect("clear");
    let next = check.begin(&key, &fingerprint(2), LEASE_MILLIS).await;

    assert!(matches!(next, Ok(FastBegin::Marked)), "{next:?}");
}

/// Clearing a key that holds an answer keeps the answer.
pub async fn clear_never_deletes_an_answer(check: &RedisCheck) {
    let key = scope("clear-keeps-answer");
    check
        .answer(&key, &fingerprint(1), Arc::new(final_payment()), 60_000)
        .await
        .expect("answer");

    check.clear(&key).await.expect("clear");
    let next = check.begin(&key, &fingerprint(1), LEASE_MILLIS).await;

    assert!(matches!(next, Ok(FastBegin::Answered { .. })), "{next:?}");
}

/// Clearing a key nobody marked is not an error.
pub async fn clearing_an_unknown_key_succeeds(check: &RedisCheck) {
    let cleared = check.clear(&scope("clear-unknown")).await;

    assert!(cleared.is_ok(), "{cleared:?}");
}

/// A mark is a lease: once its time is up, the key can be marked again.
pub async fn a_mark_lapses_after_its_lifetime(check: &RedisCheck) {
    let key = scope("mark-lapses");
    check
        .begin(&key, &fingerprint(1), 150)
        .await
        .expect("begin");
    let deadline = Instant::now() + Duration::from_secs(5);

    let taken_over = loop {
        match check.begin(&key, &fingerprint(2), LEASE_MILLIS).await {
            Ok(FastBegin::Marked) => break true,
            Ok(FastBegin::InFlight { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => panic!("expected the mark to lapse, got {other:?}"),
        }
    };

    assert!(taken_over);
}

/// An answer lapses too, after its own lifetime.
pub async fn an_answer_lapses_after_its_lifetime(check: &RedisCheck) {
    let key = scope("answer-lapses");
    check
        .answer(&key, &fingerprint(1), Arc::new(final_payment()), 100)
        .await
        .expect("answer");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = check.begin(&key, &fingerprint(1), LEASE_MILLIS).await;

    assert!(matches!(next, Ok(FastBegin::Marked)), "{next:?}");
}

/// The same key of two merchants is two independent entries.
pub async fn merchants_do_not_share_keys(check: &RedisCheck) {
    let ours = scope_of("acme", "shared-key-text");
    let theirs = scope_of("globex", "shared-key-text");

    let first = check.begin(&ours, &fingerprint(1), LEASE_MILLIS).await;
    let second = check.begin(&theirs, &fingerprint(2), LEASE_MILLIS).await;

    assert!(matches!(first, Ok(FastBegin::Marked)), "{first:?}");
    assert!(matches!(second, Ok(FastBegin::Marked)), "{second:?}");
}

/// Duplicates racing on one key: exactly one marks it, and every other one
/// sees that request's mark.
pub async fn racing_duplicates_mark_a_key_once(check: Arc<RedisCheck>, racers: u32) {
    let key = scope("racing-duplicates");

    let tasks: Vec<_> = (0..racers)
        .map(|n| {
            let check = Arc::clone(&check);
            let key = key.clone();
            tokio::spawn(async move { (n, check.begin(&key, &fingerprint(n), LEASE_MILLIS).await) })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.expect("the racer finishes"));
    }

    let winners: Vec<u32> = outcomes
        .iter()
        .filter(|(_, outcome)| matches!(outcome, Ok(FastBegin::Marked)))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one request marks the key");
    let winner = fingerprint(winners[0]);
    for (n, outcome) in &outcomes {
        match outcome {
            Ok(FastBegin::Marked) => {}
            Ok(FastBegin::InFlight { fingerprint, .. }) => assert_eq!(*fingerprint, winner),
            other => panic!("racer {n} got {other:?}"),
        }
    }
}

/// Every scenario above, in turn, on one check.
pub async fn all(check: Arc<RedisCheck>) {
    a_new_key_is_marked_then_reported_in_flight(&check).await;
    an_answer_replaces_the_mark_and_round_trips(&check).await;
    clear_removes_the_mark(&check).await;
    clear_never_deletes_an_answer(&check).await;
    clearing_an_unknown_key_succeeds(&check).await;
    a_mark_lapses_after_its_lifetime(&check).await;
    an_answer_lapses_after_its_lifetime(&check).await;
    merchants_do_not_share_keys(&check).await;
    racing_duplicates_mark_a_key_once(check, 200).await;
}
