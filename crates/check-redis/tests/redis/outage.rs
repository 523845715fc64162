//! Redis away: unreachable at start, killed and restarted, or hung. Each
//! test that stops Redis starts its own server; the shared one is never
//! touched.

use std::sync::Arc;
use std::time::{Duration, Instant};

use oncepay_check_redis::test_support::LocalRedis;
use oncepay_check_redis::{RedisCheck, RedisCheckOptions};
use oncepay_engine::{FastBegin, FastCheck, KeyScope};

use crate::helpers::{final_payment, fingerprint, scope, skip_or_fail, unique_prefix};

const CALL_TIMEOUT: Duration = Duration::from_millis(200);

/// How much longer than the call timeout a failing call may take on a busy
/// machine before we call it a hang.
const SLACK: Duration = Duration::from_millis(800);

fn start_own_redis() -> Option<LocalRedis> {
    match LocalRedis::start() {
        Ok(redis) => Some(redis),
        Err(error) => {
            skip_or_fail("a redis-server of our own", error);
            None
        }
    }
}

async fn connect(url: &str) -> RedisCheck {
    let options = RedisCheckOptions {
        call_timeout: CALL_TIMEOUT,
        ..RedisCheckOptions::default()
    };
    RedisCheck::connect_with(url, &unique_prefix(), options)
        .await
        .expect("our own Redis answers")
}

#[tokio::test]
async fn an_unreachable_redis_is_an_error_within_the_connect_timeout() {
    let options = RedisCheckOptions {
        connect_timeout: Duration::from_millis(500),
        ..RedisCheckOptions::default()
    };
    let started = Instant::now();

    let connected = RedisCheck::connect_with("redis://127.0.0.1:1", "p:", options).await;

    assert!(connected.is_err());
    assert!(started.elapsed() < Duration::from_millis(500) + SLACK);
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_is_refused_with_the_reason() {
    let Ok(port) = std::net::TcpListener::bind("127.0.0.1:0").and_then(|free| free.local_addr())
    else {
        panic!("no free loopback port");
    };
    let url = format!("rediss://127.0.0.1:{}", port.port());

    let connected = RedisCheck::connect(&url, "p:").await;

    let error = connected.expect_err("nothing listens there");
    assert!(error.0.contains("could not connect to Redis"), "{error}");
}

#[tokio::test]
async fn a_prefix_with_braces_is_refused() {
    let connected = RedisCheck::connect("redis://127.0.0.1:1", "p{x}:").await;

    assert!(connected.is_err());
}

#[tokio::test]
async fn a_killed_redis_fails_fast_and_serves_again_once_restarted() {
    let Some(mut redis) = start_own_redis() else {
        return;
    };
    let check = connect(&redis.url()).await;
    let key = scope("restart");
    check
        .begin(&key, &fingerprint(1), 30_000)
        .await
        .expect("Redis is up");

    redis.stop().expect("kill our Redis");
    for _ in 0..3 {
        let started = Instant::now();
        let outcome = check.begin(&key, &fingerprint(1), 30_000).await;
        assert!(outcome.is_err(), "{outcome:?}");
        assert!(started.elapsed() < CALL_TIMEOUT + SLACK);
    }
    assert!(check.clear(&key).await.is_err());
    let answered = check
        .answer(&key, &fingerprint(1), Arc::new(final_payment()), 60_000)
        .await;
    assert!(answered.is_err());

    redis.start_again().expect("restart our Redis");
    let back = serves_again_within(&check, &key, Duration::from_secs(10)).await;

    // The restarted server is empty: the mark was lost with it, which costs
    // speed only, as the durable store still guards the key.
    assert!(matches!(back, FastBegin::Marked), "{back:?}");
}

#[tokio::test]
async fn a_hung_redis_costs_one_call_timeout_per_call() {
    let Some(redis) = start_own_redis() else {
        return;
    };
    let check = connect(&redis.url()).await;
    let key = scope("hung");
    check
        .begin(&key, &fingerprint(1), 30_000)
        .await
        .expect("Redis is up");

    redis.freeze().expect("freeze our Redis");
    let started = Instant::now();
    let outcome = check.begin(&key, &fingerprint(1), 30_000).await;
    let took = started.elapsed();
    redis.thaw().expect("thaw our Redis");

    assert!(outcome.is_err(), "{outcome:?}");
    assert!(
        took >= CALL_TIMEOUT && took < CALL_TIMEOUT + SLACK,
        "{took:?}"
    );
    let back = serves_again_within(&check, &key, Duration::from_secs(10)).await;
    assert!(matches!(back, FastBegin::InFlight { .. }), "{back:?}");
}

/// Polls `begin` on `key` until Redis answers, and returns that answer.
async fn serves_again_within(check: &RedisCheck, key: &KeyScope, limit: Duration) -> FastBegin {
    let deadline = Instant::now() + limit;
    loop {
        match check.begin(key, &fingerprint(1), 30_000).await {
            Ok(outcome) => return outcome,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("Redis did not serve again within {limit:?}: {error}"),
        }
    }
}
