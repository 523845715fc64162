//! Processes that die or stop: a crash while the PSP call is in flight must
//! not strand the key nor charge twice, and answers given before a restart
//! are replayed after it, byte for byte.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Answer, Settings, TestApp, eventually, fresh_key, payment_body};

/// A PSP slow enough to be killed mid-call, and a lease that lapses soon.
fn crashable() -> Settings {
    Settings::new()
        .env("ONCEPAY_PSP_LATENCY_MS", 2000)
        .env("ONCEPAY_LEASE_TTL_MS", 3000)
        .env("ONCEPAY_PSP_TIMEOUT_MS", 2500)
        .env("ONCEPAY_RECOVERY_INTERVAL_MS", 200)
}

/// Starts a payment, waits until the PSP has booked it, then kills oncepay
/// before it records the answer and starts it again on the same files.
async fn crash_while_the_psp_answers(app: &mut TestApp, key: &str) {
    let request = app.payment_request(key, &payment_body("pm_card_ok"));
    let in_flight = tokio::spawn(request.send());
    eventually(
        "the PSP has booked the charge",
        Duration::from_secs(10),
        || {
            let booked = !app.charges().is_empty();
            async move { booked.then_some(()) }
        },
    )
    .await;

    app.kill9();
    let lost = in_flight.await.expect("the request task");
    assert!(lost.is_err(), "the killed process must not have answered");
    app.restart().await;
}

fn statuses(payment: &Value) -> Vec<String> {
    let history = payment["history"].as_array().expect("a history");
    history
        .iter()
        .map(|change| change["status"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test]
async fn a_retry_after_a_crash_mid_charge_gets_409_until_the_lease_lapses_then_the_payment() {
    let mut app = TestApp::spawn_with(crashable()).await;
    let key = fresh_key();
    crash_while_the_psp_answers(&mut app, &key).await;

    let (app, body) = (&app, payment_body("pm_card_ok"));
    let settled: Answer = eventually("a retry gets the payment", Duration::from_secs(30), || {
        let request = app.payment_request(&key, &body);
        async move {
            let answer = app.send(request).await;
            match answer.status {
                409 => {
                    answer.assert_problem(409, "idempotency-key-in-use");
                    assert!(answer.header("retry-after").is_some());
                    None
                }
                _ => Some(answer),
            }
        }
    })
    .await;

    let payment = settled.assert_succeeded();
    assert_eq!(settled.replayed(), Some("true"));
    assert_eq!(
        statuses(&payment).last().map(String::as_str),
        Some("succeeded")
    );
    assert_eq!(app.charges().len(), 1, "{:?}", app.charges());
    let takeovers = app.metric("oncepay_lease_takeovers_total", "").await;
    let psp_calls = app.metric("oncepay_psp_calls_total", "").await;
    assert!(
        takeovers >= 1.0 || psp_calls >= 1.0,
        "the restarted process must have resumed the payment"
    );
    let listed = app.list_payments("limit=100").await.json();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(1), "{listed}");
}

#[tokio::test]
async fn the_recovery_job_finishes_a_crashed_payment_without_any_retry() {
    let settings = crashable().env("ONCEPAY_REDRIVE_AFTER_MS", 1000);
    let mut app = TestApp::spawn_with(settings).await;
    let key = fresh_key();
    crash_while_the_psp_answers(&mut app, &key).await;

    let app = &app;
    let id = eventually(
        "the payment is listed",
        Duration::from_secs(10),
        || async move {
            let listed = app.list_payments("limit=1").await.json();
            listed["data"][0]["id"].as_str().map(str::to_owned)
        },
    )
    .await;
    let payment = eventually(
        "recovery settles the payment",
        Duration::from_secs(30),
        || {
            let id = id.clone();
            async move {
                let payment = app.get_payment(&id).await.json();
                (payment["status"] == "succeeded").then_some(payment)
            }
        },
    )
    .await;

    assert!(statuses(&payment).contains(&"succeeded".to_owned()));
    assert_eq!(app.charges().len(), 1);
    let retry = app.post_payment(&key, &payment_body("pm_card_ok")).await;
    retry.assert_succeeded();
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(app.charges().len(), 1);
}

/// A payment answered before a restart: its key, its body, its answer.
type Answered = (String, Value, Answer);

/// Pays once with each outcome that has a final answer.
async fn pay_final_outcomes(app: &TestApp) -> Vec<Answered> {
    let mut answered = Vec::new();
    for method in ["pm_card_ok", "pm_card_declined", "pm_card_ok"] {
        let (key, body) = (fresh_key(), payment_body(method));
        let answer = app.post_payment(&key, &body).await;
        assert!(matches!(answer.status, 201 | 402), "{}", answer.text());
        answered.push((key, body, answer));
    }
    answered
}

async fn assert_replayed_identically(app: &TestApp, answered: &[Answered]) {
    for (key, body, before) in answered {
        let after = app.post_payment(key, body).await;

        assert_eq!(after.status, before.status, "{}", after.text());
        assert_eq!(after.replayed(), Some("true"));
        assert_eq!(after.body, before.body, "replayed bodies must be identical");
        assert_eq!(after.header("location"), before.header("location"));
    }
}

#[tokio::test]
async fn answers_given_before_a_graceful_restart_are_replayed_identically_after_it() {
    let mut app = TestApp::spawn().await;
    let answered = pay_final_outcomes(&app).await;
    let charges = app.charges().len();

    let exit = app.sigterm().await;
    app.restart().await;

    assert!(
        exit.success(),
        "a graceful shutdown exits with 0, got {exit}"
    );
    assert_replayed_identically(&app, &answered).await;
    assert_eq!(app.charges().len(), charges);
}

#[tokio::test]
async fn answers_given_before_a_kill_are_replayed_identically_after_restart() {
    let mut app = TestApp::spawn().await;
    let answered = pay_final_outcomes(&app).await;
    let charges = app.charges().len();

    app.kill9();
    app.restart().await;

    assert_replayed_identically(&app, &answered).await;
    assert_eq!(app.charges().len(), charges);
}
