//! The durable record: the source of truth behind the fast check.
//!
//! A store keeps idempotency records and payments. Every decision about a key
//! is one call here and one transaction in the store, and a unique constraint
//! on (merchant, key) is the last line of defence against a second execution.

use std::sync::Arc;

use async_trait::async_trait;
use oncepay_domain::{
    IdempotencyKey, MerchantId, Payment, PaymentId, PaymentStatus, RequestFingerprint,
};
use thiserror::Error;

/// The right to work on one key until a deadline.
///
/// Whoever holds the lease may call the PSP and settle the payment. A lease
/// that lapses (its holder died or hung) may be taken over; the old holder's
/// settlement is then refused, so it can never overwrite the new holder's work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// A random token naming this attempt.
    pub owner: String,
    /// Unix milliseconds after which the lease may be taken over.
    pub until_millis: i64,
}

/// A request to start (or resume) work on a key.
#[derive(Debug, Clone)]
pub struct Claim {
    /// Whose key.
    pub merchant: MerchantId,
    /// The key.
    pub key: IdempotencyKey,
    /// The request's fingerprint; `None` for background recovery, which
    /// resumes whatever the key already guards.
    pub fingerprint: Option<RequestFingerprint>,
    /// The lease to take.
    pub lease: Lease,
    /// The payment to record if the key is new.
    pub new_payment: Option<Payment>,
    /// Now, unix milliseconds.
    pub now_millis: i64,
    /// When a new record expires, unix milliseconds.
    pub expires_at_millis: i64,
}

/// What a claim found, decided in one transaction.
#[derive(Debug, Clone)]
pub enum ClaimOutcome {
    /// The key was new: the payment is recorded as pending and the lease held.
    Created(Payment),
    /// The key guards a payment that needs the PSP again (still pending, or
    /// its last holder's lease lapsed); the lease is now ours.
    Resumed {
        /// The payment as recorded.
        payment: Payment,
        /// True when a live holder's lease had lapsed and was taken over.
        took_over: bool,
    },
    /// Another holder's lease is live.
    InFlight {
        /// When that lease lapses, unix milliseconds.
        lease_until_millis: i64,
    },
    /// The key was used for a request with another fingerprint.
    Mismatch,
    /// The payment is final; answer from the record.
    Finished(Payment),
    /// Background recovery asked about a key that guards nothing any more.
    Gone,
}

/// The end of one attempt: what the PSP said, recorded under the lease.
#[derive(Debug, Clone)]
pub struct Settlement {
    /// Whose key.
    pub merchant: MerchantId,
    /// The key.
    pub key: IdempotencyKey,
    /// The lease the attempt held.
    pub lease_owner: String,
    /// The payment worked on, as the claim returned it. A store may write
    /// the settled payment from it when nothing changed the payment since
    /// (see `apply_to`), instead of reading it back.
    pub payment: Arc<Payment>,
    /// The new status and its cause, or `None` when the PSP gave no final word.
    pub change: Option<(PaymentStatus, String)>,
    /// Now, unix milliseconds.
    pub now_millis: i64,
}

impl Settlement {
    /// Applies the PSP's answer to the payment as stored now. When a signed
    /// status update settled it first and the PSP's late answer disagrees,
    /// the recorded final state stands and the disagreement is logged.
    pub fn apply_to(&self, payment: &mut Payment) {
        let Some((status, cause)) = &self.change else {
            return;
        };
        if let Err(refused) = payment.apply(*status, cause.clone(), self.now_millis) {
            tracing::warn!(payment_id = %payment.id, %refused, "PSP answer contradicts the recorded status");
        }
    }
}

/// What a settlement did.
#[derive(Debug, Clone)]
pub enum SettleOutcome {
    /// Recorded; the lease is released.
    Settled(Payment),
    /// The lease had been taken over; nothing was written.
    LeaseLost(Payment),
}

/// A page of the merchant's payments, newest first.
#[derive(Debug, Clone)]
pub struct Page {
    /// The payments.
    pub payments: Vec<Payment>,
    /// Where the next page starts, if there is one.
    pub next: Option<Cursor>,
}

/// A position in a merchant's list: payments strictly older than it follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor(pub i64);

/// One page as every store fetches it: the merchant's payments whose list
/// position is below `before`, newest first, at most `fetch` of them — one
/// more than asked for, which tells whether another page follows.
#[derive(Debug, Clone, Copy)]
pub struct PageQuery {
    /// Positions strictly below this one.
    pub before: i64,
    /// How many rows to fetch.
    pub fetch: i64,
    limit: usize,
}

