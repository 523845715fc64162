//! Timestamps as oncepay stores and shows them: unix milliseconds inside,
//! RFC 3339 in UTC outside.

use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// RFC 3339 in UTC, always with three fractional digits, so every timestamp
/// has the same width.
const FORMAT: &[FormatItem<'_>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Milliseconds since the unix epoch, now.
pub fn now_millis() -> i64 {
    let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
    i64::try_from(nanos / 1_000_000).unwrap_or(i64::MAX)
}

/// Formats unix milliseconds as RFC 3339 with millisecond precision.
///
/// Every answer shows a few timestamps, so years 0 to 9999 are written digit
/// by digit (the general formatter took 6 % of a replay's CPU); others go
/// through `time`'s formatter.
pub fn rfc3339(millis: i64) -> String {
    let nanos = i128::from(millis) * 1_000_000;
    let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(nanos) else {
        return "1970-01-01T00:00:00.000Z".to_owned();
    };
    let year = at.year();
    if !(0..=9999).contains(&year) {
        return at
            .format(FORMAT)
            .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_owned());
    }
    let mut text = [0u8; 24];
    let fields = [
        (0, 4, year as u32),
        (5, 2, u32::from(u8::from(at.month()))),
        (8, 2, u32::from(at.day())),
        (11, 2, u32::from(at.hour())),
        (14, 2, u32::from(at.minute())),
        (17, 2, u32::from(at.second())),
        (20, 3, u32::from(at.millisecond())),
    ];
    for (start, width, mut value) in fields {
        for slot in text[start..start + width].iter_mut().rev() {
            *slot = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (23, b'Z'),
    ] {
        text[at] = separator;
    }
    // Digits and separators only: always ASCII.
    std::str::from_utf8(&text).map_or_else(|_| String::new(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds_are_shown_as_rfc3339_utc() {
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(1_700_000_000_500), "2023-11-14T22:13:20.500Z");
        assert_eq!(rfc3339(1_700_000_000_000), "2023-11-14T22:13:20.000Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(rfc3339(253_402_300_799_999), "9999-12-31T23:59:59.999Z");
    }

    /// The digit-by-digit writer agrees with `time`'s formatter.
    #[test]
    fn the_fast_path_matches_the_general_formatter() {
        let mut millis: i64 = -62_000_000_000_000;
        while millis < 253_000_000_000_000 {
            let general = OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
                .ok()
                .and_then(|at| at.format(FORMAT).ok());
            assert_eq!(Some(rfc3339(millis)), general, "at {millis}");
            millis += 7_919_123_457;
        }
    }
}
