//! The default primary check: a sharded map inside the process.
//!
//! Besides in-flight marks and final answers, an answer keeps the raw body
//! of the request that produced it (when small), so a byte-identical retry
//! is replayed without being parsed or fingerprinted.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use oncepay_domain::{Payment, RequestFingerprint};

use crate::check::{
    CheckError, ExactReplay, FastBegin, FastCheck, KeptAnswer, KeyScope, Rendering,
};

const SHARDS: usize = 32;

/// Most answers kept per shard: 8 192 in all, some 10 MiB (measured: about
/// 1.2 KiB an answer, with its payment, key and kept body, after a run of
/// fresh payments; an exact replay adds the rendered payment, about 0.4 KiB
/// for a typical one, at most the kept body's 1 KiB and the fixed fields).
/// A new answer that finds its shard full pushes an older one out (the
/// store still answers it), so memory stays bounded under any key churn.
/// Retries come soon after their request: at a thousand payments a second
/// this holds the last eight seconds of answers, at twenty thousand the last
/// 0.4 s; older retries are answered by the store.
const MAX_ENTRIES_PER_SHARD: usize = 256;

/// Largest payment cached, by the bytes of its free-form fields. Bigger ones
/// (long descriptions, full metadata) are answered by the store, so the cache
/// stays within a few tens of MiB whatever clients send.
const MAX_CACHED_PAYMENT_BYTES: usize = 2048;

/// Largest request body kept beside an answer, so bodies add at most 8 MiB
/// to the cache. Retries of a larger body are answered all the same, through
/// their fingerprint.
const MAX_KEPT_BODY_BYTES: usize = 1024;

fn free_form_bytes(payment: &Payment) -> usize {
    let metadata: usize = payment
        .metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let description = payment.description.as_ref().map_or(0, String::len);
    metadata + description + payment.payment_method.len()
}

/// The raw body of the request that produced an answer, and how exact
/// replays of it show the answer once one has.
#[derive(Debug)]
struct KeptBody {
    bytes: Bytes,
    rendering: Arc<Rendering>,
}

/// A copy of `body` to keep, when it is small enough. A copy, not a clone:
/// the body may be a slice of the connection's whole read buffer, which a
/// clone would keep alive for as long as the answer.
fn kept_body(body: &Bytes) -> Option<KeptBody> {
    (body.len() <= MAX_KEPT_BODY_BYTES).then(|| KeptBody {
        bytes: Bytes::copy_from_slice(body),
        rendering: Arc::default(),
    })
}

#[derive(Debug)]
enum Entry {
    InFlight(RequestFingerprint),
    Answered(Answer),
}

/// A final answer, with the raw body of the request that produced it.
#[derive(Debug)]
struct Answer {
    fingerprint: RequestFingerprint,
    payment: Arc<Payment>,
    /// `None` when the body was too large to keep, or never given: then
    /// no retry is replayed unread.
    body: Option<KeptBody>,
}

#[derive(Debug)]
struct Slot {
    entry: Entry,
    expires: Instant,
}

type Shard = HashMap<KeyScope, Slot>;

/// In-flight marks and final answers in this process's memory.
#[derive(Debug)]
pub struct InProcessCheck {
    shards: Vec<Mutex<Shard>>,
    hasher: RandomState,
}

impl Default for InProcessCheck {
    fn default() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
        }
    }
}

impl InProcessCheck {
    fn shard(&self, scope: &KeyScope) -> MutexGuard<'_, Shard> {
        let index = (self.hasher.hash_one(scope) as usize) % SHARDS;
        // A poisoned shard only means another request panicked mid-update of
        // a cache entry; the map itself is still sound.
        self.shards[index]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn drop_expired(&self) {
        let now = Instant::now();
        for shard in &self.shards {
            let mut shard = shard
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            shard.retain(|_, slot| slot.expires > now);
        }
    }

    /// Stores an answer in place of the key's in-flight mark. A full shard
    /// first drops one answer picked arbitrarily: retries come soon after
    /// their request, so the newest answers are the ones worth keeping.
    /// (Expired entries go in `purge_expired`, not here on the hot path.)
    fn put(&self, scope: &KeyScope, entry: Entry, ttl_millis: u64) {
        let now = Instant::now();
        let mut shard = self.shard(scope);
        shard.remove(scope);
        if shard.len() >= MAX_ENTRIES_PER_SHARD {
            let victim = shard
                .iter()
                .find(|(_, slot)| matches!(slot.entry, Entry::Answered(_)))
                .map(|(scope, _)| scope.clone());
            if let Some(victim) = victim {
                shard.remove(&victim);
            }
        }
        let expires = now + Duration::from_millis(ttl_millis);
        shard.insert(scope.clone(), Slot { entry, expires });
    }

