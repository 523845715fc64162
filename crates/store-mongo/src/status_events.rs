//! Signed status updates, applied once per (payment, event id).
//!
//! Up to three writes, in this order: move the payment (only while it is
//! pending, naming the event in `final_event`), record what the event did
//! (unique per payment and event id), then let the TTL index have the
//! idempotency record. The payment is the one that matters, and it names
//! the event that moved it in the same write, so a crash before the event
//! is recorded is repaired by the PSP's next delivery of that event: it
//! finds its id on the payment and is answered as a repeat. A crash before
//! the purge date is set leaves the record to the reaper.

use mongodb::bson::doc;
use oncepay_domain::payment::Transition;
use oncepay_domain::{Payment, PaymentId, PaymentStatus};
use oncepay_engine::{RecordedUpdate, StoreError, UpdateOutcome};

use crate::MongoStore;
use crate::documents::{PaymentDoc, StatusEventDoc};
use crate::errors::{Refusal, refusal, store_error};
use crate::payments::{self, ATTEMPTS};
use crate::retention::mark_purgeable;

/// One status event as delivered.
struct Delivery<'a> {
    payment_id: &'a str,
    event_id: &'a str,
    status: PaymentStatus,
    now: i64,
}

/// Applies the update, or answers a repeated event as its first delivery.
pub async fn apply(
    store: &MongoStore,
    payment_id: &PaymentId,
    event_id: &str,
    status: PaymentStatus,
    now: i64,
) -> Result<UpdateOutcome, StoreError> {
    let delivery = Delivery {
        payment_id: payment_id.as_str(),
        event_id,
        status,
        now,
    };
    for _ in 0..ATTEMPTS {
        if let Some(outcome) = attempt(store, &delivery).await? {
            return Ok(outcome);
        }
    }
    Err(StoreError::Unavailable(
        "a status update kept racing other writers".to_owned(),
    ))
}

/// One pass; `None` when another writer changed the payment in between.
async fn attempt(
    store: &MongoStore,
    delivery: &Delivery<'_>,
) -> Result<Option<UpdateOutcome>, StoreError> {
    if let Some(first) = first_delivery(store, delivery).await? {
        let payment = payments::load_named(store, delivery.payment_id).await?;
        return repeated(&payment, first).map(Some);
    }
    let Some(stored) = payments::load(store, delivery.payment_id).await? else {
        return Ok(Some(UpdateOutcome::NotFound));
    };
    if stored.final_event.as_deref() == Some(delivery.event_id) {
        // An earlier delivery moved it and then failed to record the event
        // (or is about to): record it now and answer as a repeat.
        record(store, delivery, RecordedUpdate::Applied).await?;
        return repeated(&stored, RecordedUpdate::Applied).map(Some);
    }
    let mut payment = stored.to_payment()?;
    let cause = format!("status update {}", delivery.event_id);
    let (outcome, recorded) = match payment.apply(delivery.status, cause, delivery.now) {
        Ok(Transition::Moves) => return move_payment(store, delivery, &payment).await,
        Ok(Transition::AlreadyThere) => {
            (UpdateOutcome::Unchanged(payment), RecordedUpdate::Unchanged)
        }
        Err(_) => (UpdateOutcome::Conflict(payment), RecordedUpdate::Conflict),
    };
    if let Some(first) = record(store, delivery, recorded).await? {
        // A concurrent delivery of the same event recorded it first.
        return repeated(&stored, first).map(Some);
    }
    Ok(Some(outcome))
}

/// Writes the move `payment` holds, then the event, then the purge date (see
/// the module docs for the order); `None` when the payment turned final
/// meanwhile.
async fn move_payment(
    store: &MongoStore,
    delivery: &Delivery<'_>,
    payment: &Payment,
) -> Result<Option<UpdateOutcome>, StoreError> {
    let extra = doc! { "final_event": delivery.event_id };
    let Some(moved) = payments::make_final(store, payment, extra).await? else {
        return Ok(None);
    };
    record(store, delivery, RecordedUpdate::Applied).await?;
    let (merchant, key) = (&moved.merchant, &moved.idempotency_key);
    mark_purgeable(store, merchant, key, &moved.id, moved.retention_ms).await?;
    Ok(Some(UpdateOutcome::Applied(moved.to_payment()?)))
}

fn repeated(payment: &PaymentDoc, first: RecordedUpdate) -> Result<UpdateOutcome, StoreError> {
    let payment = payment.to_payment()?;
    Ok(UpdateOutcome::Repeated { payment, first })
}

/// What this event did the first time, if it was seen before.
async fn first_delivery(
    store: &MongoStore,
    delivery: &Delivery<'_>,
) -> Result<Option<RecordedUpdate>, StoreError> {
    let filter = doc! { "payment_id": delivery.payment_id, "event_id": delivery.event_id };
    let found = store
        .status_events
        .find_one(filter)
        .await
        .map_err(store_error)?;
    found
        .map(|event| {
            RecordedUpdate::parse(&event.outcome).ok_or_else(|| {
                StoreError::Corrupt(format!("status event outcome {:?}", event.outcome))
            })
        })
        .transpose()
}

/// Records what the event did; when a record exists already, returns what
/// that one says instead.
async fn record(
    store: &MongoStore,
    delivery: &Delivery<'_>,
    outcome: RecordedUpdate,
) -> Result<Option<RecordedUpdate>, StoreError> {
    let event = StatusEventDoc {
        payment_id: delivery.payment_id.to_owned(),
        event_id: delivery.event_id.to_owned(),
        outcome: outcome.as_str().to_owned(),
        received_at: delivery.now,
    };
    for _ in 0..ATTEMPTS {
        match store.status_events.insert_one(&event).await {
            Ok(_) => return Ok(None),
            Err(error) => match refusal(&error) {
                Some(Refusal::DuplicateKey) => return first_delivery(store, delivery).await,
                Some(Refusal::WriteConflict) => {}
                None => return Err(store_error(error)),
            },
        }
    }
    Err(StoreError::Unavailable(
        "recording a status event kept conflicting with other writers".to_owned(),
    ))
}
