//! Merchant authentication: which merchant a request acts for.
//!
//! Merchants send `Authorization: Bearer <api key>`. Keys are kept only as
//! SHA-256 digests and a presented key is compared against every digest in
//! constant time, so neither memory dumps nor response timing give keys away.
//! In dev mode (no keys configured) every request is the `default`
//! merchant; the binary makes sure that mode only listens on loopback.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use oncepay_domain::MerchantId;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::Span;

use crate::error::ApiError;
use crate::state::AppState;

/// How merchants are recognised.
#[derive(Debug)]
pub enum Auth {
    /// No keys configured: every request is the `default` merchant.
    DevMode,
    /// Every `/v1` request needs a configured bearer key.
    ApiKeys(Vec<StoredKey>),
}

/// One merchant's API key, as a digest.
#[derive(Debug)]
pub struct StoredKey {
    merchant: MerchantId,
    digest: [u8; 32],
}

impl Auth {
    /// Requires bearer keys; the keys themselves are dropped after hashing.
    /// With no keys at all, every `/v1` request is refused.
    pub fn api_keys(keys: impl IntoIterator<Item = (MerchantId, SecretString)>) -> Self {
        let stored = keys
            .into_iter()
            .map(|(merchant, key)| StoredKey {
                merchant,
                digest: digest(key.expose_secret()),
            })
            .collect();
        Self::ApiKeys(stored)
    }

    /// True when every request is the `default` merchant.
    pub fn is_dev_mode(&self) -> bool {
        matches!(self, Self::DevMode)
    }

    /// The merchant holding `presented`, compared against every stored key.
    fn merchant_for(keys: &[StoredKey], presented: &str) -> Option<MerchantId> {
        let presented = digest(presented);
        let mut found = None;
        // No early exit: the time taken does not depend on which key matched.
        for stored in keys {
            if bool::from(stored.digest.ct_eq(&presented)) {
                found = Some(stored.merchant.clone());
            }
        }
        found
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The `<key>` of exactly one `Authorization: Bearer <key>` header.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return None;
    };
    let (scheme, token) = value.to_str().ok()?.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The merchant a request acts for; extracting it is the auth check.
#[derive(Debug, Clone)]
pub struct AuthenticatedMerchant(pub MerchantId);

impl FromRequestParts<AppState> for AuthenticatedMerchant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let merchant = match &state.auth {
            Auth::DevMode => MerchantId::default_merchant(),
            Auth::ApiKeys(keys) => {
                let token = bearer_token(&parts.headers).ok_or(ApiError::Unauthorized)?;
                Auth::merchant_for(keys, token).ok_or(ApiError::Unauthorized)?
            }
        };
        Span::current().record("merchant", merchant.as_str());
        Ok(Self(merchant))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merchant(name: &str) -> MerchantId {
        MerchantId::parse(name).expect("valid merchant")
    }

    #[test]
    fn a_key_finds_its_own_merchant_and_no_other() {
        let keys = [
            (merchant("acme"), SecretString::from("acme-key-0123456789")),
            (
                merchant("globex"),
                SecretString::from("globex-key-0123456789"),
            ),
        ];
        let Auth::ApiKeys(stored) = Auth::api_keys(keys) else {
            panic!("keys were given");
        };

        assert_eq!(
            Auth::merchant_for(&stored, "globex-key-0123456789"),
            Some(merchant("globex"))
        );
        assert_eq!(Auth::merchant_for(&stored, "acme-key-012345678"), None);
    }

    #[test]
    fn only_one_bearer_header_is_accepted() {
        let mut headers = HeaderMap::new();
        headers.append(header::AUTHORIZATION, "bearer k1".parse().expect("header"));
        assert_eq!(bearer_token(&headers), Some("k1"));

        headers.append(header::AUTHORIZATION, "Bearer k2".parse().expect("header"));
        assert_eq!(bearer_token(&headers), None);
    }
}
