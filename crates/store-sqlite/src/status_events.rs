//! Signed status updates, applied once per (payment, event id).

use oncepay_domain::payment::Transition;
use oncepay_domain::{PaymentId, PaymentStatus};
use oncepay_engine::{RecordedUpdate, StoreError, UpdateOutcome};
use rusqlite::{Connection, params};

use crate::{execute, query_one, rows};

/// Applies the update, or answers a repeated event as its first delivery.
pub fn apply(
    connection: &Connection,
    payment_id: &PaymentId,
    event_id: &str,
    status: PaymentStatus,
    now: i64,
) -> Result<UpdateOutcome, StoreError> {
    let Some(mut payment) = rows::load(connection, payment_id.as_str())? else {
        return Ok(UpdateOutcome::NotFound);
    };
    if let Some(first) = recorded(connection, payment_id, event_id)? {
        return Ok(UpdateOutcome::Repeated { payment, first });
    }
    let cause = format!("status update {event_id}");
    let (outcome, recorded) = match payment.apply(status, cause, now) {
        Ok(Transition::Moves) => {
            rows::update_status(connection, &payment, None)?;
            (UpdateOutcome::Applied(payment), RecordedUpdate::Applied)
        }
        Ok(Transition::AlreadyThere) => {
            (UpdateOutcome::Unchanged(payment), RecordedUpdate::Unchanged)
        }
        Err(_) => (UpdateOutcome::Conflict(payment), RecordedUpdate::Conflict),
    };
    execute(
        connection,
        "INSERT INTO status_events (payment_id, event_id, outcome, received_at)
             VALUES (?1, ?2, ?3, ?4)",
        params![payment_id.as_str(), event_id, recorded.as_str(), now],
    )?;
    Ok(outcome)
}

fn recorded(
    connection: &Connection,
    payment_id: &PaymentId,
    event_id: &str,
) -> Result<Option<RecordedUpdate>, StoreError> {
    let label: Option<String> = query_one(
        connection,
        "SELECT outcome FROM status_events WHERE payment_id = ?1 AND event_id = ?2",
        params![payment_id.as_str(), event_id],
        |row| row.get(0),
    )?;
    label
        .map(|label| {
            RecordedUpdate::parse(&label)
                .ok_or_else(|| StoreError::Corrupt(format!("status event outcome {label:?}")))
        })
        .transpose()
}
