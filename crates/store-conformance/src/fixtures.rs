//! Values the cases build claims and settlements from.

use std::sync::Arc;

use oncepay_domain::{
    IdempotencyKey, MerchantId, Payment, PaymentRequest, PaymentStatus, RequestFingerprint,
};
use oncepay_engine::{Claim, Lease, Settlement};

/// A fixed "now", so every backend sees the same times.
pub const NOW: i64 = 1_700_000_000_000;
/// How long the fixtures' leases last.
pub const LEASE_MS: i64 = 1000;

pub fn merchant(name: &str) -> MerchantId {
    MerchantId::parse(name).unwrap()
}

pub fn key(text: &str) -> IdempotencyKey {
    IdempotencyKey::parse(text.as_bytes()).unwrap()
}

pub fn fingerprint(amount: i64) -> RequestFingerprint {
    RequestFingerprint::of(
        "POST",
        "/v1/payments",
        &serde_json::json!({ "amount": amount }),
    )
}

pub fn payment(merchant_name: &str, now: i64) -> Payment {
    let body = serde_json::json!({
        "amount": 1000, "currency": "EUR", "payment_method": "pm_card_ok",
        "description": "conformance", "metadata": {"order": "42"},
    });
    Payment::pending(
        merchant(merchant_name),
        PaymentRequest::parse(&body).unwrap(),
        now,
    )
}

/// A claim by `owner` on `merchant`'s `key` for a body of `amount`.
pub fn claim_for(merchant_name: &str, text: &str, amount: i64, owner: &str, now: i64) -> Claim {
    Claim {
        merchant: merchant(merchant_name),
        key: key(text),
        fingerprint: Some(fingerprint(amount)),
        lease: Lease {
            owner: owner.to_owned(),
            until_millis: now + LEASE_MS,
        },
        new_payment: Some(payment(merchant_name, now)),
        now_millis: now,
        expires_at_millis: now + 60_000,
    }
}

/// A claim of the `default` merchant.
pub fn claim(text: &str, amount: i64, owner: &str, now: i64) -> Claim {
    claim_for("default", text, amount, owner, now)
}

/// The end of `owner`'s attempt on `default`'s `key`.
pub fn settlement(
    text: &str,
    owner: &str,
    claimed: &Payment,
    to: Option<PaymentStatus>,
) -> Settlement {
    Settlement {
        merchant: merchant("default"),
        key: key(text),
        lease_owner: owner.to_owned(),
        payment: Arc::new(claimed.clone()),
        change: to.map(|status| (status, "psp: answered".to_owned())),
        now_millis: NOW + 10,
    }
}
