//! The engine: what a payment request means, decided once per key.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use oncepay_domain::ids::issue_key_text;
use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{
    IdempotencyKey, MerchantId, Payment, PaymentId, PaymentRequest, RequestFingerprint,
};
// Failures of the primary check are logged at debug level: the check itself
// warns once when it goes down and once when it is back, and the metrics
// count every failure, so an outage does not flood the log.
use tokio_util::task::TaskTracker;
use tracing::{Instrument, debug, info, warn};

use crate::check::{ExactReplay, FastBegin, FastCheck, KeptAnswer, KeyScope};
use crate::metrics::Metrics;
use crate::provider::PaymentProvider;
use crate::store::{Claim, ClaimOutcome, Cursor, DurableStore, Page, StoreError};

/// Timings the engine works with.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// How long a lease lasts before another request may take it over.
    pub lease_ttl: Duration,
    /// How long idempotency records are kept.
    pub retention: Duration,
    /// How long to wait for the PSP before treating the outcome as unknown.
    pub psp_timeout: Duration,
    /// How long a pending payment waits before recovery asks the PSP again.
    pub redrive_after: Duration,
    /// How long the primary check keeps a final answer.
    pub answer_ttl: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(30),
            retention: Duration::from_secs(24 * 3600),
            psp_timeout: Duration::from_secs(10),
            redrive_after: Duration::from_secs(30),
            answer_ttl: Duration::from_secs(600),
        }
    }
}

/// The engine's answer to `POST /v1/payments`.
#[derive(Debug, Clone)]
pub enum PaymentAnswer {
    /// The key was new and the payment was executed now.
    First(Arc<Payment>),
    /// The key was seen before; the payment as it stands now (replayed when
    /// final, re-driven with the PSP when it was pending).
    Retried(Arc<Payment>),
    /// Another request holds the key's lease.
    InFlight {
        /// Seconds after which a retry may succeed.
        retry_after_secs: u64,
    },
    /// The key was used for a different request.
    Mismatch,
}

/// One request to pay, as it goes to the durable part of [`Engine::pay`].
struct Attempt {
    scope: KeyScope,
    fingerprint: RequestFingerprint,
    request: PaymentRequest,
    /// The raw body, kept with a final answer for exact replays.
    body: Bytes,
    /// Whether this request holds the key's in-flight mark, and so must
    /// remove it when it ends without a final answer.
    marked: bool,
}

/// What the primary check said before the store is asked.
enum FromCheck {
    /// The check answered the request.
    Answered(PaymentAnswer),
    /// The key is now marked in flight by this request (or the check is
    /// unavailable).
    Marked,
    /// Another request's mark, with another body: the store decides, and the
    /// mark stays.
    AskStore,
}

/// The idempotency engine, shared by every request handler.
pub struct Engine {
    pub(crate) store: Arc<dyn DurableStore>,
    pub(crate) check: Arc<dyn FastCheck>,
    pub(crate) psp: Arc<dyn PaymentProvider>,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) config: EngineConfig,
    /// Payments being executed, so a shutdown can wait for them.
    tasks: TaskTracker,
}

impl Engine {
    /// Wires an engine from its parts.
    pub fn new(
        store: Arc<dyn DurableStore>,
        check: Arc<dyn FastCheck>,
        psp: Arc<dyn PaymentProvider>,
        metrics: Arc<Metrics>,
        config: EngineConfig,
    ) -> Self {
        Self {
            store,
            check,
            psp,
            metrics,
            config,
            tasks: TaskTracker::new(),
        }
    }

    /// The durable store, for readiness checks.
    pub fn store(&self) -> &Arc<dyn DurableStore> {
        &self.store
    }

