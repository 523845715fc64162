//! Duplicates arriving at the same moment: whatever the interleaving, one
//! key is one charge, and every answer is the payment or a 409 to retry.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Barrier;

use crate::helpers::{Answer, Settings, TestApp, fetch, fresh_key, payment_body};

/// Slow enough that simultaneous duplicates overlap with the first execution.
fn slow_psp() -> Settings {
    Settings::new().env("ONCEPAY_PSP_LATENCY_MS", 200)
}

/// Sends every request at once (after a barrier) and collects the answers.
async fn fire(app: &TestApp, requests: Vec<(String, Value)>) -> Vec<(String, Answer)> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(key, body)| {
            let request = app.payment_request(&key, &body);
            let barrier = Arc::clone(&barrier);
            tokio::spawn(async move {
                barrier.wait().await;
                (key, fetch(request).await.expect("oncepay answers"))
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(tasks.len());
    for task in tasks {
        answers.push(task.await.expect("the request task"));
    }
    answers
}

/// Checks one key's answers: 201 with one identical body, or 409 to retry.
/// Returns the body of the payment and how many 409s there were.
fn assert_one_payment_per_key(answers: &[&Answer]) -> (Vec<u8>, usize) {
    let mut bodies = BTreeSet::new();
    let mut conflicts = 0;
    for answer in answers {
        match answer.status {
            201 => {
                bodies.insert(answer.body.clone());
            }
            409 => {
                answer.assert_problem(409, "idempotency-key-in-use");
                let retry_after = answer.header("retry-after").unwrap_or_default();
                assert!(
                    retry_after.parse::<u64>().is_ok(),
                    "Retry-After: {retry_after:?}"
                );
                conflicts += 1;
            }
            other => panic!("unexpected {other}: {}", answer.text()),
        }
    }
    assert_eq!(bodies.len(), 1, "every 201 must carry the same body");
    let body = bodies.pop_first().expect("one body");
    (body, conflicts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_simultaneous_identical_requests_charge_once() {
    let app = TestApp::spawn_with(slow_psp()).await;
    let key = fresh_key();
    let requests = vec![(key.clone(), payment_body("pm_card_ok")); 200];

    let answers = fire(&app, requests).await;

    let answers: Vec<&Answer> = answers.iter().map(|(_, answer)| answer).collect();
    let (body, conflicts) = assert_one_payment_per_key(&answers);
    let first_executions = answers
        .iter()
        .filter(|a| a.replayed() == Some("false"))
        .count();
    assert_eq!(
        first_executions, 1,
        "exactly one answer is the first execution"
    );
    assert!(
        conflicts >= 1,
        "the duplicates must overlap the first execution"
    );
    assert_eq!(app.charges().len(), 1);
    let listed = app.list_payments("limit=100").await.json();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
    let conflict_metric = app.metric("oncepay_idempotency_conflicts_total", "").await;
    assert_eq!(conflict_metric, conflicts as f64);
    let late_retry = app.post_payment(&key, &payment_body("pm_card_ok")).await;
    assert_eq!(
        (late_retry.status, late_retry.replayed()),
        (201, Some("true"))
    );
    assert_eq!(late_retry.body, body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_keys_each_sent_ten_times_at_once_make_fifty_payments_and_fifty_charges() {
    let app = TestApp::spawn_with(slow_psp()).await;
    let keys: Vec<String> = (0..50).map(|_| fresh_key()).collect();
    let requests = keys
        .iter()
        .flat_map(|key| std::iter::repeat_n(key.clone(), 10))
        .map(|key| (key, payment_body("pm_card_ok")))
        .collect();

    let answers = fire(&app, requests).await;

    let mut by_key: BTreeMap<&str, Vec<&Answer>> = BTreeMap::new();
    for (key, answer) in &answers {
        by_key.entry(key.as_str()).or_default().push(answer);
    }
    let (mut ids, mut conflicts) = (BTreeSet::new(), 0);
    for answers in by_key.values() {
        let (body, refused) = assert_one_payment_per_key(answers);
        conflicts += refused;
        let payment: Value = serde_json::from_slice(&body).expect("a payment");
        ids.insert(payment["id"].as_str().expect("an id").to_owned());
    }
    assert_eq!(ids.len(), 50, "one distinct payment per key");
    assert!(
        conflicts >= 1,
        "the duplicates must overlap the first executions"
    );
    let charges = app.charges();
    let psp_keys: BTreeSet<&str> = charges.iter().map(|c| c.psp_key.as_str()).collect();
    assert_eq!((charges.len(), psp_keys.len()), (50, 50));
    let listed = app.list_payments("limit=100").await.json();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(50));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_retries_of_a_pending_payment_never_charge_twice() {
    let app = TestApp::spawn_with(slow_psp()).await;
    let key = fresh_key();
    let body = payment_body("pm_card_pending");
    let first = app.post_payment(&key, &body).await;
    first.assert_status(202);

    let answers = fire(&app, vec![(key.clone(), body); 20]).await;

    let mut redriven = 0;
    for (_, answer) in &answers {
        match answer.status {
            202 => {
                assert_eq!(answer.replayed(), Some("true"));
                assert_eq!(answer.json()["id"], first.json()["id"]);
                redriven += 1;
            }
            409 => {
                answer.assert_problem(409, "idempotency-key-in-use");
                assert!(answer.header("retry-after").is_some());
            }
            other => panic!("unexpected {other}: {}", answer.text()),
        }
    }
    assert!(redriven >= 1, "at least one retry re-drives the payment");
    assert_eq!(app.charges().len(), 1);
}

/// A request with another body on the same key must not turn a correct
/// retry into a `422`: its in-flight mark in the primary check is only what
/// that request claims, not what the key was recorded with. Here the key's
/// payment is pending, so no answer is cached and every request marks the
/// key on its way to the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_different_body_in_flight_never_gets_a_correct_retry_refused() {
    let app = TestApp::spawn_with(slow_psp()).await;
    let key = fresh_key();
    let body = payment_body("pm_card_pending");
    let mut other = body.clone();
    other["amount"] = 1251.into();
    let first = app.post_payment(&key, &body).await;
    first.assert_status(202);

    for _ in 0..5 {
        let requests = (0..40)
            .map(|n| {
                let sent = if n % 2 == 0 { &body } else { &other };
                (key.clone(), sent.clone())
            })
            .collect();
        let answers = fire(&app, requests).await;
        for (n, (_, answer)) in answers.iter().enumerate() {
            if n % 2 == 0 {
                assert!(
                    matches!(answer.status, 202 | 409),
                    "the key's own body got {}: {}",
                    answer.status,
                    answer.text()
                );
            } else {
                assert!(
                    matches!(answer.status, 409 | 422),
                    "another body got {}: {}",
                    answer.status,
                    answer.text()
                );
            }
        }
    }
    assert_eq!(app.charges().len(), 1);
}
