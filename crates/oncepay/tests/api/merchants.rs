//! Merchants with API keys: authentication, and keys and payments scoped to
//! the merchant that owns them.

use crate::helpers::{Settings, TestApp, fresh_key, payment_body};

const ACME: &str = "key_acme_4f1d9a0c";
const GLOBEX: &str = "key_globex_77b2e6d1";

async fn spawn_two_merchants() -> TestApp {
    let settings = Settings::new().merchants(&[("acme", ACME), ("globex", GLOBEX)]);
    TestApp::spawn_with(settings).await
}

#[tokio::test]
async fn the_same_key_from_two_merchants_makes_two_payments() {
    let app = spawn_two_merchants().await;
    let key = fresh_key();
    let body = payment_body("pm_card_ok");

    let acme = app.post_payment_by(Some(ACME), &key, &body).await;
    let globex = app.post_payment_by(Some(GLOBEX), &key, &body).await;

    acme.assert_succeeded();
    globex.assert_succeeded();
    assert_eq!(acme.replayed(), Some("false"));
    assert_eq!(globex.replayed(), Some("false"));
    assert_ne!(acme.payment_id(), globex.payment_id());
    assert_eq!(app.charges().len(), 2);
}

#[tokio::test]
async fn a_merchant_cannot_see_another_merchants_payment() {
    let app = spawn_two_merchants().await;
    let paid = app
        .post_payment_by(Some(ACME), &fresh_key(), &payment_body("pm_card_ok"))
        .await;
    let id = paid.payment_id();

    let by_owner = app.get_by(Some(ACME), &format!("/v1/payments/{id}")).await;
    let by_other = app
        .get_by(Some(GLOBEX), &format!("/v1/payments/{id}"))
        .await;
    let others_list = app.get_by(Some(GLOBEX), "/v1/payments").await;

    by_owner.assert_status(200);
    by_other.assert_problem(404, "payment-not-found");
    let listed = others_list.assert_status(200).json();
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(0), "{listed}");
}

#[tokio::test]
async fn a_missing_or_wrong_api_key_is_refused_with_401_and_the_key_then_proceeds() {
    let app = spawn_two_merchants().await;
    let key = fresh_key();
    let body = payment_body("pm_card_ok").to_string();

    let anonymous = app.send(app.payment_request_by(None, &[&key], &body)).await;
    let wrong = app
        .send(app.payment_request_by(Some("key_not_configured"), &[&key], &body))
        .await;
    let listing = app.get_by(Some("key_not_configured"), "/v1/payments").await;
    let corrected = app
        .send(app.payment_request_by(Some(ACME), &[&key], &body))
        .await;

    for refused in [&anonymous, &wrong, &listing] {
        refused.assert_problem(401, "unauthorized");
        let challenge = refused.header("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "WWW-Authenticate: {challenge:?}"
        );
    }
    corrected.assert_succeeded();
    assert_eq!(corrected.replayed(), Some("false"));
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn a_bearer_key_configured_for_one_merchant_does_not_replay_the_others_answer() {
    let app = spawn_two_merchants().await;
    let key = fresh_key();
    let acme_body = payment_body("pm_card_ok");
    let first = app.post_payment_by(Some(ACME), &key, &acme_body).await;

    let globex_declined = app
        .post_payment_by(Some(GLOBEX), &key, &payment_body("pm_card_declined"))
        .await;

    first.assert_succeeded();
    globex_declined.assert_problem(402, "payment-declined");
    assert_eq!(globex_declined.replayed(), Some("false"));
}
