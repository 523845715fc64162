//! Redis accelerates and never guards alone: flushing it in the middle of a
//! storm, restarting it, or losing it altogether never yields a second charge
//! or a lost payment. Each test runs its own throwaway `redis-server`.

use std::sync::Arc;
use std::time::Duration;

use oncepay_check_redis::test_support::LocalRedis;
use tokio::sync::Barrier;

use crate::helpers::{Settings, TestApp, eventually, fresh_key, payment_body};
use crate::services::local_redis;

const KEYS: usize = 10;
const DUPLICATES: usize = 20;

async fn app_with(redis: &LocalRedis, latency_ms: u64) -> TestApp {
    let settings = Settings::new()
        .env("ONCEPAY_REDIS_URL", redis.url())
        .env("ONCEPAY_PSP_LATENCY_MS", latency_ms);
    TestApp::spawn_with(settings).await
}

async fn flushall(redis: &LocalRedis) {
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("FLUSHALL")
        .query_async::<String>(&mut connection)
        .await
        .expect("FLUSHALL");
}

async fn redis_key_count(redis: &LocalRedis) -> usize {
    let client = redis::Client::open(redis.url()).expect("a Redis URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    redis::cmd("DBSIZE")
        .query_async::<usize>(&mut connection)
        .await
        .expect("DBSIZE")
}

/// Retries every key until it is answered 201; returns the payment ids.
async fn settle_all(app: &TestApp, keys: &[String]) -> Vec<String> {
    let mut ids = Vec::new();
    for key in keys {
        let id = eventually("the key is answered", Duration::from_secs(20), || async {
            let answer = app.post_payment(key, &payment_body("pm_card_ok")).await;
            (answer.status == 201).then(|| answer.payment_id())
        })
        .await;
        ids.push(id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn flushing_redis_in_the_middle_of_a_storm_never_charges_twice() {
    let Some(redis) = local_redis() else { return };
    let app = app_with(&redis, 300).await;
    let keys: Vec<String> = (0..KEYS).map(|_| fresh_key()).collect();

    let barrier = Arc::new(Barrier::new(KEYS * DUPLICATES + 1));
    let mut storm = Vec::new();
    for key in &keys {
        for _ in 0..DUPLICATES {
            let request = app.payment_request(key, &payment_body("pm_card_ok"));
            let barrier = Arc::clone(&barrier);
            storm.push(tokio::spawn(async move {
                barrier.wait().await;
                request
                    .send()
                    .await
                    .expect("oncepay answers")
                    .status()
                    .as_u16()
            }));
        }
    }
    barrier.wait().await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    flushall(&redis).await;
    for request in storm {
        let status = request.await.expect("the request task");
        assert!(status == 201 || status == 409, "unexpected {status}");
    }

    let ids = settle_all(&app, &keys).await;
    assert_eq!(
        app.charges().len(),
        KEYS,
        "one charge per key despite the flush"
    );
    let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), KEYS, "one payment per key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_payments_go_to_the_database_and_the_check_comes_back_by_itself() {
    let Some(mut redis) = local_redis() else {
        return;
    };
    let app = app_with(&redis, 0).await;
    let before = fresh_key();
    let first = app.post_payment(&before, &payment_body("pm_card_ok")).await;
    first.assert_succeeded();

    redis.stop().expect("stop redis");
    let during = fresh_key();
    app.post_payment(&during, &payment_body("pm_card_ok"))
        .await
        .assert_succeeded();
    let replay = app.post_payment(&before, &payment_body("pm_card_ok")).await;
    replay.assert_succeeded();
    assert_eq!(replay.body, first.body, "the database answers the replay");
    assert!(app.metric("oncepay_primary_check_failures_total", "").await >= 1.0);

    redis.start_again().expect("start redis again");
    eventually(
        "the check writes to Redis again",
        Duration::from_secs(20),
        || async {
            let key = fresh_key();
            app.post_payment(&key, &payment_body("pm_card_ok"))
                .await
                .assert_succeeded();
            (redis_key_count(&redis).await > 0).then_some(())
        },
    )
    .await;

    let warnings = app.logs().matches("Redis is unreachable").count();
    assert_eq!(
        warnings, 1,
        "one warning for the outage, not one per request"
    );
    assert!(app.logs().contains("Redis answers again"));
    assert_eq!(
        app.charges().len() as f64,
        app.metric("oncepay_psp_calls_total", "").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_slows_requests_down_but_never_stops_them() {
    let Some(redis) = local_redis() else { return };
    let app = app_with(&redis, 0).await;
    redis.freeze().expect("freeze redis");

    let key = fresh_key();
    let first = app.post_payment(&key, &payment_body("pm_card_ok")).await;
    first.assert_succeeded();
    let replay = app.post_payment(&key, &payment_body("pm_card_ok")).await;
    assert_eq!(replay.body, first.body);
    assert_eq!(replay.replayed(), Some("true"));
    redis.thaw().expect("thaw redis");
    assert_eq!(app.charges().len(), 1);
}
