//! The request fingerprint: what makes a retry the same request.
//!
//! It covers the method, the path and the body's meaning. The body is parsed
//! and written back in canonical form (object keys sorted, no white space,
//! strings with their escapes resolved), so a client that re-serialises its
//! JSON differently between retries still sends the same request.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// SHA-256 over method, path and canonical body, as 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestFingerprint(String);

impl RequestFingerprint {
    /// Fingerprints a request whose body has already been parsed.
    pub fn of(method: &str, path: &str, body: &Value) -> Self {
        let canonical = canonical_json(body);
        let mut hasher = Sha256::new();
        for part in [method.as_bytes(), path.as_bytes(), canonical.as_bytes()] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part);
        }
        Self(hex::encode(hasher.finalize()))
    }

    /// Rebuilds a fingerprint read back from a store.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    /// The fingerprint as hex.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Writes a JSON value with sorted object keys and no white space.
///
/// Keys are sorted here, not left to `serde_json`'s map: another crate in a
/// build may turn on its `preserve_order` feature, which would make the map
/// keep the client's key order and the fingerprint depend on it.
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (index, (key, item)) in entries.into_iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                out.push_str(&Value::from(key.as_str()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fingerprint(body: &str) -> RequestFingerprint {
        let value: Value = serde_json::from_str(body).expect("test body is JSON");
        RequestFingerprint::of("POST", "/v1/payments", &value)
    }

    #[test]
    fn key_order_and_white_space_do_not_change_the_fingerprint() {
        let a = fingerprint(r#"{"amount":1000,"currency":"EUR","metadata":{"a":"1","b":"2"}}"#);
        let b = fingerprint(
            "{ \"metadata\" : {\"b\":\"2\", \"a\":\"1\"},\n \"currency\":\"EUR\", \"amount\": 1000 }",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn escaped_and_plain_spellings_of_a_string_are_the_same() {
        let plain = fingerprint(r#"{"currency":"EUR"}"#);
        let escaped = fingerprint(r#"{"currency":"\u0045UR"}"#);
        assert_eq!(plain, escaped);
    }

    #[test]
    fn a_different_amount_or_path_changes_the_fingerprint() {
        let body: Value = serde_json::json!({"amount": 1000});
        let other: Value = serde_json::json!({"amount": 1001});
        let base = RequestFingerprint::of("POST", "/v1/payments", &body);
        assert_ne!(base, RequestFingerprint::of("POST", "/v1/payments", &other));
        assert_ne!(base, RequestFingerprint::of("POST", "/v1/payment", &body));
    }

    proptest! {
        #[test]
        fn reordering_the_keys_of_an_object_never_changes_the_fingerprint(
            entries in proptest::collection::btree_map("[a-z]{1,8}", "[ -~]{0,12}", 0..10)
        ) {
            let forward: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), Value::from(v.as_str())))
                .collect();
            let mut backward = forward.clone();
            backward.reverse();
            let a = fingerprint(&format!("{{{}}}", forward.join(",")));
            let b = fingerprint(&format!("{{ {} }}", backward.join(" , ")));
            prop_assert_eq!(a, b);
        }
    }
}
