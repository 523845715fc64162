//! Signed status updates, applied once per (payment, event id).

use oncepay_domain::payment::Transition;
use oncepay_domain::{PaymentId, PaymentStatus};
use oncepay_engine::{RecordedUpdate, StoreError, UpdateOutcome};
use sqlx::PgPool;

use crate::rows;
use crate::unavailable;

/// Applies the update, or answers a repeated event as its first delivery.
///
/// The payment row is locked first, so two deliveries of one event run one
/// after the other and the second finds the first's record.
pub async fn apply(
    pool: &PgPool,
    payment_id: &PaymentId,
    event_id: &str,
    status: PaymentStatus,
    now: i64,
) -> Result<UpdateOutcome, StoreError> {
    let mut tx = pool.begin().await.map_err(unavailable)?;
    let Some(mut payment) = rows::lock(&mut tx, payment_id.as_str()).await? else {
        return Ok(UpdateOutcome::NotFound);
    };
    let first: Option<String> = sqlx::query_scalar(
        "SELECT outcome FROM status_events WHERE payment_id = $1 AND event_id = $2",
    )
    .bind(payment_id.as_str())
    .bind(event_id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(unavailable)?;
    if let Some(label) = first {
        let first = RecordedUpdate::parse(&label)
            .ok_or_else(|| StoreError::Corrupt(format!("status event outcome {label:?}")))?;
        return Ok(UpdateOutcome::Repeated { payment, first });
    }
    let cause = format!("status update {event_id}");
    let (outcome, recorded) = match payment.apply(status, cause, now) {
        Ok(Transition::Moves) => {
            rows::update_status(&mut tx, &payment, None).await?;
            (UpdateOutcome::Applied(payment), RecordedUpdate::Applied)
        }
        Ok(Transition::AlreadyThere) => {
            (UpdateOutcome::Unchanged(payment), RecordedUpdate::Unchanged)
        }
        Err(_) => (UpdateOutcome::Conflict(payment), RecordedUpdate::Conflict),
    };
    sqlx::query(
        "INSERT INTO status_events (payment_id, event_id, outcome, received_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(payment_id.as_str())
    .bind(event_id)
    .bind(recorded.as_str())
    .bind(now)
    .execute(&mut *tx)
    .await
    .map_err(unavailable)?;
    tx.commit().await.map_err(unavailable)?;
    Ok(outcome)
}
