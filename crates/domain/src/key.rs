//! The `Idempotency-Key` header, in both of the forms clients send.
//!
//! Most clients send the key bare (`Idempotency-Key: 8e03...`); the IETF
//! draft spells it as an RFC 8941 sf-string (`Idempotency-Key: "8e03..."`).
//! Both spell the same key, so a client may switch forms between retries.

use std::fmt;

use thiserror::Error;

/// Longest key accepted, in characters.
pub const MAX_KEY_LEN: usize = 255;

/// A valid idempotency key: 1 to 255 printable ASCII characters, with spaces
/// allowed only inside.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

/// Why a header did not hold a usable key.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The header is absent.
    #[error("the Idempotency-Key header is required")]
    Missing,
    /// The header was sent more than once.
    #[error("the Idempotency-Key header must be sent once")]
    Repeated,
    /// The header is present but holds no characters.
    #[error("the Idempotency-Key header is empty")]
    Empty,
    /// More than 255 characters.
    #[error("the idempotency key is longer than 255 characters")]
    TooLong,
    /// A character outside printable ASCII, a leading or trailing space, or a
    /// broken sf-string.
    #[error("the idempotency key must be printable ASCII, bare or as a quoted string")]
    Malformed,
}

impl IdempotencyKey {
    /// Parses the values of every `Idempotency-Key` header of a request.
    pub fn from_header_values(values: &[&[u8]]) -> Result<Self, KeyError> {
        match values {
            [] => Err(KeyError::Missing),
            [one] => Self::parse(one),
            _ => Err(KeyError::Repeated),
        }
    }

    /// Parses one header value, bare or as an sf-string.
    pub fn parse(raw: &[u8]) -> Result<Self, KeyError> {
        let text = match raw.first() {
            None => return Err(KeyError::Empty),
            Some(b'"') => unquote_sf_string(raw)?,
            Some(_) => raw.to_vec(),
        };
        Self::from_text(text)
    }

    fn from_text(text: Vec<u8>) -> Result<Self, KeyError> {
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        if text.len() > MAX_KEY_LEN {
            return Err(KeyError::TooLong);
        }
        let printable = text.iter().all(|b| (0x20..=0x7e).contains(b));
        let edges_solid = text.first() != Some(&b' ') && text.last() != Some(&b' ');
        if !(printable && edges_solid) {
            return Err(KeyError::Malformed);
        }
        String::from_utf8(text)
            .map(Self)
            .map_err(|_| KeyError::Malformed)
    }

    /// Builds a key issued by oncepay itself, which is valid by construction.
    pub fn issued(text: String) -> Self {
        Self(text)
    }

    /// Rebuilds a key read back from a store.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Removes the quotes and escapes of an RFC 8941 sf-string.
///
/// Only `\"` and `\\` are escapes; anything else after a backslash, an
/// unescaped quote inside, or a missing closing quote is malformed.
fn unquote_sf_string(raw: &[u8]) -> Result<Vec<u8>, KeyError> {
    let inner = raw
        .strip_prefix(b"\"")
        .and_then(|rest| rest.strip_suffix(b"\""))
        .ok_or(KeyError::Malformed)?;
    let mut out = Vec::with_capacity(inner.len());
    let mut bytes = inner.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b'\\' => match bytes.next() {
                Some(&escaped @ (b'"' | b'\\')) => out.push(escaped),
                _ => return Err(KeyError::Malformed),
            },
            b'"' => return Err(KeyError::Malformed),
            _ => out.push(b),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_bare_key_and_its_sf_string_spell_the_same_key() {
        let bare = IdempotencyKey::parse(b"8e03-abc").expect("bare key");
        let quoted = IdempotencyKey::parse(b"\"8e03-abc\"").expect("quoted key");
        assert_eq!(bare, quoted);
    }

    #[test]
    fn escapes_inside_an_sf_string_are_removed() {
        let key = IdempotencyKey::parse(br#""a\"b\\c""#).expect("escaped key");
        assert_eq!(key.as_str(), r#"a"b\c"#);
    }

    #[test]
    fn broken_sf_strings_are_malformed() {
        for raw in [&b"\"open"[..], b"\"a\\nb\"", b"\"a\"b\"", b"\""] {
            assert_eq!(
                IdempotencyKey::parse(raw),
                Err(KeyError::Malformed),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn empty_too_long_and_unprintable_keys_are_rejected() {
        assert_eq!(IdempotencyKey::parse(b""), Err(KeyError::Empty));
        assert_eq!(IdempotencyKey::parse(b"\"\""), Err(KeyError::Empty));
        assert_eq!(IdempotencyKey::parse(&[b'a'; 256]), Err(KeyError::TooLong));
        assert_eq!(IdempotencyKey::parse(b"a\tb"), Err(KeyError::Malformed));
        assert_eq!(
            IdempotencyKey::parse(b"caf\xc3\xa9"),
            Err(KeyError::Malformed)
        );
        assert_eq!(
            IdempotencyKey::parse(b"\" padded \""),
            Err(KeyError::Malformed)
        );
    }

    #[test]
    fn a_key_of_exactly_255_characters_is_accepted() {
        assert!(IdempotencyKey::parse(&[b'k'; 255]).is_ok());
    }

    #[test]
    fn a_missing_or_repeated_header_is_rejected() {
        assert_eq!(
            IdempotencyKey::from_header_values(&[]),
            Err(KeyError::Missing)
        );
        let twice: [&[u8]; 2] = [b"a", b"a"];
        assert_eq!(
            IdempotencyKey::from_header_values(&twice),
            Err(KeyError::Repeated)
        );
    }

    fn sf_quote(key: &str) -> String {
        format!("\"{}\"", key.replace('\\', "\\\\").replace('"', "\\\""))
    }

    proptest! {
        #[test]
        fn every_valid_key_parses_the_same_bare_and_quoted(
            key in "[!-~]([ -~]{0,253}[!-~])?"
        ) {
            let bare = IdempotencyKey::parse(key.as_bytes());
            let quoted = IdempotencyKey::parse(sf_quote(&key).as_bytes());
            if key.starts_with('"') {
                // A bare value starting with a quote is read as an sf-string.
                prop_assert!(quoted.is_ok());
            } else {
                prop_assert_eq!(bare.clone(), quoted);
                let parsed = bare.expect("valid");
                prop_assert_eq!(parsed.as_str(), key.as_str());
            }
        }

        #[test]
        fn parsing_never_panics_and_accepts_only_printable_ascii(raw in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(key) = IdempotencyKey::parse(&raw) {
                prop_assert!(key.as_str().bytes().all(|b| (0x20..=0x7e).contains(&b)));
                prop_assert!(!key.as_str().is_empty() && key.as_str().len() <= MAX_KEY_LEN);
            }
        }
    }
}
