//! A shared check (Redis) with this process's own in-process check in front.
//!
//! Every process that shares a Redis sees the marks and answers of the
//! others there, but most duplicates arrive at the process that is already
//! working on their key: a user tapping Pay twice, or a burst of retries
//! through one load balancer connection. Asking Redis about each of those
//! costs a round trip, and a storm of them queues behind one another. The
//! near check answers them from memory:
//!
//! - a key this process marked in flight is in flight: its duplicates get
//!   their answer here, and only the first request asks Redis;
//! - a final answer, once seen, is kept here too. Final payments never
//!   change, and the near check keeps an answer no longer than Redis does,
//!   so a copy is as good as the original.
//!
//! The near check never says "nothing known": a key it does not know goes to
//! Redis, which decides. So a process can only be as wrong as Redis.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use oncepay_domain::{Payment, RequestFingerprint};

use crate::check::{CheckError, ExactReplay, FastBegin, FastCheck, KeyScope};
use crate::in_process::InProcessCheck;

/// A shared check with an [`InProcessCheck`] in front of it.
pub struct LayeredCheck {
    near: InProcessCheck,
    shared: Arc<dyn FastCheck>,
}

impl LayeredCheck {
    /// Puts a fresh in-process check in front of `shared`.
    pub fn new(shared: Arc<dyn FastCheck>) -> Self {
        Self {
            near: InProcessCheck::default(),
            shared,
        }
    }
}