    /// The primary check's name, for the startup line.
    pub fn check_backend(&self) -> &'static str {
        self.check.backend()
    }

    /// The metrics every part records into.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The engine's timings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Waits until every payment being executed is recorded; new payments
    /// can no longer start. Called on shutdown, after the HTTP server stopped:
    /// a payment whose client hung up still runs to its end.
    pub async fn finish_payments(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Issues a fresh key for the merchant and registers it until it expires.
    pub async fn issue_key(
        &self,
        merchant: &MerchantId,
    ) -> Result<(IdempotencyKey, i64), StoreError> {
        let key = IdempotencyKey::issued(issue_key_text());
        let expires_at = now_millis().saturating_add(millis(self.config.retention));
        self.store.issue_key(merchant, &key, expires_at).await?;
        Ok((key, expires_at))
    }

    /// Replays the key's final payment to a retry whose raw `body` is, byte
    /// for byte, the body that produced it, without parsing it: equal bytes
    /// under the same key have the same fingerprint. `None` when the primary
    /// check knows no such answer; the request then goes through [`pay`].
    ///
    /// Only final payments are ever kept in the check, and final payments
    /// never change, so the replay is the payment as it stands now, and the
    /// answer carries the bytes it was last shown with, once it has been.
    ///
    /// [`pay`]: Engine::pay
    pub async fn replay_exact(&self, scope: &KeyScope, body: &[u8]) -> Option<KeptAnswer> {
        match self.check.replay_exact(scope, body).await {
            Ok(ExactReplay::Answered(kept)) => {
                self.metrics.record_replay();
                Some(kept)
            }
            Ok(ExactReplay::NotKnown) => None,
            Err(error) => {
                self.metrics.record_check_failure();
                debug!(%error, check = self.check.backend(), "primary check failed, parsing the body");
                None
            }
        }
    }

    /// Executes a payment at most once per (merchant, key) and answers every
    /// retry from the record. `body` is the request's raw body, kept with a
    /// final answer for [`Engine::replay_exact`].
    pub async fn pay(
        self: &Arc<Self>,
        scope: KeyScope,
        fingerprint: RequestFingerprint,
        request: PaymentRequest,
        body: Bytes,
    ) -> Result<PaymentAnswer, StoreError> {
        let marked = match self.answer_from_check(&scope, &fingerprint).await {
            FromCheck::Answered(answer) => return Ok(answer),
            FromCheck::Marked => true,
            FromCheck::AskStore => false,
        };

        // The durable part runs in its own task: a client that hangs up must
        // not cancel a PSP call halfway, or its outcome would go unrecorded.
        let engine = Arc::clone(self);
        let attempt = Attempt {
            scope,
            fingerprint,
            request,
            body,
            marked,
        };
        self.tasks
            .spawn(async move { engine.pay_durably(attempt).await }.in_current_span())
            .await
            .map_err(|error| StoreError::Unavailable(format!("payment task failed: {error}")))?
    }

    async fn answer_from_check(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
    ) -> FromCheck {
        let ttl = millis(self.config.lease_ttl).min(MAX_MARK_MILLIS) as u64;
        let answer = match self.check.begin(scope, fingerprint, ttl).await {
            Ok(FastBegin::Marked) => return FromCheck::Marked,
            Ok(FastBegin::InFlight {
                fingerprint: theirs,
                remaining_millis,
            }) => {
                // A mark holds the fingerprint of whichever request set it,
                // not necessarily the one the key was recorded with (a
                // request with another body marks the key on its way to be
                // refused by the store). Only the store can say which body
                // the key belongs to, so this request asks it, and leaves
                // the mark to its owner.
                if &theirs != fingerprint {
                    return FromCheck::AskStore;
                }
                PaymentAnswer::InFlight {
                    retry_after_secs: seconds_up(remaining_millis),
                }
            }
            Ok(FastBegin::Answered {
                fingerprint: theirs,
                payment,
                ..
            }) => {
                if &theirs == fingerprint {
                    PaymentAnswer::Retried(payment)
                } else {
                    PaymentAnswer::Mismatch
                }
            }
            Err(error) => {
                self.metrics.record_check_failure();
                debug!(%error, check = self.check.backend(), "primary check failed, using the store");
                return FromCheck::Marked;
            }
        };
        self.count(&answer);
        FromCheck::Answered(answer)
    }

    async fn pay_durably(self: Arc<Self>, attempt: Attempt) -> Result<PaymentAnswer, StoreError> {
        let Attempt {
            scope,
            fingerprint,
            request,
            body,
            marked,
        } = attempt;
        let now = now_millis();
        let lease = self.new_lease(now);
        let claim = Claim {
            merchant: scope.merchant.clone(),
            key: scope.key.clone(),
            fingerprint: Some(fingerprint.clone()),
            lease: lease.clone(),
            new_payment: Some(Payment::pending(scope.merchant.clone(), request, now)),
            now_millis: now,
            expires_at_millis: now.saturating_add(millis(self.config.retention)),
        };
        let outcome = match self.store.claim(claim).await {
            Ok(outcome) => outcome,
            Err(error) => {
                if marked {
                    self.forget_mark(&scope).await;
                }
                return Err(error);
            }
        };
        let answer = self.act_on_claim(&scope, &lease.owner, outcome).await;
        self.remember(&scope, &fingerprint, &body, answer.as_ref().ok(), marked)
            .await;
        let answer = answer?;
        self.count(&answer);
        Ok(answer)
    }

    async fn act_on_claim(
        &self,
        scope: &KeyScope,
        lease_owner: &str,
        outcome: ClaimOutcome,
    ) -> Result<PaymentAnswer, StoreError> {
        Ok(match outcome {
            ClaimOutcome::Created(payment) => {
                info!(payment_id = %payment.id, merchant = %scope.merchant, key = %key_digest(&scope.key), "payment created");
                PaymentAnswer::First(self.execute(scope, lease_owner, payment).await?)
            }
            ClaimOutcome::Resumed { payment, took_over } => {
                self.note_resumption(&payment, took_over);
                PaymentAnswer::Retried(self.execute(scope, lease_owner, payment).await?)
            }
            ClaimOutcome::InFlight { lease_until_millis } => {
                let remaining = (lease_until_millis - now_millis()).max(0) as u64;
                PaymentAnswer::InFlight {
                    retry_after_secs: seconds_up(remaining),
                }
            }
            ClaimOutcome::Mismatch => PaymentAnswer::Mismatch,
            ClaimOutcome::Finished(payment) => PaymentAnswer::Retried(Arc::new(payment)),
            ClaimOutcome::Gone => {
                return Err(StoreError::Corrupt(
                    "a claimed key guards no payment".to_owned(),
                ));
            }
        })
    }

    pub(crate) fn note_resumption(&self, payment: &Payment, took_over: bool) {
        if took_over {
            self.metrics.record_takeover();
            warn!(payment_id = %payment.id, "lease lapsed, taking the payment over");
        } else {
            info!(payment_id = %payment.id, "payment still pending, asking the PSP again");
        }
    }

    /// Leaves a final answer in the primary check, with the body that
    /// produced it, or removes the mark when this request set it. A pending
    /// payment is never left there: its retries must reach the store to
    /// re-drive it, and a status update may settle it at any time.
    async fn remember(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        body: &Bytes,
        answer: Option<&PaymentAnswer>,
        marked: bool,
    ) {
        let final_payment = match answer {
            Some(PaymentAnswer::First(p) | PaymentAnswer::Retried(p)) if p.status.is_final() => p,
            _ if marked => return self.forget_mark(scope).await,
            _ => return,
        };
        let ttl = millis(self.config.answer_ttl) as u64;
        let stored = self
            .check
            .answer_with_body(scope, fingerprint, Arc::clone(final_payment), body, ttl)
            .await;
        if let Err(error) = stored {
            self.metrics.record_check_failure();
            debug!(%error, "could not record the answer in the primary check");
        }
    }

    async fn forget_mark(&self, scope: &KeyScope) {
        if let Err(error) = self.check.clear(scope).await {
            self.metrics.record_check_failure();
            debug!(%error, "could not clear the in-flight mark in the primary check");
        }
    }

    fn count(&self, answer: &PaymentAnswer) {
        match answer {
            PaymentAnswer::First(_) => {}
            PaymentAnswer::Retried(_) => self.metrics.record_replay(),
            PaymentAnswer::InFlight { .. } => self.metrics.record_in_flight_conflict(),
            PaymentAnswer::Mismatch => self.metrics.record_mismatch(),
        }
    }

    /// One payment of a merchant.
    pub async fn payment(
        &self,
        merchant: &MerchantId,
        id: &PaymentId,
    ) -> Result<Option<Payment>, StoreError> {
        self.store.payment(merchant, id).await
    }

    /// The merchant's payments, newest first.
    pub async fn list(
        &self,
        merchant: &MerchantId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError> {
        self.store.list(merchant, cursor, limit).await
    }
}

/// A short, stable digest of a key for logs; the key itself is never logged.
pub fn key_digest(key: &IdempotencyKey) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(key.as_str().as_bytes())[..6])
}

pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Longest life of an in-flight mark in the primary check. The durable lease
/// guards the key for its whole length; the mark only spares the store the
/// duplicates of a request in progress. Kept short, a mark that outlives its
/// request (its removal failed while Redis hiccuped) delays retries by at
/// most this long, instead of a whole lease.
const MAX_MARK_MILLIS: i64 = 2_000;

/// Longest `Retry-After` suggested. A lease can outlive its request by far
/// (it must cover the PSP timeout), but most requests end within one PSP
/// round trip, so clients are told to come back soon rather than at lapse.
const MAX_RETRY_AFTER_SECS: u64 = 2;

fn seconds_up(millis: u64) -> u64 {
    millis.div_ceil(1000).clamp(1, MAX_RETRY_AFTER_SECS)
}
