//! Stored documents: the shapes kept in each collection and the mapping
//! between them and the domain types.
//!
//! Times are `i64` unix milliseconds, as the engine hands them over; the one
//! BSON date is `purge_after`, because a TTL index reads nothing else.

use std::collections::BTreeMap;

use mongodb::bson::{self, Bson, DateTime};
use oncepay_domain::{
    Amount, Currency, IdempotencyKey, MerchantId, Money, Payment, PaymentId, PaymentStatus, PspKey,
    StatusChange,
};
use oncepay_engine::StoreError;
use serde::{Deserialize, Serialize};

/// Idempotency records, one per (merchant, key).
pub const RECORDS: &str = "idempotency_records";
/// Payments, kept for good.
pub const PAYMENTS: &str = "payments";
/// One document per merchant holding the last list position handed out.
pub const COUNTERS: &str = "payment_counters";
/// What each signed status event did, once per (payment, event id).
pub const STATUS_EVENTS: &str = "status_events";

/// A payment as stored, without its list position.
///
/// Also embedded in the idempotency record that creates it, so whoever finds
/// the record before the payment can finish inserting it (see `claims`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PaymentDoc {
    #[serde(rename = "_id")]
    pub id: String,
    pub merchant: String,
    pub idempotency_key: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub payment_method: String,
    pub description: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub psp_key: String,
    pub created_at: i64,
    pub updated_at: i64,
    /// When the PSP was last asked about it.
    pub checked_at: i64,
    pub history: Vec<StatusChange>,
    /// The status event that made it final, if one did; lets a repeated
    /// event be recognised even when its own record was never written.
    pub final_event: Option<String>,
    /// The retention of the key guarding it, so a status update can set the
    /// record's purge date without reading the record.
    pub retention_ms: i64,
}

/// A payment in the payments collection: the document plus its position in
/// the merchant's list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListedPayment {
    /// Strictly increasing per merchant; the list cursor.
    pub seq: i64,
    #[serde(flatten)]
    pub payment: PaymentDoc,
}

/// An idempotency record.
///
/// `payment_id` is `None` for a key that was issued and never used. While
/// `lease_owner` is set, that attempt alone may work on the payment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordDoc {
    pub merchant: String,
    pub key: String,
    pub fingerprint: Option<String>,
    pub payment_id: Option<String>,
    /// The payment as first recorded; see [`PaymentDoc`].
    pub payment: Option<PaymentDoc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
    /// One retention period: how long the record outlives its payment's
    /// last change.
    pub retention_ms: i64,
    /// Read by the TTL index; absent while the record guards a payment that
    /// is not final.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purge_after: Option<DateTime>,
}

/// What the first delivery of a status event did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusEventDoc {
    pub payment_id: String,
    pub event_id: String,
    pub outcome: String,
    pub received_at: i64,
}

impl PaymentDoc {
    /// The document for a new payment guarded by `key`.
    pub fn new(payment: &Payment, key: &IdempotencyKey, retention_ms: i64) -> Self {
        Self {
            id: payment.id.as_str().to_owned(),
            merchant: payment.merchant.as_str().to_owned(),
            idempotency_key: key.as_str().to_owned(),
            amount: payment.money.amount.minor_units(),
            currency: payment.money.currency.code().to_owned(),
            status: payment.status.as_str().to_owned(),
            payment_method: payment.payment_method.clone(),
            description: payment.description.clone(),
            metadata: payment.metadata.clone(),
            psp_key: payment.psp_key.as_str().to_owned(),
            created_at: payment.created_at_millis,
            updated_at: payment.updated_at_millis,
            checked_at: payment.created_at_millis,
            history: payment.history.clone(),
            final_event: None,
            retention_ms,
        }
    }

    /// Reads the document back into a domain payment.
    pub fn to_payment(&self) -> Result<Payment, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("payment {}: {what}", self.id));
        Ok(Payment {
            id: PaymentId::from_stored(self.id.clone()),
            merchant: MerchantId::parse(&self.merchant).ok_or_else(|| corrupt("merchant"))?,
            money: Money {
                amount: Amount::parse(self.amount).map_err(|_| corrupt("amount"))?,
                currency: Currency::parse(&self.currency).map_err(|_| corrupt("currency"))?,
            },
            status: self.status()?,
            payment_method: self.payment_method.clone(),
            description: self.description.clone(),
            metadata: self.metadata.clone(),
            psp_key: PspKey::from_stored(self.psp_key.clone()),
            created_at_millis: self.created_at,
            updated_at_millis: self.updated_at,
            history: self.history.clone(),
        })
    }

    /// The stored status.
    pub fn status(&self) -> Result<PaymentStatus, StoreError> {
        PaymentStatus::parse(&self.status)
            .ok_or_else(|| StoreError::Corrupt(format!("payment {}: status", self.id)))
    }
}

/// Converts a value for use inside an update document.
pub fn to_bson<T: Serialize>(value: &T) -> Result<Bson, StoreError> {
    bson::to_bson(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

#[cfg(test)]
mod tests {
    use oncepay_domain::RequestFingerprint;

    use super::*;

    fn payment() -> Payment {
        Payment {
            id: PaymentId::generate(),
            merchant: MerchantId::parse("acme").expect("a valid merchant"),
            money: Money {
                amount: Amount::parse(1250).expect("a valid amount"),
                currency: Currency::parse("EUR").expect("a known currency"),
            },
            status: PaymentStatus::Pending,
            payment_method: "pm_card_ok".to_owned(),
            description: None,
            metadata: BTreeMap::from([("order".to_owned(), "42".to_owned())]),
            psp_key: PspKey::generate(),
            created_at_millis: 7,
            updated_at_millis: 7,
            history: vec![StatusChange {
                status: PaymentStatus::Pending,
                at_millis: 7,
                cause: "created".to_owned(),
            }],
        }
    }

    #[test]
    fn a_listed_payment_round_trips_through_bson() {
        let original = payment();
        let key = IdempotencyKey::parse(b"k1").expect("a valid key");
        let listed = ListedPayment {
            seq: 3,
            payment: PaymentDoc::new(&original, &key, 60_000),
        };

        let stored = bson::to_document(&listed).expect("serialises");
        let read: ListedPayment = bson::from_document(stored).expect("deserialises");

        assert_eq!(read.seq, 3);
        assert_eq!(read.payment.to_payment().expect("valid"), original);
    }

    #[test]
    fn a_record_without_a_purge_date_leaves_the_field_out() {
        let fingerprint = RequestFingerprint::from_stored("ab".to_owned());
        let record = RecordDoc {
            merchant: "acme".to_owned(),
            key: "k1".to_owned(),
            fingerprint: Some(fingerprint.as_str().to_owned()),
            payment_id: None,
            payment: None,
            lease_owner: None,
            lease_until: None,
            created_at: 1,
            expires_at: 2,
            retention_ms: 1,
            purge_after: None,
        };

        let stored = bson::to_document(&record).expect("serialises");

        assert!(!stored.contains_key("purge_after"));
        assert_eq!(stored.get("payment_id"), Some(&Bson::Null));
    }

    #[test]
    fn an_unknown_status_is_corrupt() {
        let key = IdempotencyKey::parse(b"k1").expect("a valid key");
        let mut doc = PaymentDoc::new(&payment(), &key, 1);
        doc.status = "refunded".to_owned();

        assert!(matches!(doc.to_payment(), Err(StoreError::Corrupt(_))));
    }
}
