//! The simulator's rules: the payment method chooses the outcome.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use oncepay_engine::{ChargeRequest, PaymentProvider, ProviderError, ProviderOutcome};
use tracing::debug;

use crate::ledger::{Booking, Ledger, LedgerError};

/// How the simulator behaves.
#[derive(Debug, Clone, Default)]
pub struct SimConfig {
    /// Delay of every call, after the charge is booked.
    pub latency: Duration,
    /// A SQLite file for the ledger, so it outlives the process; in memory
    /// when `None`.
    pub ledger: Option<PathBuf>,
}

/// The behaviour a payment method asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Behaviour {
    Succeed,
    Decline,
    StayPending,
    ChargeAndLoseAnswer,
}

impl Behaviour {
    fn of(payment_method: &str) -> Self {
        match payment_method {
            "pm_card_declined" => Self::Decline,
            "pm_card_pending" => Self::StayPending,
            "pm_card_timeout" => Self::ChargeAndLoseAnswer,
            _ => Self::Succeed,
        }
    }

    fn outcome(self) -> ProviderOutcome {
        match self {
            Self::Succeed | Self::ChargeAndLoseAnswer => ProviderOutcome::Succeeded,
            Self::Decline => ProviderOutcome::Declined,
            Self::StayPending => ProviderOutcome::Pending,
        }
    }
}

/// The simulated PSP.
#[derive(Debug)]
pub struct SimulatedPsp {
    ledger: Ledger,
    latency: Duration,
}

impl SimulatedPsp {
    /// Opens the ledger (creating its table) and returns the simulator.
    pub fn new(config: SimConfig) -> Result<Self, LedgerError> {
        let ledger = match &config.ledger {
            Some(path) => Ledger::open(path)?,
            None => Ledger::in_memory(),
        };
        Ok(Self {
            ledger,
            latency: config.latency,
        })
    }
}

#[async_trait]
impl PaymentProvider for SimulatedPsp {
    fn name(&self) -> &'static str {
        "simulated"
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ProviderOutcome, ProviderError> {
        let behaviour = Behaviour::of(&request.payment_method);
        let booking = self
            .ledger
            .book(request, behaviour.outcome())
            .map_err(|error| ProviderError::Unavailable(error.to_string()))?;
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        debug!(
            psp_key = request.psp_key.as_str(),
            ?booking,
            "simulated charge"
        );
        match booking {
            Booking::New(_) if behaviour == Behaviour::ChargeAndLoseAnswer => {
                Err(ProviderError::Timeout)
            }
            Booking::New(outcome) | Booking::Existing(outcome) => Ok(outcome),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oncepay_domain::{Amount, Currency, Money, PspKey};

    fn request(method: &str) -> ChargeRequest {
        ChargeRequest {
            psp_key: PspKey::generate(),
            money: Money {
                amount: Amount::parse(1000).expect("valid amount"),
                currency: Currency::parse("EUR").expect("known currency"),
            },
            payment_method: method.to_owned(),
        }
    }

    #[tokio::test]
    async fn a_lost_answer_is_found_again_with_the_same_key() {
        let psp = SimulatedPsp::new(SimConfig::default()).expect("in-memory ledger");
        let charge = request("pm_card_timeout");
        assert!(matches!(
            psp.charge(&charge).await,
            Err(ProviderError::Timeout)
        ));
        assert_eq!(
            psp.charge(&charge).await.ok(),
            Some(ProviderOutcome::Succeeded)
        );
    }

    #[tokio::test]
    async fn the_ledger_file_remembers_charges_across_restarts() {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = SimConfig {
            latency: Duration::ZERO,
            ledger: Some(dir.path().join("l.db")),
        };
        let charge = request("pm_card_timeout");
        let first = SimulatedPsp::new(config.clone()).expect("ledger file");
        assert!(first.charge(&charge).await.is_err());
        drop(first);
        let second = SimulatedPsp::new(config).expect("ledger file again");
        assert_eq!(
            second.charge(&charge).await.ok(),
            Some(ProviderOutcome::Succeeded)
        );
    }

    #[tokio::test]
    async fn payment_methods_choose_the_outcome() {
        let psp = SimulatedPsp::new(SimConfig::default()).expect("in-memory ledger");
        let outcome = |method: &'static str| {
            let psp = &psp;
            async move { psp.charge(&request(method)).await.ok() }
        };
        assert_eq!(
            outcome("pm_card_ok").await,
            Some(ProviderOutcome::Succeeded)
        );
        assert_eq!(
            outcome("pm_card_declined").await,
            Some(ProviderOutcome::Declined)
        );
        assert_eq!(
            outcome("pm_card_pending").await,
            Some(ProviderOutcome::Pending)
        );
    }
}
