//! Retries sent with the very bytes of an answered request: replayed without
//! being parsed, and never answered differently from the full path.

use serde_json::json;

use crate::helpers::{Settings, TestApp, fetch, fresh_key};

/// One body, spelled once: retries resend exactly these bytes.
const SENT: &str = r#"{"amount":1250,"currency":"EUR","payment_method":"pm_card_ok"}"#;

const REPLAYS: &str = "oncepay_idempotent_replays_total";
const MISMATCHES: &str = "oncepay_idempotency_mismatches_total";
const PSP_CALLS: &str = "oncepay_psp_calls_total";

const ACME: &str = "key_acme_4f1d9a0c";
const GLOBEX: &str = "key_globex_77b2e6d1";

#[tokio::test]
async fn a_byte_identical_retry_is_replayed_with_the_same_payment_and_one_charge() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let first = app.post_payment_raw(&[&key], SENT).await;
    let replays_before = app.metric(REPLAYS, "").await;

    let retry = app.post_payment_raw(&[&key], SENT).await;
    let again = app.post_payment_raw(&[&key], SENT).await;

    first.assert_succeeded();
    assert_eq!(first.replayed(), Some("false"));
    for answer in [&retry, &again] {
        answer.assert_succeeded();
        assert_eq!(answer.replayed(), Some("true"));
        assert_eq!(answer.body, first.body, "the replay is byte-identical");
        assert_eq!(answer.header("location"), first.header("location"));
        assert_eq!(answer.header("content-type"), first.header("content-type"));
    }
    assert_eq!(app.metric(REPLAYS, "").await - replays_before, 2.0);
    assert_eq!(app.metric(PSP_CALLS, "").await, 1.0);
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn a_retry_that_spells_the_same_body_differently_is_still_a_replay() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let first = app.post_payment_raw(&[&key], SENT).await;
    let respelled =
        "{ \"payment_method\": \"pm_card_ok\",\n  \"currency\": \"EUR\", \"amount\": 1250 }";

    let identical = app.post_payment_raw(&[&key], SENT).await;
    let different_bytes = app.post_payment_raw(&[&key], respelled).await;

    first.assert_succeeded();
    for answer in [&identical, &different_bytes] {
        answer.assert_replay_of(&first);
    }
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn a_different_amount_under_the_same_key_is_refused_with_422_after_a_fast_replay() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let first = app.post_payment_raw(&[&key], SENT).await;
    let other_amount = SENT.replace("1250", "1251");

    let identical = app.post_payment_raw(&[&key], SENT).await;
    let reused = app.post_payment_raw(&[&key], &other_amount).await;
    let identical_again = app.post_payment_raw(&[&key], SENT).await;

    first.assert_succeeded();
    assert_eq!(identical.body, first.body);
    reused.assert_problem(422, "idempotency-key-reused");
    assert_eq!(app.metric(MISMATCHES, "").await, 1.0);
    identical_again.assert_status(201);
    assert_eq!(identical_again.body, first.body);
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn a_status_update_that_settles_a_pending_payment_is_seen_by_byte_identical_retries() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let sent = SENT.replace("pm_card_ok", "pm_card_pending");
    let first = app.post_payment_raw(&[&key], &sent).await;
    let id = first.payment_id();
    let calls_after_first = app.metric(PSP_CALLS, "").await;

    let while_pending = app.post_payment_raw(&[&key], &sent).await;
    let calls_after_retry = app.metric(PSP_CALLS, "").await;
    app.settle(&id, "evt_identical_1", "succeeded")
        .await
        .assert_status(200);
    let settled = app.post_payment_raw(&[&key], &sent).await;
    let settled_again = app.post_payment_raw(&[&key], &sent).await;
    app.settle(&id, "evt_identical_2", "failed")
        .await
        .assert_problem(409, "status-conflict");
    let after_conflict = app.post_payment_raw(&[&key], &sent).await;

    first.assert_status(202);
    while_pending.assert_status(202);
    assert_eq!(while_pending.replayed(), Some("true"));
    assert_eq!(while_pending.json()["status"], "pending");
    assert!(
        calls_after_retry > calls_after_first,
        "a pending payment is re-driven, never replayed from its bytes"
    );
    let payment = settled.assert_succeeded();
    assert_eq!(payment["id"], json!(id));
    assert_eq!(settled.replayed(), Some("true"));
    for answer in [&settled_again, &after_conflict] {
        answer.assert_replay_of(&settled);
    }
    let fetched = app.get_payment(&id).await.assert_status(200).json();
    assert_eq!(fetched, payment);
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn a_byte_identical_retry_still_needs_the_merchant_and_one_valid_key() {
    let settings = Settings::new().merchants(&[("acme", ACME), ("globex", GLOBEX)]);
    let app = TestApp::spawn_with(settings).await;
    let key = fresh_key();
    let first = app.post_payment_raw(&[&key], SENT).await;

    let anonymous = app.send(app.payment_request_by(None, &[&key], SENT)).await;
    let twice = app.post_payment_raw(&[&key, &key], SENT).await;
    let other_merchant = app
        .send(app.payment_request_by(Some(GLOBEX), &[&key], SENT))
        .await;

    first.assert_succeeded();
    anonymous.assert_problem(401, "unauthorized");
    twice.assert_problem(400, "invalid-idempotency-key");
    other_merchant.assert_succeeded();
    assert_eq!(other_merchant.replayed(), Some("false"));
    assert_ne!(other_merchant.payment_id(), first.payment_id());
    assert_eq!(app.charges().len(), 2);
}