    /// Stores a final answer, or forgets the key when the payment is too
    /// large to cache.
    fn record(&self, scope: &KeyScope, answer: Answer, ttl_millis: u64) {
        if free_form_bytes(&answer.payment) <= MAX_CACHED_PAYMENT_BYTES {
            self.put(scope, Entry::Answered(answer), ttl_millis);
        } else {
            self.shard(scope).remove(scope);
        }
    }
}

#[async_trait]
impl FastCheck for InProcessCheck {
    fn backend(&self) -> &'static str {
        "in-process"
    }

    async fn begin(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        ttl_millis: u64,
    ) -> Result<FastBegin, CheckError> {
        let now = Instant::now();
        let mut shard = self.shard(scope);
        if let Some(slot) = shard.get(scope).filter(|slot| slot.expires > now) {
            return Ok(match &slot.entry {
                Entry::InFlight(fingerprint) => FastBegin::InFlight {
                    fingerprint: fingerprint.clone(),
                    remaining_millis: (slot.expires - now).as_millis() as u64,
                },
                Entry::Answered(answer) => FastBegin::Answered {
                    fingerprint: answer.fingerprint.clone(),
                    payment: Arc::clone(&answer.payment),
                    remaining_millis: (slot.expires - now).as_millis() as u64,
                },
            });
        }
        let expires = now + Duration::from_millis(ttl_millis);
        let entry = Entry::InFlight(fingerprint.clone());
        shard.insert(scope.clone(), Slot { entry, expires });
        Ok(FastBegin::Marked)
    }

    async fn answer(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        payment: Arc<Payment>,
        ttl_millis: u64,
    ) -> Result<(), CheckError> {
        let fingerprint = fingerprint.clone();
        let answer = Answer {
            fingerprint,
            payment,
            body: None,
        };
        self.record(scope, answer, ttl_millis);
        Ok(())
    }

    async fn answer_with_body(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        payment: Arc<Payment>,
        body: &Bytes,
        ttl_millis: u64,
    ) -> Result<(), CheckError> {
        let fingerprint = fingerprint.clone();
        let body = kept_body(body);
        let answer = Answer {
            fingerprint,
            payment,
            body,
        };
        self.record(scope, answer, ttl_millis);
        Ok(())
    }

    async fn replay_exact(&self, scope: &KeyScope, body: &[u8]) -> Result<ExactReplay, CheckError> {
        let now = Instant::now();
        let shard = self.shard(scope);
        let slot = shard.get(scope).filter(|slot| slot.expires > now);
        // Plain byte equality, never a hash of the body: a collision would
        // replay a payment to a request that should have been refused (422).
        Ok(match slot.map(|slot| &slot.entry) {
            Some(Entry::Answered(Answer {
                payment,
                body: Some(kept),
                ..
            })) if kept.bytes == body => ExactReplay::Answered(KeptAnswer {
                payment: Arc::clone(payment),
                rendering: Arc::clone(&kept.rendering),
            }),
            _ => ExactReplay::NotKnown,
        })
    }

    async fn clear(&self, scope: &KeyScope) -> Result<(), CheckError> {
        self.shard(scope).remove(scope);
        Ok(())
    }

    async fn purge_expired(&self) {
        self.drop_expired();
    }
}

#[cfg(test)]
mod tests {
    use oncepay_domain::{IdempotencyKey, MerchantId, PaymentRequest};

    use super::*;

    fn scope(n: usize) -> KeyScope {
        KeyScope {
            merchant: MerchantId::parse("m").expect("valid merchant"),
            key: IdempotencyKey::from_stored(format!("key-{n}")),
        }
    }

    /// However many keys come through, the cache holds a bounded number of
    /// answers, and the newest answer is among them.
    #[tokio::test]
    async fn answers_stay_bounded_and_the_newest_is_kept() -> Result<(), CheckError> {
        let check = InProcessCheck::default();
        let body = serde_json::json!({"amount": 1, "currency": "EUR", "payment_method": "pm"});
        let request = PaymentRequest::parse(&body).expect("valid request");
        let payment = Arc::new(Payment::pending(scope(0).merchant, request, 0));
        let fingerprint = RequestFingerprint::of("POST", "/v1/payments", &body);
        let total = SHARDS * MAX_ENTRIES_PER_SHARD * 3;
        for n in 0..total {
            let scope = scope(n);
            assert!(matches!(
                check.begin(&scope, &fingerprint, 2_000).await?,
                FastBegin::Marked
            ));
            check
                .answer(&scope, &fingerprint, Arc::clone(&payment), 600_000)
                .await?;
        }
        let held: usize = check
            .shards
            .iter()
            .map(|s| s.lock().map_or(0, |s| s.len()))
            .sum();
        assert!(
            held <= SHARDS * MAX_ENTRIES_PER_SHARD,
            "{held} entries held"
        );
        let newest = check.begin(&scope(total - 1), &fingerprint, 2_000).await?;
        assert!(matches!(newest, FastBegin::Answered { .. }));
        Ok(())
    }

