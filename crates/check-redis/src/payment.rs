//! Payments as JSON inside Redis entries.
//!
//! The domain crate stays free of storage formats, so this crate keeps its
//! own mirror of [`Payment`] and checks every field on the way back in: an
//! entry that no longer parses is an error, and the engine asks the durable
//! store instead.

use std::collections::BTreeMap;

use oncepay_domain::{
    Amount, Currency, MerchantId, Money, Payment, PaymentId, PaymentStatus, PspKey, StatusChange,
};
use serde::{Deserialize, Serialize};

/// A payment as it is written into an answer entry.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct StoredPayment {
    id: String,
    merchant: String,
    amount: i64,
    currency: String,
    status: PaymentStatus,
    payment_method: String,
    description: Option<String>,
    metadata: BTreeMap<String, String>,
    psp_key: String,
    created_at_millis: i64,
    updated_at_millis: i64,
    history: Vec<StatusChange>,
}

impl From<&Payment> for StoredPayment {
    fn from(payment: &Payment) -> Self {
        Self {
            id: payment.id.as_str().to_owned(),
            merchant: payment.merchant.as_str().to_owned(),
            amount: payment.money.amount.minor_units(),
            currency: payment.money.currency.code().to_owned(),
            status: payment.status,
            payment_method: payment.payment_method.clone(),
            description: payment.description.clone(),
            metadata: payment.metadata.clone(),
            psp_key: payment.psp_key.as_str().to_owned(),
            created_at_millis: payment.created_at_millis,
            updated_at_millis: payment.updated_at_millis,
            history: payment.history.clone(),
        }
    }
}

impl StoredPayment {
    /// Rebuilds the domain payment, naming the first field that is invalid.
    pub(crate) fn into_payment(self) -> Result<Payment, String> {
        let invalid = |field: &str| format!("the stored payment has an invalid {field}");
        let id = PaymentId::parse(&self.id).ok_or_else(|| invalid("id"))?;
        let merchant = MerchantId::parse(&self.merchant).ok_or_else(|| invalid("merchant"))?;
        let amount = Amount::parse(self.amount).map_err(|_| invalid("amount"))?;
        let currency = Currency::parse(&self.currency).map_err(|_| invalid("currency"))?;

        Ok(Payment {
            id,
            merchant,
            money: Money { amount, currency },
            status: self.status,
            payment_method: self.payment_method,
            description: self.description,
            metadata: self.metadata,
            psp_key: PspKey::from_stored(self.psp_key),
            created_at_millis: self.created_at_millis,
            updated_at_millis: self.updated_at_millis,
            history: self.history,
        })
    }
}