#[tokio::test]
async fn a_byte_identical_retry_of_a_body_too_large_to_keep_is_still_a_replay() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let body = json!({
        "amount": 1250,
        "currency": "EUR",
        "payment_method": "pm_card_ok",
        "description": "d".repeat(1000),
        "metadata": {"order": "o".repeat(200)},
    })
    .to_string();
    assert!(body.len() > 1024, "larger than the in-process check keeps");
    let first = app.post_payment_raw(&[&key], &body).await;

    let retry = app.post_payment_raw(&[&key], &body).await;

    first.assert_succeeded();
    retry.assert_replay_of(&first);
    assert_eq!(app.charges().len(), 1);
}

/// Exact retries of many keys at once, interleaved and repeated: each gets
/// its own payment's bytes, whichever retry first showed that answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simultaneous_exact_retries_of_twenty_keys_each_get_their_own_payment() {
    let app = TestApp::spawn().await;
    let mut firsts = Vec::new();
    for cents in 1000..1020 {
        let key = fresh_key();
        let body = SENT.replace("1250", &cents.to_string());
        let first = app.post_payment_raw(&[&key], &body).await;
        first.assert_succeeded();
        firsts.push((key, body, first));
    }

    let mut retries = tokio::task::JoinSet::new();
    for _ in 0..10 {
        for (index, (key, body, _)) in firsts.iter().enumerate() {
            let request = app.payment_request_raw(&[key], body);
            retries.spawn(async move { (index, fetch(request).await) });
        }
    }
    let answers = retries.join_all().await;

    assert_eq!(answers.len(), 200);
    for (index, answer) in answers {
        let answer = answer.expect("oncepay answers");
        let (_, _, first) = &firsts[index];
        answer.assert_replay_of(first);
        assert_eq!(answer.header("location"), first.header("location"));
        assert_eq!(answer.header("content-type"), first.header("content-type"));
    }
    assert_eq!(app.metric(PSP_CALLS, "").await, 20.0);
    assert_eq!(app.charges().len(), 20);
}

#[tokio::test]
async fn a_byte_identical_retry_of_a_declined_payment_is_declined_again() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let sent = SENT.replace("pm_card_ok", "pm_card_declined");
    let first = app.post_payment_raw(&[&key], &sent).await;

    let retry = app.post_payment_raw(&[&key], &sent).await;
    let again = app.post_payment_raw(&[&key], &sent).await;

    first.assert_problem(402, "payment-declined");
    assert_eq!(first.replayed(), Some("false"));
    for answer in [&retry, &again] {
        answer.assert_problem(402, "payment-declined");
        assert_eq!(answer.replayed(), Some("true"));
        assert_eq!(answer.body, first.body, "the decline is shown as before");
    }
    assert_eq!(app.metric(PSP_CALLS, "").await, 1.0);
}
