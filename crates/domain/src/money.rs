//! Money: integer minor units tied to an ISO 4217 currency. Never a float.

use std::fmt;

use thiserror::Error;

/// Smallest amount accepted, in minor units.
pub const MIN_AMOUNT: i64 = 1;
/// Largest amount accepted, in minor units (100 000 000.00 in a two-decimal currency).
pub const MAX_AMOUNT: i64 = 10_000_000_000;

/// Active ISO 4217 alphabetic codes oncepay accepts.
const KNOWN_CURRENCIES: &[&str] = &[
    "AED", "AFN", "ALL", "AMD", "ANG", "AOA", "ARS", "AUD", "AWG", "AZN", "BAM", "BBD", "BDT",
    "BGN", "BHD", "BIF", "BMD", "BND", "BOB", "BRL", "BSD", "BTN", "BWP", "BYN", "BZD", "CAD",
    "CDF", "CHF", "CLP", "CNY", "COP", "CRC", "CUP", "CVE", "CZK", "DJF", "DKK", "DOP", "DZD",
    "EGP", "ERN", "ETB", "EUR", "FJD", "FKP", "GBP", "GEL", "GHS", "GIP", "GMD", "GNF", "GTQ",
    "GYD", "HKD", "HNL", "HTG", "HUF", "IDR", "ILS", "INR", "IQD", "IRR", "ISK", "JMD", "JOD",
    "JPY", "KES", "KGS", "KHR", "KMF", "KPW", "KRW", "KWD", "KYD", "KZT", "LAK", "LBP", "LKR",
    "LRD", "LSL", "LYD", "MAD", "MDL", "MGA", "MKD", "MMK", "MNT", "MOP", "MRU", "MUR", "MVR",
    "MWK", "MXN", "MYR", "MZN", "NAD", "NGN", "NIO", "NOK", "NPR", "NZD", "OMR", "PAB", "PEN",
    "PGK", "PHP", "PKR", "PLN", "PYG", "QAR", "RON", "RSD", "RUB", "RWF", "SAR", "SBD", "SCR",
    "SDG", "SEK", "SGD", "SHP", "SLE", "SOS", "SRD", "SSP", "STN", "SVC", "SYP", "SZL", "THB",
    "TJS", "TMT", "TND", "TOP", "TRY", "TTD", "TWD", "TZS", "UAH", "UGX", "USD", "UYU", "UZS",
    "VES", "VND", "VUV", "WST", "XAF", "XCD", "XOF", "XPF", "YER", "ZAR", "ZMW", "ZWG",
];

/// Why an amount or a currency was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MoneyError {
    /// Outside 1 ..= 10 000 000 000 minor units.
    #[error("amount must be an integer between {MIN_AMOUNT} and {MAX_AMOUNT} minor units")]
    AmountOutOfRange,
    /// Not an upper-case ISO 4217 code oncepay knows.
    #[error("currency must be an upper-case ISO 4217 code such as EUR or USD")]
    UnknownCurrency,
}

/// A positive amount in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i64);

impl Amount {
    /// Accepts 1 ..= 10 000 000 000 minor units.
    pub fn parse(minor_units: i64) -> Result<Self, MoneyError> {
        if (MIN_AMOUNT..=MAX_AMOUNT).contains(&minor_units) {
            Ok(Self(minor_units))
        } else {
            Err(MoneyError::AmountOutOfRange)
        }
    }

    /// The amount in minor units.
    pub fn minor_units(self) -> i64 {
        self.0
    }
}

/// An ISO 4217 alphabetic currency code from the known list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency(&'static str);

impl Currency {
    /// Accepts a known upper-case code; `eur` is refused, not corrected.
    pub fn parse(code: &str) -> Result<Self, MoneyError> {
        KNOWN_CURRENCIES
            .binary_search(&code)
            .map(|index| Self(KNOWN_CURRENCIES[index]))
            .map_err(|_| MoneyError::UnknownCurrency)
    }

    /// The three-letter code.
    pub fn code(self) -> &'static str {
        self.0
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// An amount in one currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    /// How much, in minor units.
    pub amount: Amount,
    /// In which currency.
    pub currency: Currency,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_currency_list_is_sorted_so_lookups_find_every_code() {
        assert!(KNOWN_CURRENCIES.windows(2).all(|pair| pair[0] < pair[1]));
        for code in KNOWN_CURRENCIES {
            assert!(Currency::parse(code).is_ok(), "{code}");
        }
    }

    #[test]
    fn lower_case_and_made_up_currencies_are_refused() {
        assert_eq!(Currency::parse("eur"), Err(MoneyError::UnknownCurrency));
        assert_eq!(Currency::parse("XXX"), Err(MoneyError::UnknownCurrency));
    }

    #[test]
    fn amounts_are_bounded_on_both_sides() {
        assert!(Amount::parse(0).is_err());
        assert!(Amount::parse(1).is_ok());
        assert!(Amount::parse(MAX_AMOUNT).is_ok());
        assert!(Amount::parse(MAX_AMOUNT + 1).is_err());
        assert!(Amount::parse(-5).is_err());
    }
}
