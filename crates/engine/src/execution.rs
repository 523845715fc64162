//! One attempt at a payment under a lease: ask the PSP, record the answer.

use std::sync::Arc;

use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{Payment, PaymentStatus};
use rand::RngCore;
use tracing::{error, info, warn};

use crate::check::KeyScope;
use crate::engine::{Engine, millis};
use crate::provider::{ChargeRequest, ProviderError, ProviderOutcome};
use crate::store::{Lease, SettleOutcome, Settlement, StoreError};

impl Engine {
    /// A lease for a new attempt, owned by a random token.
    pub(crate) fn new_lease(&self, now: i64) -> Lease {
        let mut owner = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut owner);
        Lease {
            owner: hex::encode(owner),
            until_millis: now.saturating_add(millis(self.config.lease_ttl)),
        }
    }

    /// Charges with the payment's PSP key and records what the PSP said.
    ///
    /// The caller holds the lease. An unknown outcome (timeout, PSP down)
    /// leaves the payment pending for a retry or recovery to re-drive.
    pub(crate) async fn execute(
        &self,
        scope: &KeyScope,
        lease_owner: &str,
        payment: Payment,
    ) -> Result<Arc<Payment>, StoreError> {
        let outcome = self.call_provider(&payment).await;
        let payment = Arc::new(payment);
        let change = match outcome {
            Ok(ProviderOutcome::Succeeded) => Some((PaymentStatus::Succeeded, "psp: succeeded")),
            Ok(ProviderOutcome::Declined) => Some((PaymentStatus::Failed, "psp: declined")),
            Ok(ProviderOutcome::Pending) | Err(_) => None,
        };
        let settlement = Settlement {
            merchant: scope.merchant.clone(),
            key: scope.key.clone(),
            lease_owner: lease_owner.to_owned(),
            payment: Arc::clone(&payment),
            change: change.map(|(status, cause)| (status, cause.to_owned())),
            now_millis: now_millis(),
        };
        let settled = match self.store.settle(settlement).await {
            Ok(settled) => settled,
            Err(error) => {
                // The PSP may have moved money already: the answer is
                // "pending", never a 503 that tells the client nothing
                // happened. The lease lapses and recovery records the outcome
                // with the same PSP key.
                error!(payment_id = %payment.id, %error, "could not record the PSP's answer; the payment stays pending");
                return Ok(payment);
            }
        };
        match settled {
            SettleOutcome::Settled(payment) => {
                info!(payment_id = %payment.id, status = payment.status.as_str(), "payment recorded");
                Ok(Arc::new(payment))
            }
            SettleOutcome::LeaseLost(payment) => {
                warn!(payment_id = %payment.id, "lease was taken over meanwhile, nothing written");
                Ok(Arc::new(payment))
            }
        }
    }

    async fn call_provider(&self, payment: &Payment) -> Result<ProviderOutcome, ProviderError> {
        let request = ChargeRequest {
            psp_key: payment.psp_key.clone(),
            money: payment.money,
            payment_method: payment.payment_method.clone(),
        };
        let call = self.psp.charge(&request);
        let outcome = match tokio::time::timeout(self.config.psp_timeout, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(ProviderError::Timeout),
        };
        let label = match &outcome {
            Ok(outcome) => outcome.label(),
            Err(error) => error.label(),
        };
        self.metrics.record_psp_call(label);
        if let Err(error) = &outcome {
            warn!(payment_id = %payment.id, %error, "PSP outcome unknown, payment stays pending");
        }
        outcome
    }
}
