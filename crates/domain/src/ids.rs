//! Identifiers oncepay makes up: payment ids and the keys it hands the PSP.

use std::fmt;

use rand::RngCore;

/// 128 random bits as lower-case hex, behind a prefix.
fn random_token(prefix: &str) -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A payment's public id, `pay_` followed by 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentId(String);

impl PaymentId {
    /// A fresh, unguessable id.
    pub fn generate() -> Self {
        Self(random_token("pay_"))
    }

    /// Accepts an id as found in a URL path; only the shape is checked.
    pub fn parse(raw: &str) -> Option<Self> {
        let hex_part = raw.strip_prefix("pay_")?;
        let valid = hex_part.len() == 32 && hex_part.bytes().all(|b| b.is_ascii_hexdigit());
        valid.then(|| Self(raw.to_owned()))
    }

    /// Rebuilds an id read back from a store, which only holds valid ones.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PaymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The idempotency key oncepay sends to the PSP for one payment.
///
/// It is fixed when the payment is created and reused for every re-drive, so
/// the PSP can never charge the same payment twice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PspKey(String);

impl PspKey {
    /// A fresh key for a new payment.
    pub fn generate() -> Self {
        Self(random_token("psp_"))
    }

    /// Rebuilds a key read back from a store.
    pub fn from_stored(raw: String) -> Self {
        Self(raw)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A fresh idempotency key as issued by `POST /v1/idempotency-keys`:
/// `idk_` and 128 random bits.
pub fn issue_key_text() -> String {
    random_token("idk_")
}
