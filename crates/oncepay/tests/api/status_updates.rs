//! Signed status updates from the PSP: only a fresh, correct signature moves a
//! payment; repeated events change nothing; final states stay final.

use serde_json::{Value, json};

use crate::helpers::{
    Settings, TestApp, WEBHOOK_SECRET, fresh_key, payment_body, signature, unix_now,
};

/// Creates a pending payment and returns its id and idempotency key.
async fn pending_payment(app: &TestApp) -> (String, String) {
    let key = fresh_key();
    let answer = app
        .post_payment(&key, &payment_body("pm_card_pending"))
        .await;
    answer.assert_status(202);
    (answer.payment_id(), key)
}

fn update(event_id: &str, status: &str) -> String {
    json!({"event_id": event_id, "status": status}).to_string()
}

async fn current(app: &TestApp, id: &str) -> Value {
    app.get_payment(id).await.assert_status(200).json()
}

#[tokio::test]
async fn a_signed_update_settles_a_pending_payment_and_retries_then_see_the_decline() {
    let app = TestApp::spawn().await;
    let (id, key) = pending_payment(&app).await;

    let settled = app.settle(&id, "evt_fail_1", "failed").await;
    let retry = app
        .post_payment(&key, &payment_body("pm_card_pending"))
        .await;

    let payment = settled.assert_status(200).json();
    assert_eq!(payment["status"], "failed");
    let history = payment["history"].as_array().expect("a history");
    let statuses: Vec<&Value> = history.iter().map(|change| &change["status"]).collect();
    assert_eq!(statuses.first(), Some(&&json!("pending")), "{statuses:?}");
    assert_eq!(statuses.last(), Some(&&json!("failed")), "{statuses:?}");
    assert_eq!(current(&app, &id).await["status"], "failed");
    let problem = retry.assert_problem(402, "payment-declined");
    assert_eq!(problem["payment_id"], json!(id));
    assert_eq!(retry.replayed(), Some("true"));
}

#[tokio::test]
async fn forged_missing_stale_or_mismatched_signatures_are_refused_with_401() {
    let app = TestApp::spawn().await;
    let (id, _) = pending_payment(&app).await;
    let body = update("evt_forged", "succeeded");
    // A minute past the 300 s tolerance: the server reads its clock a few
    // requests later, and at +301 a second ticking over in between once
    // brought "from the future" back within it. The exact edges are the
    // unit tests' (status_updates.rs in http-api, with a fixed clock).
    let now = unix_now();
    let off = 360;
    let other_body = update("evt_other", "succeeded");
    let refused = [
        (
            "wrong secret",
            Some(signature("whsec_not_ours", now, &body)),
        ),
        ("no header", None),
        ("stale", Some(signature(WEBHOOK_SECRET, now - off, &body))),
        (
            "from the future",
            Some(signature(WEBHOOK_SECRET, now + off, &body)),
        ),
        (
            "other body",
            Some(signature(WEBHOOK_SECRET, now, &other_body)),
        ),
        ("garbage", Some("t=abc,v1=zz".to_owned())),
        ("no v1", Some(format!("t={now}"))),
    ];

    for (case, header) in refused {
        let answer = app.post_status(&id, &body, header.as_deref()).await;
        assert_eq!(answer.status, 401, "{case}: {}", answer.text());
        answer.assert_problem(401, "invalid-signature");
    }

    assert_eq!(current(&app, &id).await["status"], "pending");
    let fresh = app.post_status(&id, &body, Some(&app.sign(&body))).await;
    assert_eq!(fresh.assert_status(200).json()["status"], "succeeded");
}

#[tokio::test]
async fn status_updates_are_refused_with_403_when_no_webhook_secret_is_configured() {
    let app = TestApp::spawn_with(Settings::new().without("ONCEPAY_WEBHOOK_SECRET")).await;
    let (id, _) = pending_payment(&app).await;

    let answer = app.settle(&id, "evt_1", "succeeded").await;

    answer.assert_problem(403, "status-updates-disabled");
    assert_eq!(current(&app, &id).await["status"], "pending");
}

#[tokio::test]
async fn a_repeated_event_is_answered_as_before_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let (id, _) = pending_payment(&app).await;
    let first = app.settle(&id, "evt_once", "succeeded").await;
    let before = current(&app, &id).await;

    let repeated = app.settle(&id, "evt_once", "succeeded").await;
    let repeated_other_status = app.settle(&id, "evt_once", "failed").await;

    first.assert_status(200);
    repeated.assert_status(200);
    assert_eq!(repeated.json(), first.json(), "answered as before");
    repeated_other_status.assert_status(200);
    assert_eq!(repeated_other_status.json()["status"], "succeeded");
    let after = current(&app, &id).await;
    assert_eq!(after["history"], before["history"], "history unchanged");
    assert_eq!(after["updated_at"], before["updated_at"]);
}

#[tokio::test]
async fn a_final_payment_cannot_move_to_the_other_final_state() {
    let app = TestApp::spawn().await;
    let (id, _) = pending_payment(&app).await;
    app.settle(&id, "evt_a", "succeeded")
        .await
        .assert_status(200);
    let before = current(&app, &id).await;

    let to_failed = app.settle(&id, "evt_b", "failed").await;
    let same_again = app.settle(&id, "evt_c", "succeeded").await;

    to_failed.assert_problem(409, "status-conflict");
    assert_eq!(same_again.assert_status(200).json()["status"], "succeeded");
    let after = current(&app, &id).await;
    assert_eq!(after["status"], "succeeded");
    assert_eq!(after["history"], before["history"]);
}

#[tokio::test]
async fn a_payment_the_psp_already_declined_cannot_be_marked_succeeded() {
    let app = TestApp::spawn().await;
    let declined = app
        .post_payment(&fresh_key(), &payment_body("pm_card_declined"))
        .await;
    let id = declined.payment_id();

    let answer = app.settle(&id, "evt_late", "succeeded").await;

    answer.assert_problem(409, "status-conflict");
    assert_eq!(current(&app, &id).await["status"], "failed");
}

#[tokio::test]
async fn updates_for_unknown_payments_or_with_bad_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let (id, _) = pending_payment(&app).await;
    let pending_again = update("evt_p", "pending");
    let not_json = "{\"event_id\":";

    let unknown = app.settle("pay_doesnotexist", "evt_x", "succeeded").await;
    let to_pending = app
        .post_status(&id, &pending_again, Some(&app.sign(&pending_again)))
        .await;
    let broken = app
        .post_status(&id, not_json, Some(&app.sign(not_json)))
        .await;

    unknown.assert_problem(404, "payment-not-found");
    to_pending.assert_problem(400, "invalid-request");
    broken.assert_problem(400, "invalid-json");
    assert_eq!(current(&app, &id).await["status"], "pending");
}
