//! The payment service provider, as the engine sees it.

use async_trait::async_trait;
use oncepay_domain::{Money, PspKey};
use thiserror::Error;

/// One charge, always sent with the payment's own PSP key.
#[derive(Debug, Clone)]
pub struct ChargeRequest {
    /// The PSP-side idempotency key; the same for every attempt.
    pub psp_key: PspKey,
    /// How much.
    pub money: Money,
    /// The provider token.
    pub payment_method: String,
}

/// What the PSP said about a charge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderOutcome {
    /// The money was taken.
    Succeeded,
    /// The charge was refused.
    Declined,
    /// Not settled yet; a status update or a later re-drive will tell.
    Pending,
}

impl ProviderOutcome {
    /// The label used in metrics and logs.
    pub fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Declined => "declined",
            Self::Pending => "pending",
        }
    }
}

/// The PSP gave no answer; the charge may or may not have happened.
#[derive(Debug, Clone, Error)]
pub enum ProviderError {
    /// No answer in time.
    #[error("the PSP did not answer in time")]
    Timeout,
    /// The PSP could not be reached or answered with an error.
    #[error("the PSP is unavailable: {0}")]
    Unavailable(String),
}

impl ProviderError {
    /// The label used in metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Unavailable(_) => "unavailable",
        }
    }
}

/// A PSP that honours its idempotency key: charging twice with one key
/// returns the first charge's outcome and moves money once.
#[async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// A short name for logs, such as `simulated`.
    fn name(&self) -> &'static str;

    /// Charges, or returns what the charge with this key already did.
    async fn charge(&self, request: &ChargeRequest) -> Result<ProviderOutcome, ProviderError>;
}
