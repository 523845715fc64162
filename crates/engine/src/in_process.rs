//! The default primary check: a sharded map inside the process.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use oncepay_domain::{Payment, RequestFingerprint};

use crate::check::{CheckError, FastBegin, FastCheck, KeyScope};

const SHARDS: usize = 32;

/// Most answers kept per shard (8 192 in all, about 1 KiB each); a new
/// answer that finds its shard full pushes an older one out (the store still
/// answers it), so memory stays bounded under any key churn.
const MAX_ENTRIES_PER_SHARD: usize = 256;

/// Largest payment cached, by the bytes of its free-form fields. Bigger ones
/// (long descriptions, full metadata) are answered by the store, so the cache
/// stays within a few tens of MiB whatever clients send.
const MAX_CACHED_PAYMENT_BYTES: usize = 2048;

fn free_form_bytes(payment: &Payment) -> usize {
    let metadata: usize = payment
        .metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum();
    let description = payment.description.as_ref().map_or(0, String::len);
    metadata + description + payment.payment_method.len()
}

#[derive(Debug)]
enum Entry {
    InFlight(RequestFingerprint),
    Answered(RequestFingerprint, Arc<Payment>),
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
                .find(|(_, slot)| matches!(slot.entry, Entry::Answered(..)))
                .map(|(scope, _)| scope.clone());
            if let Some(victim) = victim {
                shard.remove(&victim);
            }
        }
        let expires = now + Duration::from_millis(ttl_millis);
        shard.insert(scope.clone(), Slot { entry, expires });
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
                Entry::Answered(fingerprint, payment) => FastBegin::Answered {
                    fingerprint: fingerprint.clone(),
                    payment: Arc::clone(payment),
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
        if free_form_bytes(&payment) <= MAX_CACHED_PAYMENT_BYTES {
            let entry = Entry::Answered(fingerprint.clone(), payment);
            self.put(scope, entry, ttl_millis);
        } else {
            self.shard(scope).remove(scope);
        }
        Ok(())
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
}
