//! Requests oncepay refuses: each gets its status code and problem type,
//! records nothing against its key, so the corrected retry with the same key
//! goes through as a first execution.

use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_key, payment_body};

/// Sends the corrected body with `key` and checks it is executed, not replayed.
async fn assert_key_still_usable(app: &TestApp, key: &str) {
    let answer = app.post_payment(key, &payment_body("pm_card_ok")).await;
    answer.assert_succeeded();
    assert_eq!(answer.replayed(), Some("false"), "key {key:?} was burnt");
}

fn with(extra: Value) -> Value {
    let mut body = payment_body("pm_card_ok");
    let fields = body.as_object_mut().expect("an object");
    for (name, value) in extra.as_object().expect("an object") {
        fields.insert(name.clone(), value.clone());
    }
    body
}

#[tokio::test]
async fn a_payment_without_an_idempotency_key_is_refused_with_400() {
    let app = TestApp::spawn().await;
    let body = payment_body("pm_card_ok").to_string();

    let answer = app.post_payment_raw(&[], &body).await;

    answer.assert_problem(400, "missing-idempotency-key");
    assert!(app.charges().is_empty());
}

#[tokio::test]
async fn empty_malformed_too_long_or_repeated_keys_are_refused_and_nothing_is_charged() {
    let app = TestApp::spawn().await;
    let body = payment_body("pm_card_ok").to_string();
    let long = "k".repeat(256);
    let cases: [(&str, &[&str]); 6] = [
        ("empty", &[""]),
        ("empty sf-string", &["\"\""]),
        ("unterminated sf-string", &["\"open"]),
        ("not ASCII", &["caf\u{e9}"]),
        ("longer than 255", &[long.as_str()]),
        ("sent twice", &["twice-a", "twice-b"]),
    ];

    for (case, keys) in cases {
        let answer = app.post_payment_raw(keys, &body).await;
        assert_eq!(answer.status, 400, "{case}: {}", answer.text());
        answer.assert_problem(400, "invalid-idempotency-key");
    }

    assert!(app.charges().is_empty());
    assert_key_still_usable(&app, "twice-a").await;
}

#[tokio::test]
async fn a_key_of_exactly_255_characters_is_accepted() {
    let app = TestApp::spawn().await;

    assert_key_still_usable(&app, &"k".repeat(255)).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_is_refused_and_the_same_key_then_proceeds() {
    let app = TestApp::spawn().await;
    let key = fresh_key();

    let answer = app.post_payment_raw(&[&key], "{\"amount\": 1250,").await;

    answer.assert_problem(400, "invalid-json");
    assert_key_still_usable(&app, &key).await;
}

/// Parsers disagree on which of two same-named members counts; oncepay
/// charges neither.
#[tokio::test]
async fn a_body_that_names_a_member_twice_is_refused_and_charges_nothing() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let bodies = [
        r#"{"amount":500,"currency":"EUR","payment_method":"pm_card_ok","amount":900}"#,
        r#"{"amount":500,"currency":"EUR","payment_method":"pm_card_ok","metadata":{"o":"1","o":"2"}}"#,
    ];

    for body in bodies {
        let answer = app.post_payment_raw(&[&key], body).await;

        let problem = answer.assert_problem(400, "invalid-json");
        let detail = problem["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("twice"), "{problem}");
    }
    assert!(app.charges().is_empty());
    assert_key_still_usable(&app, &key).await;
}

#[tokio::test]
async fn bodies_that_break_the_payment_rules_are_refused_and_the_same_key_then_proceeds() {
    let app = TestApp::spawn().await;
    let metadata: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases = [
        (with(json!({"amount": 0})), Some("amount")),
        (with(json!({"amount": 10_000_000_001_i64})), Some("amount")),
        (with(json!({"amount": -5})), Some("amount")),
        (with(json!({"amount": 12.5})), Some("amount")),
        (with(json!({"amount": "1250"})), Some("amount")),
        (with(json!({"currency": "eur"})), Some("currency")),
        (with(json!({"currency": "ZZZ"})), Some("currency")),
        (with(json!({"payment_method": ""})), Some("payment_method")),
        (
            with(json!({"payment_method": "4242 4242 4242 4242"})),
            Some("payment_method"),
        ),
        (
            with(json!({"payment_method": "4242-4242-4242-4242"})),
            Some("payment_method"),
        ),
        (
            with(json!({"description": "d".repeat(1001)})),
            Some("description"),
        ),
        (with(json!({"metadata": metadata})), Some("metadata")),
        (
            with(json!({"metadata": {"nested": {"a": "b"}}})),
            Some("metadata"),
        ),
        (with(json!({"tip": 100})), None),
        (
            json!({"currency": "EUR", "payment_method": "pm_card_ok"}),
            Some("amount"),
        ),
        (json!([1250, "EUR"]), None),
    ];

    for (body, field) in cases {
        let key = fresh_key();
        let answer = app.post_payment(&key, &body).await;

        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        let problem = answer.assert_problem(400, "invalid-request");
        if let Some(field) = field {
            assert_eq!(problem["field"], field, "{problem}");
        }
        let detail = problem["detail"].as_str().unwrap_or_default();
        for internal in ["i64", "struct", "Raw", "invalid type", "`"] {
            assert!(!detail.contains(internal), "internal detail: {problem}");
        }
        assert!(!answer.text().contains("4242 4242"), "a card number echoed");
        assert_key_still_usable(&app, &key).await;
    }
}

#[tokio::test]
async fn a_description_of_exactly_1000_characters_is_accepted() {
    let app = TestApp::spawn().await;

    let body = with(json!({"description": "\u{e9}".repeat(1000), "metadata": {"a": "b"}}));
    let answer = app.post_payment(&fresh_key(), &body).await;

    let payment = answer.assert_succeeded();
    assert_eq!(payment["metadata"], json!({"a": "b"}));
}

#[tokio::test]
async fn the_same_key_with_a_different_body_is_refused_with_422_and_the_original_still_replays() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let original = app.post_payment(&key, &payment_body("pm_card_ok")).await;

    let changed = app.post_payment(&key, &with(json!({"amount": 9999}))).await;
    let replay = app.post_payment(&key, &payment_body("pm_card_ok")).await;

    changed.assert_problem(422, "idempotency-key-reused");
    assert_eq!(replay.status, 201);
    assert_eq!(replay.replayed(), Some("true"));
    assert_eq!(replay.body, original.body);
    assert_eq!(app.charges().len(), 1);
    assert!(app.metric("oncepay_idempotency_mismatches_total", "").await >= 1.0);
}

