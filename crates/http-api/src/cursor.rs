//! List cursors: opaque to clients, a position in the merchant's list to us.
//!
//! A cursor is `c1:<seq>` in unpadded base64url, where `seq` is the store's
//! position of the last payment on the page. The `c1` prefix versions the
//! format, so it can change later without misreading cursors already out.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oncepay_engine::Cursor;

use crate::error::ApiError;

/// The version prefix of the cursor text.
const PREFIX: &str = "c1:";

/// The text handed to clients as `next_cursor`.
pub fn encode(cursor: Cursor) -> String {
    URL_SAFE_NO_PAD.encode(format!("{PREFIX}{}", cursor.0))
}

/// Reads back a cursor made by [`encode`]; anything else is refused.
///
/// # Errors
///
/// [`ApiError::InvalidCursor`] for text oncepay did not hand out.
pub fn decode(text: &str) -> Result<Cursor, ApiError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| ApiError::InvalidCursor)?;
    let seq = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|text| text.strip_prefix(PREFIX))
        .filter(|seq| !seq.is_empty() && seq.bytes().all(|b| b.is_ascii_digit()))
        .ok_or(ApiError::InvalidCursor)?;
    seq.parse().map(Cursor).map_err(|_| ApiError::InvalidCursor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_the_position_it_was_made_from() {
        for seq in [0, 1, 42, i64::MAX] {
            let text = encode(Cursor(seq));
            assert!(
                decode(&text).is_ok_and(|cursor| cursor == Cursor(seq)),
                "{text}"
            );
        }
    }

    #[test]
    fn text_oncepay_did_not_hand_out_is_refused() {
        let forged = [
            String::new(),
            "not base64!".to_owned(),
            URL_SAFE_NO_PAD.encode("c2:5"),
            URL_SAFE_NO_PAD.encode("c1:"),
            URL_SAFE_NO_PAD.encode("c1:-5"),
            URL_SAFE_NO_PAD.encode("c1:+5"),
            URL_SAFE_NO_PAD.encode("c1:99999999999999999999"),
            format!("{}=", encode(Cursor(5))),
        ];
        for text in forged {
            assert!(decode(&text).is_err(), "{text}");
        }
    }
}
