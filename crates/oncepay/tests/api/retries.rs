//! Retries of one payment: the first execution, a lost answer, a payment the
//! PSP has not settled yet, and a PSP answer lost on the way back.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{Settings, TestApp, eventually, fresh_key, payment_body};

const PSP_CALLS: &str = "oncepay_psp_calls_total";

#[tokio::test]
async fn a_first_payment_is_charged_once_and_answered_as_not_replayed() {
    let app = TestApp::spawn().await;
    let key = fresh_key();

    let answer = app.post_payment(&key, &payment_body("pm_card_ok")).await;

    let payment = answer.assert_succeeded();
    assert_eq!(answer.replayed(), Some("false"));
    assert_eq!(payment["amount"], 1250);
    assert_eq!(payment["currency"], "EUR");
    assert_eq!(payment["payment_method"], "pm_card_ok");
    assert!(
        payment["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("pay_"))
    );
    for field in ["created_at", "updated_at"] {
        assert!(payment[field].is_string(), "{field} in {payment}");
    }
    let last = payment["history"]
        .as_array()
        .and_then(|h| h.last())
        .cloned();
    let last = last.expect("a history of at least one change");
    assert_eq!(last["status"], "succeeded");
    assert!(
        last["at"].is_string() && last["cause"].is_string(),
        "{last}"
    );

    let charges = app.charges();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(
        (charges[0].amount, charges[0].currency.as_str()),
        (1250, "EUR")
    );
    let fetched = app.get_payment(&answer.payment_id()).await;
    assert_eq!(fetched.assert_status(200).json(), payment);
}

#[tokio::test]
async fn a_retry_after_a_lost_answer_replays_the_same_body_without_charging_again() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let body = payment_body("pm_card_ok");
    let first = app.post_payment(&key, &body).await;
    first.assert_succeeded();

    let retry = app.post_payment(&key, &body).await;

    retry.assert_status(201);
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.body, first.body, "the replay must be byte-identical");
    assert_eq!(retry.header("location"), first.header("location"));
    assert_eq!(app.charges().len(), 1);
    assert!(app.metric("oncepay_idempotent_replays_total", "").await >= 1.0);
}

#[tokio::test]
async fn a_declined_payment_names_the_payment_and_replays_as_the_same_decline() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let body = payment_body("pm_card_declined");

    let first = app.post_payment(&key, &body).await;
    let charges_after_first = app.charges().len();
    let retry = app.post_payment(&key, &body).await;

    let problem = first.assert_problem(402, "payment-declined");
    assert_eq!(first.replayed(), Some("false"));
    assert_eq!(problem["payment"]["status"], "failed", "{problem}");
    assert_eq!(problem["payment"]["id"], problem["payment_id"]);
    first.assert_location_names(&problem["payment_id"]);
    retry.assert_problem(402, "payment-declined");
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.body, first.body);
    assert!(charges_after_first <= 1);
    assert_eq!(app.charges().len(), charges_after_first);
}

#[tokio::test]
async fn a_retry_of_a_pending_payment_asks_the_psp_again_and_answers_the_current_state() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let body = payment_body("pm_card_pending");
    let first = app.post_payment(&key, &body).await;
    let calls_after_first = app.metric(PSP_CALLS, "").await;

    let retry = app.post_payment(&key, &body).await;

    first.assert_status(202);
    assert_eq!(first.replayed(), Some("false"));
    assert_eq!(first.json()["status"], "pending");
    first.assert_location_names(&first.json()["id"]);
    retry.assert_status(202);
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.json()["status"], "pending");
    assert_eq!(retry.json()["id"], first.json()["id"]);
    assert_eq!(retry.header("location"), first.header("location"));
    assert!(
        app.metric(PSP_CALLS, "").await > calls_after_first,
        "the retry must re-drive the payment with the PSP"
    );
    assert_eq!(app.charges().len(), 1, "the re-drive reuses the PSP key");
}

