//! Signed status updates from the PSP (webhooks), once per event id.

use oncepay_domain::time_fmt::now_millis;
use oncepay_domain::{Payment, PaymentId, PaymentStatus};
use tracing::{info, warn};

use crate::engine::Engine;
use crate::store::{RecordedUpdate, StoreError, UpdateOutcome};

/// A status update whose signature has been checked.
#[derive(Debug, Clone)]
pub struct StatusUpdate {
    /// The payment it is about.
    pub payment_id: PaymentId,
    /// The PSP's id for this event; repeats are answered as before.
    pub event_id: String,
    /// The final status reported.
    pub status: PaymentStatus,
}

/// What the engine answers to a status update.
#[derive(Debug, Clone)]
pub enum StatusUpdateAnswer {
    /// The payment now has the reported status (moved now or before).
    Accepted(Payment),
    /// The payment is final in the other state.
    Conflict(Payment),
    /// No such payment.
    NotFound,
}

impl Engine {
    /// Applies a status update; a repeated event id changes nothing and gets
    /// the answer its first delivery got.
    pub async fn update_status(
        &self,
        update: StatusUpdate,
    ) -> Result<StatusUpdateAnswer, StoreError> {
        let outcome = self
            .store
            .apply_status_update(
                &update.payment_id,
                &update.event_id,
                update.status,
                now_millis(),
            )
            .await?;
        let payment_id = &update.payment_id;
        Ok(match outcome {
            UpdateOutcome::Applied(payment) => {
                info!(%payment_id, status = payment.status.as_str(), "status update applied");
                StatusUpdateAnswer::Accepted(payment)
            }
            UpdateOutcome::Unchanged(payment) => StatusUpdateAnswer::Accepted(payment),
            UpdateOutcome::Conflict(payment) => {
                warn!(%payment_id, status = payment.status.as_str(), "status update contradicts a final status");
                StatusUpdateAnswer::Conflict(payment)
            }
            UpdateOutcome::Repeated { payment, first } => match first {
                RecordedUpdate::Conflict => StatusUpdateAnswer::Conflict(payment),
                RecordedUpdate::Applied | RecordedUpdate::Unchanged => {
                    StatusUpdateAnswer::Accepted(payment)
                }
            },
            UpdateOutcome::NotFound => StatusUpdateAnswer::NotFound,
        })
    }
}
