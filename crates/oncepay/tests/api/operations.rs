//! Running oncepay: health, readiness, metrics, the OpenAPI document,
//! startup checks on its configuration, and graceful shutdown.

use std::time::{Duration, Instant};

use crate::helpers::{Settings, TestApp, eventually, fetch, fresh_key, payment_body};

#[tokio::test]
async fn health_and_readiness_answer_200_when_the_store_is_up() {
    let app = TestApp::spawn().await;

    let health = app.get("/healthz").await;
    let ready = app.get("/readyz").await;

    health.assert_status(200);
    ready.assert_status(200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_psp_calls_by_outcome() {
    let app = TestApp::spawn().await;
    let key = fresh_key();
    app.post_payment(&key, &payment_body("pm_card_ok")).await;
    app.post_payment(&key, &payment_body("pm_card_ok")).await;
    app.post_payment(&fresh_key(), &payment_body("pm_card_declined"))
        .await;

    let answer = app.get("/metrics").await;

    answer.assert_status(200);
    let content_type = answer.header("content-type").unwrap_or_default();
    assert!(content_type.starts_with("text/plain") || content_type.contains("openmetrics"));
    let requests = crate::answer::sum_samples(
        &answer.text(),
        "oncepay_http_requests_total",
        "status=\"201\"",
    );
    assert_eq!(requests, 2.0, "{}", answer.text());
    let routed = answer
        .text()
        .lines()
        .any(|line| line.starts_with("oncepay_http_requests_total{") && line.contains("route="));
    assert!(routed, "requests are labelled by route");
    assert_eq!(app.metric("oncepay_psp_calls_total", "").await, 2.0);
    assert_eq!(
        app.metric("oncepay_idempotent_replays_total", "").await,
        1.0
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_endpoint() {
    let app = TestApp::spawn().await;

    let answer = app.get("/openapi.json").await;

    let document = answer.assert_status(200).json();
    let version = document["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3."), "OpenAPI version {version:?}");
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/v1/payments",
        "/v1/payments/{id}",
        "/v1/payments/{id}/status",
        "/v1/idempotency-keys",
    ] {
        assert!(
            paths.contains_key(path),
            "{path} missing from {:?}",
            paths.keys()
        );
    }
}

#[tokio::test]
async fn dev_mode_refuses_to_listen_on_a_public_address() {
    let settings = Settings::new().env("ONCEPAY_LISTEN", "0.0.0.0:0");

    let exit = TestApp::run_until_exit(settings).await;

    assert!(
        !exit.status.success(),
        "it must refuse to start: {}",
        exit.output
    );
    let output = exit.output.to_lowercase();
    assert!(
        output.contains("oncepay_api_keys") || output.contains("loopback"),
        "the message names the reason: {}",
        exit.output
    );
}

#[tokio::test]
async fn a_psp_timeout_not_shorter_than_the_lease_stops_startup_naming_the_setting() {
    let settings = Settings::new()
        .env("ONCEPAY_LEASE_TTL_MS", 3000)
        .env("ONCEPAY_PSP_TIMEOUT_MS", 5000);

    let exit = TestApp::run_until_exit(settings).await;

    assert!(
        !exit.status.success(),
        "it must refuse to start: {}",
        exit.output
    );
    assert!(
        exit.output.contains("ONCEPAY_PSP_TIMEOUT_MS")
            || exit.output.contains("ONCEPAY_LEASE_TTL_MS"),
        "the message names the setting: {}",
        exit.output
    );
}

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_finish_before_exiting_cleanly() {
    let mut app = TestApp::spawn_with(Settings::new().env("ONCEPAY_PSP_LATENCY_MS", 1000)).await;
    let request = app.payment_request(&fresh_key(), &payment_body("pm_card_ok"));
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

    let exit = app.sigterm().await;
    let response = in_flight.await.expect("the request task");

    let response = response.expect("the request in flight is answered");
    assert_eq!(response.status().as_u16(), 201);
    assert!(exit.success(), "graceful shutdown exits with 0, got {exit}");
    assert_eq!(app.charges().len(), 1);
}

/// Log lines are written by a thread of their own; a graceful stop right
/// after a burst of requests still leaves every one of them in the output.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_request_is_in_the_log_after_a_graceful_stop() {
    let mut app = TestApp::spawn().await;
    let key = fresh_key();
    app.post_payment(&key, &payment_body("pm_card_ok"))
        .await
        .assert_succeeded();
    let mut retries = tokio::task::JoinSet::new();
    for _ in 0..100 {
        retries.spawn(fetch(
            app.payment_request(&key, &payment_body("pm_card_ok")),
        ));
    }
    for retry in retries.join_all().await {
        retry.expect("oncepay answers").assert_status(201);
    }

    let exit = app.sigterm().await;

    assert!(exit.success(), "graceful shutdown exits with 0, got {exit}");
    let logs = eventually("the last line is read", Duration::from_secs(5), || {
        let logs = app.logs();
        async move { logs.contains("oncepay stopped").then_some(logs) }
    })
    .await;
    let logged = |outcome: &str| {
        logs.lines()
            .filter(|line| line.contains("request completed") && line.contains(outcome))
            .count()
    };
    assert_eq!(logged("\"first\""), 1, "{logs}");
    assert_eq!(logged("\"replayed\""), 100, "{logs}");
}

/// Background recovery re-drives pending payments one after another, each
/// waiting for the PSP; a stop ends the round after the one in hand instead
/// of waiting for the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_does_not_wait_for_a_whole_round_of_re_drives() {
    const PENDING: usize = 12;
    let settings = Settings::new()
        .env("ONCEPAY_PSP_LATENCY_MS", 1000)
        .env("ONCEPAY_REDRIVE_AFTER_MS", 100)
        .env("ONCEPAY_RECOVERY_INTERVAL_MS", 200);
    let mut app = TestApp::spawn_with(settings).await;
    let mut payments = tokio::task::JoinSet::new();
    for _ in 0..PENDING {
        payments.spawn(fetch(
            app.payment_request(&fresh_key(), &payment_body("pm_card_pending")),
        ));
    }
    for payment in payments.join_all().await {
        payment.expect("oncepay answers").assert_status(202);
    }
    eventually("recovery is re-driving", Duration::from_secs(10), || {
        let calls = app.metric("oncepay_psp_calls_total", "");
        async move { (calls.await >= (PENDING + 2) as f64).then_some(()) }
    })
    .await;

    let asked = Instant::now();
    let exit = app.sigterm().await;
    let took = asked.elapsed();

    assert!(exit.success(), "graceful shutdown exits with 0, got {exit}");
    // The rest of the round would take about ten more PSP calls of 1 s.
    assert!(took < Duration::from_secs(6), "the stop took {took:?}");
}