    /// A payment, its fingerprint and the raw body that asked for it.
    fn paid(body: &str) -> (Arc<Payment>, RequestFingerprint, Bytes) {
        let value: serde_json::Value = serde_json::from_str(body).expect("test body is JSON");
        let request = PaymentRequest::parse(&value).expect("valid request");
        let payment = Arc::new(Payment::pending(scope(0).merchant, request, 0));
        let fingerprint = RequestFingerprint::of("POST", "/v1/payments", &value);
        (
            payment,
            fingerprint,
            Bytes::copy_from_slice(body.as_bytes()),
        )
    }

    #[tokio::test]
    async fn only_the_exact_bytes_of_an_answered_request_are_replayed() -> Result<(), CheckError> {
        let check = InProcessCheck::default();
        let (key, other_key) = (scope(1), scope(2));
        let sent = r#"{"amount":1,"currency":"EUR","payment_method":"pm"}"#;
        let respaced = r#"{"amount": 1, "currency": "EUR", "payment_method": "pm"}"#;
        let (payment, fingerprint, body) = paid(sent);

        check.begin(&key, &fingerprint, 2_000).await?;
        let while_in_flight = check.replay_exact(&key, sent.as_bytes()).await?;
        check
            .answer_with_body(&key, &fingerprint, Arc::clone(&payment), &body, 600_000)
            .await?;
        let same_bytes = check.replay_exact(&key, sent.as_bytes()).await?;
        let same_meaning = check.replay_exact(&key, respaced.as_bytes()).await?;
        let other_scope = check.replay_exact(&other_key, sent.as_bytes()).await?;

        assert!(matches!(while_in_flight, ExactReplay::NotKnown));
        assert!(matches!(same_bytes, ExactReplay::Answered(kept) if kept.payment.id == payment.id));
        assert!(matches!(same_meaning, ExactReplay::NotKnown));
        assert!(matches!(other_scope, ExactReplay::NotKnown));
        Ok(())
    }

    #[tokio::test]
    async fn a_body_over_the_size_cap_is_not_kept_but_its_answer_is() -> Result<(), CheckError> {
        let check = InProcessCheck::default();
        let key = scope(1);
        let padding = " ".repeat(MAX_KEPT_BODY_BYTES);
        let sent = format!(r#"{{"amount":1,"currency":"EUR","payment_method":"pm"}}{padding}"#);
        assert!(sent.len() > MAX_KEPT_BODY_BYTES);
        let (payment, fingerprint, body) = paid(&sent);

        check.begin(&key, &fingerprint, 2_000).await?;
        check
            .answer_with_body(&key, &fingerprint, payment, &body, 600_000)
            .await?;

        let exact = check.replay_exact(&key, sent.as_bytes()).await?;
        assert!(matches!(exact, ExactReplay::NotKnown));
        let shard = check.shard(&key);
        let Some(Slot {
            entry: Entry::Answered(answer),
            ..
        }) = shard.get(&key)
        else {
            panic!("the answer itself is kept");
        };
        assert!(answer.body.is_none(), "no body over the cap is kept");
        Ok(())
    }

    #[tokio::test]
    async fn a_body_at_the_size_cap_is_kept_as_a_copy_of_its_own() -> Result<(), CheckError> {
        let check = InProcessCheck::default();
        let key = scope(1);
        let json = r#"{"amount":1,"currency":"EUR","payment_method":"pm"}"#;
        let sent = format!("{json:<MAX_KEPT_BODY_BYTES$}");
        assert_eq!(sent.len(), MAX_KEPT_BODY_BYTES);
        // The body arrives as a slice of a larger buffer, as from a socket.
        let buffer = Bytes::from(format!("{sent}{}", "x".repeat(8192)));
        let (payment, fingerprint, _) = paid(&sent);

        check.begin(&key, &fingerprint, 2_000).await?;
        let body = buffer.slice(..sent.len());
        check
            .answer_with_body(&key, &fingerprint, payment, &body, 600_000)
            .await?;

        let exact = check.replay_exact(&key, sent.as_bytes()).await?;
        assert!(matches!(exact, ExactReplay::Answered(_)));
        let shard = check.shard(&key);
        let Some(Slot {
            entry: Entry::Answered(Answer {
                body: Some(kept), ..
            }),
            ..
        }) = shard.get(&key)
        else {
            panic!("the body is kept");
        };
        assert_ne!(
            kept.bytes.as_ptr(),
            body.as_ptr(),
            "the buffer is not kept alive"
        );
        Ok(())
    }
}