#[async_trait]
impl FastCheck for LayeredCheck {
    fn backend(&self) -> &'static str {
        self.shared.backend()
    }

    async fn begin(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        ttl_millis: u64,
    ) -> Result<FastBegin, CheckError> {
        // A mark here belongs to a request of this process that is still
        // working (or asking Redis); an answer here is final.
        let near = self.near.begin(scope, fingerprint, ttl_millis).await?;
        if !matches!(near, FastBegin::Marked) {
            return Ok(near);
        }
        let shared = self.shared.begin(scope, fingerprint, ttl_millis).await;
        match &shared {
            // Both marks are this request's; it removes or answers both.
            Ok(FastBegin::Marked) => {}
            // Another process holds the key: its mark is not kept here, so
            // this process's next duplicate asks Redis again and sees the
            // answer as soon as there is one.
            Ok(FastBegin::InFlight { .. }) => self.near.clear(scope).await?,
            // Kept near no longer than Redis keeps it: past that, the
            // record behind it may be gone and the key free for a new
            // request, which Redis would let through.
            Ok(FastBegin::Answered {
                fingerprint,
                payment,
                remaining_millis,
            }) => {
                let ttl = (*remaining_millis).min(ttl_millis);
                self.near
                    .answer(scope, fingerprint, Arc::clone(payment), ttl)
                    .await?;
            }
            // The engine goes on as if this request marked the key, and
            // clears or answers the near mark when it ends.
            Err(_) => {}
        }
        shared
    }

    async fn answer(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        payment: Arc<Payment>,
        ttl_millis: u64,
    ) -> Result<(), CheckError> {
        self.near
            .answer(scope, fingerprint, Arc::clone(&payment), ttl_millis)
            .await?;
        self.shared
            .answer(scope, fingerprint, payment, ttl_millis)
            .await
    }

    async fn answer_with_body(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        payment: Arc<Payment>,
        body: &Bytes,
        ttl_millis: u64,
    ) -> Result<(), CheckError> {
        self.near
            .answer_with_body(scope, fingerprint, Arc::clone(&payment), body, ttl_millis)
            .await?;
        self.shared
            .answer_with_body(scope, fingerprint, payment, body, ttl_millis)
            .await
    }

    async fn replay_exact(&self, scope: &KeyScope, body: &[u8]) -> Result<ExactReplay, CheckError> {
        match self.near.replay_exact(scope, body).await? {
            ExactReplay::NotKnown => self.shared.replay_exact(scope, body).await,
            known => Ok(known),
        }
    }

    async fn clear(&self, scope: &KeyScope) -> Result<(), CheckError> {
        self.near.clear(scope).await?;
        self.shared.clear(scope).await
    }

    async fn purge_expired(&self) {
        self.near.purge_expired().await;
        self.shared.purge_expired().await;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use oncepay_domain::{IdempotencyKey, MerchantId, PaymentRequest, PaymentStatus};

    use super::*;

    /// Stands in for Redis: another in-process check, shared by the
    /// "processes" of a test, that counts how often it is asked.
    #[derive(Default)]
    struct Counted {
        inner: InProcessCheck,
        begins: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
    }

    #[async_trait]
    impl FastCheck for Counted {
        fn backend(&self) -> &'static str {
            "counted"
        }

        async fn begin(
            &self,
            scope: &KeyScope,
            fingerprint: &RequestFingerprint,
            ttl_millis: u64,
        ) -> Result<FastBegin, CheckError> {
            self.begins.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(CheckError("down".to_owned()));
            }
            self.inner.begin(scope, fingerprint, ttl_millis).await
        }

        async fn answer(
            &self,
            scope: &KeyScope,
            fingerprint: &RequestFingerprint,
            payment: Arc<Payment>,
            ttl_millis: u64,
        ) -> Result<(), CheckError> {
            self.inner
                .answer(scope, fingerprint, payment, ttl_millis)
                .await
        }

        async fn clear(&self, scope: &KeyScope) -> Result<(), CheckError> {
            self.inner.clear(scope).await
        }
    }

    const TTL: u64 = 60_000;

    fn scope() -> KeyScope {
        KeyScope {
            merchant: MerchantId::parse("m").expect("valid merchant"),
            key: IdempotencyKey::from_stored("key".to_owned()),
        }
    }

    fn request(amount: u64) -> (RequestFingerprint, Arc<Payment>) {
        let body = serde_json::json!({"amount": amount, "currency": "EUR", "payment_method": "pm"});
        let fingerprint = RequestFingerprint::of("POST", "/v1/payments", &body);
        let request = PaymentRequest::parse(&body).expect("valid request");
        let mut payment = Payment::pending(scope().merchant, request, 0);
        payment.status = PaymentStatus::Succeeded;
        (fingerprint, Arc::new(payment))
    }

    /// What `check` says to a request with `fingerprint` on the test's key.
    async fn begin(
        check: &LayeredCheck,
        fingerprint: &RequestFingerprint,
    ) -> Result<FastBegin, CheckError> {
        check.begin(&scope(), fingerprint, TTL).await
    }

    fn two_processes() -> (Arc<Counted>, LayeredCheck, LayeredCheck) {
        let shared = Arc::new(Counted::default());
        let one = LayeredCheck::new(Arc::clone(&shared) as Arc<dyn FastCheck>);
        let two = LayeredCheck::new(Arc::clone(&shared) as Arc<dyn FastCheck>);
        (shared, one, two)
    }

    /// Duplicates of a request this process is working on are answered
    /// without a round trip; another process still learns of the mark from
    /// the shared check.
    #[tokio::test]
    async fn duplicates_in_flight_here_do_not_ask_the_shared_check() -> Result<(), CheckError> {
        let (shared, one, two) = two_processes();
        let (fingerprint, _) = request(1);
        assert!(matches!(
            begin(&one, &fingerprint).await?,
            FastBegin::Marked
        ));
        for _ in 0..100 {
            let again = begin(&one, &fingerprint).await?;
            assert!(matches!(again, FastBegin::InFlight { .. }), "{again:?}");
        }
        assert_eq!(shared.begins.load(Ordering::SeqCst), 1);
        let elsewhere = begin(&two, &fingerprint).await?;
        assert!(
            matches!(elsewhere, FastBegin::InFlight { .. }),
            "{elsewhere:?}"
        );
        assert_eq!(shared.begins.load(Ordering::SeqCst), 2);
        Ok(())
    }

    /// A mark held by another process is not copied near: once that process
    /// answers, this one sees the answer on its next request.
    #[tokio::test]
    async fn another_process_answer_is_seen_and_then_kept_near() -> Result<(), CheckError> {
        let (shared, one, two) = two_processes();
        let (fingerprint, payment) = request(1);
        begin(&one, &fingerprint).await?;
        let elsewhere = begin(&two, &fingerprint).await?;
        assert!(
            matches!(elsewhere, FastBegin::InFlight { .. }),
            "{elsewhere:?}"
        );
        one.answer(&scope(), &fingerprint, Arc::clone(&payment), TTL)
            .await?;
        for _ in 0..3 {
            match begin(&two, &fingerprint).await? {
                FastBegin::Answered { payment: seen, .. } => assert_eq!(seen.id, payment.id),
                other => panic!("expected the answer, got {other:?}"),
            }
        }
        // The mark seen in flight, then the answer once: later ones are near.
        assert_eq!(shared.begins.load(Ordering::SeqCst), 3);
        Ok(())
    }

    /// An answer read from the shared check is kept near no longer than the
    /// shared check keeps it: once it lapses there (and the record behind it
    /// may be gone), this process asks again instead of answering from
    /// memory.
    #[tokio::test]
    async fn an_answer_seen_elsewhere_lapses_here_when_it_lapses_there() -> Result<(), CheckError> {
        let (_, one, two) = two_processes();
        let (fingerprint, payment) = request(1);
        begin(&one, &fingerprint).await?;
        one.answer(&scope(), &fingerprint, payment, 200).await?;

        let seen = begin(&two, &fingerprint).await?;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let after_it_lapsed = begin(&two, &fingerprint).await?;

        assert!(matches!(seen, FastBegin::Answered { .. }), "{seen:?}");
        assert!(
            matches!(after_it_lapsed, FastBegin::Marked),
            "{after_it_lapsed:?}"
        );
        Ok(())
    }

    /// A request that ends without a final answer clears both marks, so the
    /// next one on its key is free to start, here or elsewhere.
    #[tokio::test]
    async fn a_cleared_mark_frees_the_key_everywhere() -> Result<(), CheckError> {
        let (_, one, two) = two_processes();
        let (fingerprint, _) = request(1);
        begin(&one, &fingerprint).await?;
        one.clear(&scope()).await?;
        assert!(matches!(
            begin(&one, &fingerprint).await?,
            FastBegin::Marked
        ));
        one.clear(&scope()).await?;
        assert!(matches!(
            begin(&two, &fingerprint).await?,
            FastBegin::Marked
        ));
        Ok(())
    }

    /// With the shared check down, the engine treats the key as marked by
    /// this request; the near mark still stops this process's duplicates,
    /// and clearing it when the request ends frees the key.
    #[tokio::test]
    async fn a_shared_failure_keeps_the_near_mark_until_cleared() -> Result<(), CheckError> {
        let (shared, one, _) = two_processes();
        shared.down.store(true, Ordering::SeqCst);
        let (fingerprint, _) = request(1);
        assert!(begin(&one, &fingerprint).await.is_err());
        let again = begin(&one, &fingerprint).await?;
        assert!(matches!(again, FastBegin::InFlight { .. }), "{again:?}");
        one.clear(&scope()).await?;
        shared.down.store(false, Ordering::SeqCst);
        assert!(matches!(
            begin(&one, &fingerprint).await?,
            FastBegin::Marked
        ));
        Ok(())
    }
}
