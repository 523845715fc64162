//! Shared fixtures: test checks with their own key prefix, keys, payments.

use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use oncepay_check_redis::{RedisCheck, RedisCheckOptions};
use oncepay_domain::{
    Amount, Currency, IdempotencyKey, MerchantId, Money, Payment, PaymentId, PaymentStatus, PspKey,
    RequestFingerprint, StatusChange,
};
use oncepay_engine::KeyScope;
use redis::Commands;

const DEFAULT_URL: &str = "redis://127.0.0.1:6379";

/// The shared Redis the tests use.
pub fn shared_url() -> String {
    std::env::var("ONCEPAY_TEST_REDIS_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// Fails the test under `CI`, where Redis must be there; elsewhere says the
/// test is skipped, and the caller returns.
pub fn skip_or_fail(what: &str, error: impl Display) {
    if std::env::var_os("CI").is_some() {
        panic!("{what} is required in CI: {error}");
    }
    eprintln!("skipped: {what} unreachable ({error})");
}

/// A key prefix no other test or run uses, without glob characters.
pub fn unique_prefix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos());
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("oncepay-test:{}-{count}-{nanos}:", std::process::id())
}

/// A check on the shared Redis whose keys are deleted when it is dropped.
pub struct SharedCheck {
    pub check: Arc<RedisCheck>,
    url: String,
    prefix: String,
}

impl SharedCheck {
    /// Connects with the default options, or skips (fails under `CI`).
    pub async fn connect() -> Option<Self> {
        Self::connect_with(RedisCheckOptions::default()).await
    }

    /// Connects with `options`, or skips (fails under `CI`).
    pub async fn connect_with(options: RedisCheckOptions) -> Option<Self> {
        let url = shared_url();
        let prefix = unique_prefix();
        match RedisCheck::connect_with(&url, &prefix, options).await {
            Ok(check) => Some(Self {
                check: Arc::new(check),
                url,
                prefix,
            }),
            Err(error) => {
                skip_or_fail(&format!("Redis at {url}"), error);
                None
            }
        }
    }

    /// The names of every key this test left in Redis.
    pub fn keys_in_redis(&self) -> Vec<String> {
        let mut connection = redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .expect("a second connection to the shared Redis");
        connection
            .scan_match::<_, String>(format!("{}*", self.prefix))
            .expect("scan the test's keys")
            .collect::<Result<Vec<_>, _>>()
            .expect("read the test's keys")
    }
}

impl Drop for SharedCheck {
    fn drop(&mut self) {
        let keys = self.keys_in_redis();
        if keys.is_empty() {
            return;
        }
        let deleted = redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .and_then(|mut connection| connection.del::<_, u64>(&keys));
        if let Err(error) = deleted {
            eprintln!("could not delete the test's keys: {error}");
        }
    }
}

/// The key `key` of merchant `acme`.
pub fn scope(key: &str) -> KeyScope {
    scope_of("acme", key)
}

/// The key `key` of `merchant`.
pub fn scope_of(merchant: &str, key: &str) -> KeyScope {
    KeyScope {
        merchant: MerchantId::parse(merchant).expect("a valid merchant"),
        key: IdempotencyKey::parse(key.as_bytes()).expect("a valid key"),
    }
}

/// A fingerprint that differs for every `n`.
pub fn fingerprint(n: u32) -> RequestFingerprint {
    RequestFingerprint::from_stored(format!("{n:064x}"))
}

/// A declined payment with every optional field filled in.
pub fn final_payment() -> Payment {
    let created = 1_767_225_600_000;
    Payment {
        id: PaymentId::generate(),
        merchant: MerchantId::parse("acme").expect("a valid merchant"),
        money: Money {
            amount: Amount::parse(123_456).expect("a valid amount"),
            currency: Currency::parse("JPY").expect("a known currency"),
        },
        status: PaymentStatus::Failed,
        payment_method: "pm_card_declined".to_owned(),
        description: Some("Zwei Kaffee, \"bitte\" — merci ☕".to_owned()),
        metadata: [
            ("order".to_owned(), "17".to_owned()),
            ("channel".to_owned(), "web".to_owned()),
        ]
        .into(),
        psp_key: PspKey::generate(),
        created_at_millis: created,
        updated_at_millis: created + 840,
        history: vec![
            StatusChange {
                status: PaymentStatus::Pending,
                at_millis: created,
                cause: "created".to_owned(),
            },
            StatusChange {
                status: PaymentStatus::Failed,
                at_millis: created + 840,
                cause: "psp: failed".to_owned(),
            },
        ],
    }
}