#[tokio::test]
async fn sigterm_waits_for_a_payment_whose_client_hung_up_so_no_key_is_stranded() {
    let mut app = TestApp::spawn_with(Settings::new().env("ONCEPAY_PSP_LATENCY_MS", 1500)).await;
    let key = fresh_key();
    let impatient = app
        .payment_request(&key, &payment_body("pm_card_ok"))
        .timeout(Duration::from_millis(300));
    assert!(
        impatient.send().await.is_err(),
        "the client gives up before the PSP answers"
    );

    let exit = app.sigterm().await;
    assert!(exit.success(), "graceful shutdown exits with 0, got {exit}");
    app.restart().await;

    let retry = app.post_payment(&key, &payment_body("pm_card_ok")).await;
    retry.assert_succeeded();
    assert_eq!(
        retry.replayed(),
        Some("true"),
        "the abandoned payment was recorded"
    );
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn the_body_size_limit_follows_its_setting() {
    let app = TestApp::spawn_with(Settings::new().env("ONCEPAY_MAX_BODY_BYTES", 1024)).await;
    let key = fresh_key();
    let mut body = payment_body("pm_card_ok");
    body["description"] = "x".repeat(990).into();

    let too_large = app.post_payment(&key, &body).await;
    body["description"] = "x".repeat(500).into();
    let small_enough = app.post_payment(&key, &body).await;

    too_large.assert_problem(413, "payload-too-large");
    small_enough.assert_succeeded();
    assert_eq!(small_enough.replayed(), Some("false"));
}

#[tokio::test]
async fn the_startup_line_names_the_store_and_the_check_in_use() {
    let app = TestApp::spawn().await;
    let expected = match std::env::var("ONCEPAY_TEST_STACK").as_deref() {
        Ok("mongodb+redis") => "store=mongodb check=redis",
        _ => "store=sqlite check=in-process",
    };
    assert!(app.logs().contains(expected), "{}", app.logs());
}
