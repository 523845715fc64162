//! Payments and their status machine: `pending` → `succeeded` | `failed`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::{MerchantId, Money, PaymentId, PaymentRequest, PspKey};

/// Where a payment stands. Final states never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// The outcome is not known yet.
    Pending,
    /// The PSP took the money.
    Succeeded,
    /// The PSP declined.
    Failed,
}

/// A move the status machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a {from:?} payment cannot become {to:?}")]
pub struct TransitionError {
    /// The status the payment has.
    pub from: PaymentStatus,
    /// The status that was asked for.
    pub to: PaymentStatus,
}

/// What a transition request amounts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status changes; record it.
    Moves,
    /// The payment already has this status; nothing to record.
    AlreadyThere,
}

impl PaymentStatus {
    /// The text used in JSON and in stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Reads the stored text back.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    /// True for `succeeded` and `failed`.
    pub fn is_final(self) -> bool {
        !matches!(self, Self::Pending)
    }

    /// Checks a move: staying put is allowed and changes nothing, leaving a
    /// final state or going back to `pending` is refused.
    pub fn transition(self, to: Self) -> Result<Transition, TransitionError> {
        match (self, to) {
            (from, to) if from == to => Ok(Transition::AlreadyThere),
            (Self::Pending, _) => Ok(Transition::Moves),
            (from, to) => Err(TransitionError { from, to }),
        }
    }
}

/// One entry of a payment's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The status entered.
    pub status: PaymentStatus,
    /// When, in unix milliseconds.
    pub at_millis: i64,
    /// Why, in words: `created`, `psp: succeeded`, `status update evt_1`...
    pub cause: String,
}

/// A payment as oncepay records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Public id.
    pub id: PaymentId,
    /// Whose payment.
    pub merchant: MerchantId,
    /// How much.
    pub money: Money,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The provider token, echoed as given.
    pub payment_method: String,
    /// Free text from the client.
    pub description: Option<String>,
    /// Flat string map from the client.
    pub metadata: BTreeMap<String, String>,
    /// The key oncepay gives the PSP for this payment, every time.
    pub psp_key: PspKey,
    /// Creation time, unix milliseconds.
    pub created_at_millis: i64,
    /// Time of the last change, unix milliseconds.
    pub updated_at_millis: i64,
    /// Every status entered, oldest first.
    pub history: Vec<StatusChange>,
}

impl Payment {
    /// A new payment for `request`, pending, with fresh ids and its creation
    /// as the first history entry.
    pub fn pending(merchant: MerchantId, request: PaymentRequest, now_millis: i64) -> Self {
        Self {
            id: PaymentId::generate(),
            merchant,
            money: request.money,
            status: PaymentStatus::Pending,
            payment_method: request.payment_method,
            description: request.description,
            metadata: request.metadata,
            psp_key: PspKey::generate(),
            created_at_millis: now_millis,
            updated_at_millis: now_millis,
            history: vec![StatusChange {
                status: PaymentStatus::Pending,
                at_millis: now_millis,
                cause: "created".to_owned(),
            }],
        }
    }

    /// Moves the payment to `to`, recording why; refuses illegal moves.
    pub fn apply(
        &mut self,
        to: PaymentStatus,
        cause: String,
        at_millis: i64,
    ) -> Result<Transition, TransitionError> {
        let transition = self.status.transition(to)?;
        if transition == Transition::Moves {
            self.status = to;
            self.updated_at_millis = at_millis;
            self.history.push(StatusChange {
                status: to,
                at_millis,
                cause,
            });
        }
        Ok(transition)
    }
}

#[cfg(test)]
mod tests {
    use super::PaymentStatus::{Failed, Pending, Succeeded};
    use super::*;

    #[test]
    fn a_pending_payment_may_settle_either_way() {
        assert_eq!(Pending.transition(Succeeded), Ok(Transition::Moves));
        assert_eq!(Pending.transition(Failed), Ok(Transition::Moves));
    }

    #[test]
    fn final_states_never_change() {
        for from in [Succeeded, Failed] {
            for to in [Pending, Succeeded, Failed] {
                let outcome = from.transition(to);
                if from == to {
                    assert_eq!(outcome, Ok(Transition::AlreadyThere));
                } else {
                    assert_eq!(outcome, Err(TransitionError { from, to }));
                }
            }
        }
    }

    #[test]
    fn statuses_round_trip_through_their_text() {
        for status in [Pending, Succeeded, Failed] {
            assert_eq!(PaymentStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(PaymentStatus::parse("refunded"), None);
    }
}
