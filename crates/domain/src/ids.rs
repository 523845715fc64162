//! Identifiers oncepay makes up: payment ids and the keys it hands the PSP.

use std::fmt;

use rand::RngCore;

/// 32 lower-case hex digits behind a prefix: the creation time in
/// milliseconds (48 bits), then 80 random bits.
///
/// Leading with the time keeps ids created together next to each other in
/// the stores' indexes, so a new payment touches the last index page rather
/// than a random one (and durable commits write a few pages, not dozens).
/// 80 random bits keep ids unguessable; that an id tells when its payment
/// was created is no secret, since the payment says so itself.
fn time_ordered_token(prefix: &str) -> String {
    let millis = crate::time_fmt::now_millis().clamp(0, (1 << 48) - 1) as u64;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    rand::thread_rng().fill_bytes(&mut bytes[6..]);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A payment's public id, `pay_` followed by 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentId(String);

impl PaymentId {
    /// A fresh, unguessable id.
    pub fn generate() -> Self {
        Self(time_ordered_token("pay_"))
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
        Self(time_ordered_token("psp_"))
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
/// `idk_`, the time and 80 random bits.
pub fn issue_key_text() -> String {
    time_ordered_token("idk_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_shape_and_sort_by_creation() {
        let earlier = PaymentId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let later = PaymentId::generate();
        assert!(PaymentId::parse(earlier.as_str()).is_some());
        assert!(earlier.as_str() < later.as_str(), "{earlier} then {later}");
        assert_ne!(
            PspKey::generate(),
            PspKey::generate(),
            "random part differs"
        );
    }
}
