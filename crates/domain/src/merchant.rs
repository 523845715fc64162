//! The merchant a request acts for.

use std::fmt;

/// Identifies a merchant; every key and payment is scoped to one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerchantId(String);

impl MerchantId {
    /// The merchant served in loopback dev mode, when no API keys are set.
    pub const DEFAULT: &'static str = "default";

    /// Accepts 1 to 64 characters of `[A-Za-z0-9_-]`.
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        valid.then(|| Self(raw.to_owned()))
    }

    /// The dev-mode merchant.
    pub fn default_merchant() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
