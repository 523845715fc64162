//! Identifiers oncepay makes up: payment ids and the keys it hands the PSP.

use std::fmt;

use rand::RngCore;

/// Random bits in a payment id or a PSP key.
const ID_RANDOM_BYTES: usize = 10;

/// Random bits in an issued idempotency key: the contract asks for at least
/// 122, as many as a version 4 UUID holds.
const ISSUED_KEY_RANDOM_BYTES: usize = 16;

/// Lower-case hex digits behind a prefix: the creation time in milliseconds
/// (48 bits, 12 digits), then `random_bytes` random bytes (at most 16).
///
/// Leading with the time keeps ids created together next to each other in
/// the stores' indexes, so a new payment touches the last index page rather
/// than a random one (and durable commits write a few pages, not dozens).
/// The random bits keep them unguessable; that an id tells when it was made
/// is no secret, since the payment says so itself.
fn time_ordered_token(prefix: &str, random_bytes: usize) -> String {
    let millis = crate::time_fmt::now_millis().clamp(0, (1 << 48) - 1) as u64;
    let mut bytes = [0u8; 6 + ISSUED_KEY_RANDOM_BYTES];
    let bytes = &mut bytes[..6 + random_bytes];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    rand::thread_rng().fill_bytes(&mut bytes[6..]);
    format!("{prefix}{}", hex::encode(bytes))
}

/// A payment's public id, `pay_` followed by 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PaymentId(String);

impl PaymentId {
    /// A fresh, unguessable id: the time and 80 random bits.
    pub fn generate() -> Self {
        Self(time_ordered_token("pay_", ID_RANDOM_BYTES))
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
        Self(time_ordered_token("psp_", ID_RANDOM_BYTES))
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
/// `idk_`, 12 hex digits of time and 32 of randomness (128 bits).
pub fn issue_key_text() -> String {
    time_ordered_token("idk_", ISSUED_KEY_RANDOM_BYTES)
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

    #[test]
    fn an_issued_key_holds_128_random_bits_after_its_time() {
        let keys: Vec<String> = (0..64).map(|_| issue_key_text()).collect();

        for key in &keys {
            let digits = key.strip_prefix("idk_").expect("the prefix");
            assert_eq!(digits.len(), 12 + 32, "{key}");
            assert!(digits.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        }
        // Keys made within the same few milliseconds share their time
        // digits; what tells them apart is 32 digits of randomness.
        let random_parts: std::collections::HashSet<&str> =
            keys.iter().map(|key| &key[4 + 12..]).collect();
        assert_eq!(random_parts.len(), keys.len());
    }
}
