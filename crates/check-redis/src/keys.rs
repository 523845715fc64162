//! Redis key names: where a merchant's idempotency key lives.
//!
//! A name is `<prefix>{<merchant>:<digest>}`, the digest being the SHA-256 of
//! the idempotency key in hex. The key itself never appears in Redis, where
//! `MONITOR`, slow logs and key scans would show it. The braces are a Redis
//! Cluster hash tag: every name one request uses lands in the same slot, so
//! its scripts may touch them together.

use oncepay_engine::{CheckError, KeyScope};
use sha2::{Digest, Sha256};

/// Builds the Redis key names of one oncepay deployment.
#[derive(Debug, Clone)]
pub(crate) struct KeyNames {
    prefix: String,
}

impl KeyNames {
    /// Accepts any prefix without braces: a brace in the prefix would become
    /// the hash tag and pile every key onto one cluster slot.
    pub(crate) fn new(prefix: &str) -> Result<Self, CheckError> {
        if prefix.contains(['{', '}']) {
            return Err(CheckError(
                "the Redis key prefix must not contain '{' or '}'".to_owned(),
            ));
        }
        Ok(Self {
            prefix: prefix.to_owned(),
        })
    }

    /// The name of the entry that marks or answers `scope`.
    pub(crate) fn entry(&self, scope: &KeyScope) -> String {
        let digest = hex::encode(Sha256::digest(scope.key.as_str().as_bytes()));
        format!("{}{{{}:{digest}}}", self.prefix, scope.merchant)
    }
}

#[cfg(test)]
mod tests {
    use oncepay_domain::{IdempotencyKey, MerchantId};

    use super::*;

    fn scope(merchant: &str, key: &str) -> KeyScope {
        KeyScope {
            merchant: MerchantId::parse(merchant).expect("a valid merchant"),
            key: IdempotencyKey::parse(key.as_bytes()).expect("a valid key"),
        }
    }

    #[test]
    fn names_hide_the_key_and_carry_a_hash_tag() {
        let names = KeyNames::new("oncepay:").expect("a valid prefix");

        let name = names.entry(&scope("acme", "order-17"));

        assert!(name.starts_with("oncepay:{acme:"));
        assert!(name.ends_with('}'));
        assert!(!name.contains("order-17"));
    }

    #[test]
    fn the_same_key_of_two_merchants_gets_two_names() {
        let names = KeyNames::new("p:").expect("a valid prefix");

        let ours = names.entry(&scope("acme", "k"));
        let theirs = names.entry(&scope("globex", "k"));

        assert_ne!(ours, theirs);
    }

    #[test]
    fn prefixes_with_braces_are_refused() {
        assert!(KeyNames::new("oncepay{x}:").is_err());
        assert!(KeyNames::new("oncepay}").is_err());
    }
}