impl PageQuery {
    /// The query for `limit` payments after `cursor`.
    pub fn new(cursor: Option<Cursor>, limit: usize) -> Self {
        Self {
            before: cursor.map_or(i64::MAX, |Cursor(seq)| seq),
            fetch: i64::try_from(limit).unwrap_or(i64::MAX).saturating_add(1),
            limit,
        }
    }

    /// The page made of what the store fetched: (position, payment) pairs,
    /// newest first.
    pub fn page(&self, mut fetched: Vec<(i64, Payment)>) -> Page {
        let has_more = fetched.len() > self.limit;
        fetched.truncate(self.limit);
        let next = has_more
            .then(|| fetched.last().map(|(seq, _)| Cursor(*seq)))
            .flatten();
        Page {
            payments: fetched.into_iter().map(|(_, payment)| payment).collect(),
            next,
        }
    }
}

/// What a status update did, decided in one transaction.
#[derive(Debug, Clone)]
pub enum UpdateOutcome {
    /// The payment moved to the new status.
    Applied(Payment),
    /// The payment already had that status.
    Unchanged(Payment),
    /// The payment is final in the other state.
    Conflict(Payment),
    /// This event id was seen before; here is what it did then.
    Repeated {
        /// The payment now.
        payment: Payment,
        /// What the first delivery did.
        first: RecordedUpdate,
    },
    /// No such payment.
    NotFound,
}

/// What the first delivery of an event did, kept to answer repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordedUpdate {
    /// It moved the payment.
    Applied,
    /// The payment already had that status.
    Unchanged,
    /// It was refused as a conflict.
    Conflict,
}

impl RecordedUpdate {
    /// The text used in stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Unchanged => "unchanged",
            Self::Conflict => "conflict",
        }
    }

    /// Reads the stored text back.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "applied" => Some(Self::Applied),
            "unchanged" => Some(Self::Unchanged),
            "conflict" => Some(Self::Conflict),
            _ => None,
        }
    }
}

/// A store could not answer.
#[derive(Debug, Clone, Error)]
pub enum StoreError {
    /// The store is down or refused the operation; retrying may help.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// The store holds something it should not; a bug or a broken file.
    #[error("the store holds an unreadable record: {0}")]
    Corrupt(String),
}

/// The durable record. Every method is one transaction.
#[async_trait]
pub trait DurableStore: Send + Sync + 'static {
    /// A short name for logs and metrics, such as `sqlite`.
    fn backend(&self) -> &'static str;

    /// Registers a key issued by oncepay, so it is known until it expires.
    async fn issue_key(
        &self,
        merchant: &MerchantId,
        key: &IdempotencyKey,
        expires_at_millis: i64,
    ) -> Result<(), StoreError>;

    /// Decides what a request on a key means and takes the lease when work
    /// is due. See [`ClaimOutcome`].
    async fn claim(&self, claim: Claim) -> Result<ClaimOutcome, StoreError>;

    /// Records the end of an attempt and releases its lease, unless the lease
    /// was taken over meanwhile.
    async fn settle(&self, settlement: Settlement) -> Result<SettleOutcome, StoreError>;

    /// Applies a signed status update, once per event id.
    async fn apply_status_update(
        &self,
        payment_id: &PaymentId,
        event_id: &str,
        status: PaymentStatus,
        now_millis: i64,
    ) -> Result<UpdateOutcome, StoreError>;

    /// One payment of a merchant.
    async fn payment(
        &self,
        merchant: &MerchantId,
        id: &PaymentId,
    ) -> Result<Option<Payment>, StoreError>;

    /// The merchant's payments, newest first, after `cursor`.
    async fn list(
        &self,
        merchant: &MerchantId,
        cursor: Option<Cursor>,
        limit: usize,
    ) -> Result<Page, StoreError>;

    /// Keys whose work is due again: a lapsed lease, or a pending payment the
    /// PSP was last asked about before `checked_before_millis`.
    async fn stalled(
        &self,
        now_millis: i64,
        checked_before_millis: i64,
        limit: usize,
    ) -> Result<Vec<(MerchantId, IdempotencyKey)>, StoreError>;

    /// Deletes idempotency records past their expiry, except those still
    /// guarding a pending payment or guarding a payment that changed less
    /// than one retention period (the record's own `expires - created` span)
    /// ago. Payments are kept. Returns how many went.
    async fn reap(&self, now_millis: i64, limit: usize) -> Result<u64, StoreError>;

    /// Answers when the store can serve requests.
    async fn ping(&self) -> Result<(), StoreError>;
}
