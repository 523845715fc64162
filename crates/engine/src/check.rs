//! The primary check: a fast, losable tier in front of the durable store.
//!
//! It catches duplicates of a request in flight and serves replays of final
//! payments without touching the store. Losing it costs speed only: the
//! engine always claims in the durable store before calling the PSP.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;
use oncepay_domain::{IdempotencyKey, MerchantId, Payment, RequestFingerprint};
use thiserror::Error;

/// A merchant's key, the unit the check works on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyScope {
    /// Whose key.
    pub merchant: MerchantId,
    /// The key.
    pub key: IdempotencyKey,
}

/// What the check knew when asked to mark a key in flight.
#[derive(Debug, Clone)]
pub enum FastBegin {
    /// Nothing known; the key is now marked in flight by this request.
    Marked,
    /// Another request marked it and is still working.
    InFlight {
        /// That request's fingerprint.
        fingerprint: RequestFingerprint,
        /// How long until the mark lapses, in milliseconds.
        remaining_millis: u64,
    },
    /// A final answer is recorded.
    Answered {
        /// The fingerprint of the request it answered.
        fingerprint: RequestFingerprint,
        /// The final payment.
        payment: Arc<Payment>,
        /// How long the check keeps the answer, in milliseconds.
        remaining_millis: u64,
    },
}

/// The bytes a final answer was shown with, kept beside it so that exact
/// replays send them again instead of rendering the payment each time.
///
/// Whoever shows the answer first fills it; what the bytes are is the
/// business of the layer that shows them. A final payment never changes, so
/// neither do they.
#[derive(Debug, Default)]
pub struct Rendering(OnceLock<Bytes>);

impl Rendering {
    /// The kept bytes, or those `render` makes, which are then kept. A
    /// failed rendering keeps nothing.
    ///
    /// # Errors
    ///
    /// Whatever `render` returns.
    pub fn get_or_render<E>(&self, render: impl FnOnce() -> Result<Bytes, E>) -> Result<Bytes, E> {
        if let Some(bytes) = self.0.get() {
            return Ok(bytes.clone());
        }
        let bytes = render()?;
        // Two replays may render at once; both made the same bytes.
        Ok(self.0.get_or_init(|| bytes).clone())
    }
}

/// A final answer kept by the check, as an exact replay receives it.
#[derive(Debug, Clone)]
pub struct KeptAnswer {
    /// The final payment.
    pub payment: Arc<Payment>,
    /// How it was shown, once it has been.
    pub rendering: Arc<Rendering>,
}

/// What the check holds for a retry sent with the exact body of an answered
/// request.
#[derive(Debug, Clone)]
pub enum ExactReplay {
    /// The body is, byte for byte, the one kept with this final answer.
    Answered(KeptAnswer),
    /// No final answer is kept with these bytes: the request takes the full
    /// path (parse, fingerprint, [`FastCheck::begin`]).
    NotKnown,
}

/// The check could not answer; the engine falls back to the store.
#[derive(Debug, Clone, Error)]
#[error("the primary check is unavailable: {0}")]
pub struct CheckError(pub String);

/// A fast, expiring map from keys to in-flight marks and final answers.
#[async_trait]
pub trait FastCheck: Send + Sync + 'static {
    /// A short name for logs, such as `in-process` or `redis`.
    fn backend(&self) -> &'static str;

    /// Atomically reads the key and, when nothing is known, marks it in
    /// flight for `ttl_millis`.
    async fn begin(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        ttl_millis: u64,
    ) -> Result<FastBegin, CheckError>;

    /// Records a final answer for `ttl_millis`, replacing the mark.
    async fn answer(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        payment: Arc<Payment>,
        ttl_millis: u64,
    ) -> Result<(), CheckError>;

    /// Records a final answer like [`FastCheck::answer`], and may keep the
    /// raw body of the request that produced it for
    /// [`FastCheck::replay_exact`]. Checks that keep no bodies record the
    /// answer alone.
    async fn answer_with_body(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        payment: Arc<Payment>,
        _body: &Bytes,
        ttl_millis: u64,
    ) -> Result<(), CheckError> {
        self.answer(scope, fingerprint, payment, ttl_millis).await
    }

    /// The key's final payment, when `body` is byte for byte the body kept
    /// with it. Equal bytes under the same key mean the same fingerprint, so
    /// such a retry can be replayed without being parsed. Reads only: it
    /// never marks the key. Checks that keep no bodies know nothing.
    async fn replay_exact(
        &self,
        _scope: &KeyScope,
        _body: &[u8],
    ) -> Result<ExactReplay, CheckError> {
        Ok(ExactReplay::NotKnown)
    }

    /// Removes the mark, when the work ended without a final answer.
    async fn clear(&self, scope: &KeyScope) -> Result<(), CheckError>;

    /// Drops expired entries, for checks that do not expire them themselves.
    async fn purge_expired(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rendering_is_made_once_and_a_failed_one_is_not_kept() {
        let rendering = Rendering::default();

        let failed: Result<Bytes, &str> = rendering.get_or_render(|| Err("broken"));
        let made = rendering.get_or_render(|| Ok::<_, &str>(Bytes::from_static(b"first")));
        let kept = rendering.get_or_render(|| Ok::<_, &str>(Bytes::from_static(b"second")));

        assert_eq!(failed, Err("broken"));
        assert_eq!(made.as_deref(), Ok(&b"first"[..]));
        assert_eq!(
            kept.as_deref(),
            Ok(&b"first"[..]),
            "rendered once, then kept"
        );
    }
}
