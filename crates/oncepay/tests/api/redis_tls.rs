//! Redis over TLS (`rediss://`): the primary check works through it, and a
//! server whose certificate is not trusted stops startup with the reason.
//! Each test runs its own `redis-server` with a certificate authority made
//! for it; oncepay trusts it through `SSL_CERT_FILE`, as it would trust a
//! private authority in production.

use oncepay_check_redis::test_support::LocalRedis;

use crate::helpers::{Settings, TestApp, fresh_key, payment_body};
use crate::services::local_redis_tls;

/// oncepay with `redis`'s TLS port as its primary check.
fn over_tls(redis: &LocalRedis) -> Settings {
    Settings::new().env("ONCEPAY_REDIS_URL", redis.tls_url().expect("a TLS port"))
}

#[tokio::test]
async fn payments_are_guarded_and_replayed_through_redis_over_tls() {
    let Some(redis) = local_redis_tls() else {
        return;
    };
    let settings = over_tls(&redis).env("SSL_CERT_FILE", redis.ca_file().display());
    let app = TestApp::spawn_with(settings).await;
    let key = fresh_key();

    let first = app.post_payment(&key, &payment_body("pm_card_ok")).await;
    let retry = app.post_payment(&key, &payment_body("pm_card_ok")).await;

    first.assert_succeeded();
    retry.assert_replay_of(&first);
    assert!(app.logs().contains("check=redis"), "{}", app.logs());
    let client = redis::Client::open(redis.url()).expect("the plain port's URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect to the plain port");
    let keys: usize = redis::cmd("DBSIZE")
        .query_async(&mut connection)
        .await
        .expect("DBSIZE");
    assert!(keys > 0, "the answer was written to Redis over TLS");
    assert_eq!(app.charges().len(), 1);
}

#[tokio::test]
async fn a_redis_whose_certificate_is_not_trusted_stops_startup() {
    let Some(redis) = local_redis_tls() else {
        return;
    };
    let settings = over_tls(&redis).without("SSL_CERT_FILE");

    let exit = TestApp::run_until_exit(settings).await;

    assert_eq!(exit.status.code(), Some(1), "{}", exit.output);
    let output = exit.output.to_lowercase();
    assert!(output.contains("redis"), "{}", exit.output);
    assert!(output.contains("certificate"), "{}", exit.output);
}