#[tokio::test]
async fn once_a_pending_payment_is_settled_every_retry_replays_the_final_state() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let body = payment_body("pm_card_pending");
    let id = app.post_payment(&key, &body).await.payment_id();

    app.settle(&id, "evt_settle_1", "succeeded")
        .await
        .assert_status(200);
    let after_settling = app.post_payment(&key, &body).await;
    let once_more = app.post_payment(&key, &body).await;

    let payment = after_settling.assert_succeeded();
    assert_eq!(payment["id"], Value::from(id));
    assert_eq!(after_settling.replayed(), Some("true"));
    once_more.assert_replay_of(&after_settling);
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn a_payment_whose_psp_answer_was_lost_is_pending_then_succeeds_on_retry_with_one_charge() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let body = payment_body("pm_card_timeout");

    let first = app.post_payment(&key, &body).await;
    let retry = app.post_payment(&key, &body).await;

    first.assert_status(202);
    assert_eq!(first.json()["status"], "pending");
    let payment = retry.assert_succeeded();
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(payment["id"], first.json()["id"]);
    let statuses: Vec<&Value> = payment["history"]
        .as_array()
        .expect("a history")
        .iter()
        .map(|change| &change["status"])
        .collect();
    assert!(!statuses.contains(&&Value::from("failed")), "{statuses:?}");
    let charges = app.charges();
    assert_eq!(charges.len(), 1, "{charges:?}");
}

#[tokio::test]
async fn a_key_issued_by_oncepay_is_unguessable_and_guards_a_payment() {
    let app = TestApp::spawn().await;

    let issued = app.issue_key().await;
    let other = app.issue_key().await;

    let issued = issued.assert_status(201).json();
    let key = issued["key"].as_str().expect("a key").to_owned();
    // `idk_`, 12 hex digits of time, then 32 random ones: 128 bits, where
    // the contract asks for at least 122.
    let digits = key.strip_prefix("idk_").unwrap_or_default();
    assert_eq!(digits.len(), 44, "{key}");
    assert!(digits.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert!(issued["expires_at"].is_string(), "{issued}");
    assert_ne!(other.json()["key"], issued["key"]);
    let answer = app.post_payment(&key, &payment_body("pm_card_ok")).await;
    answer.assert_succeeded();
    assert_eq!(answer.replayed(), Some("false"));
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_payment_gets_the_completed_payment_on_retry() {
    let app = &TestApp::spawn_with(Settings::new().env("ONCEPAY_PSP_LATENCY_MS", 1000)).await;
    let (key, body) = (fresh_key(), payment_body("pm_card_ok"));
    let abandoned = app
        .payment_request(&key, &body)
        .timeout(Duration::from_millis(300));

    let hung_up = app.try_send(abandoned).await;
    let retry = eventually(
        "the abandoned payment completes",
        Duration::from_secs(10),
        || {
            let request = app.payment_request(&key, &body);
            async move {
                let answer = app.send(request).await;
                (answer.status != 409).then_some(answer)
            }
        },
    )
    .await;

    assert!(hung_up.is_err(), "the client gave up before the answer");
    retry.assert_succeeded();
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn after_the_retention_period_a_key_is_forgotten_but_its_payment_is_kept() {
    let app = &TestApp::spawn_with(Settings::new().env("ONCEPAY_RETENTION_SECS", 1)).await;
    let (key, body) = (fresh_key(), payment_body("pm_card_ok"));
    let first = app.post_payment(&key, &body).await;
    let first_id = first.payment_id();

    let second = eventually("the key's record expires", Duration::from_secs(20), || {
        let request = app.payment_request(&key, &body);
        async move {
            let answer = app.send(request).await;
            (answer.replayed() == Some("false")).then_some(answer)
        }
    })
    .await;

    second.assert_succeeded();
    assert_ne!(
        second.payment_id(),
        first_id,
        "a forgotten key is a new request"
    );
    let kept = app.get_payment(&first_id).await;
    assert_eq!(kept.assert_status(200).json(), first.json());
    assert_eq!(app.charges().len(), 2);
}