#[tokio::test]
async fn a_bare_key_and_its_quoted_sf_string_form_are_the_same_key() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let body = payment_body("pm_card_ok").to_string();
    let first = app.post_payment_raw(&[&key], &body).await;

    let quoted = app.post_payment_raw(&[&format!("\"{key}\"")], &body).await;

    first.assert_succeeded();
    quoted.assert_replay_of(&first);
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn key_order_and_white_space_in_the_body_do_not_change_the_fingerprint() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let compact = r#"{"amount":1250,"currency":"EUR","payment_method":"pm_card_ok","metadata":{"a":"1","b":"2"}}"#;
    let reordered = "{\n  \"metadata\" : { \"b\": \"2\", \"a\": \"1\" },\n  \"payment_method\": \"pm_card_ok\",\n\t\"currency\": \"EUR\", \"amount\": 1250\n}";
    let first = app.post_payment_raw(&[&key], compact).await;

    let retry = app.post_payment_raw(&[&key], reordered).await;

    first.assert_succeeded();
    assert_eq!(retry.status, 201, "{}", retry.text());
    assert_eq!(retry.replayed(), Some("true"));
    assert_eq!(retry.body, first.body);
}

#[tokio::test]
async fn a_body_over_the_size_limit_is_refused_with_413_and_the_same_key_then_proceeds() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    let huge = with(json!({"description": "x".repeat(70_000)})).to_string();

    let answer = app.post_payment_raw(&[&key], &huge).await;

    answer.assert_problem(413, "payload-too-large");
    assert_key_still_usable(&app, &key).await;
}

#[tokio::test]
async fn unknown_paths_payments_and_methods_are_problems() {
    let app = TestApp::spawn().await;

    let unknown_path = app.get("/v1/nothing-here").await;
    let unknown_payment = app.get_payment("pay_doesnotexist").await;
    let wrong_method = app
        .send(app.request(reqwest::Method::DELETE, "/v1/payments"))
        .await;

    unknown_path.assert_problem(404, "not-found");
    unknown_payment.assert_problem(404, "payment-not-found");
    wrong_method.assert_problem(405, "method-not-allowed");
}
