//! Entries: the value Redis holds for one merchant's key.
//!
//! An entry is either an in-flight mark, `mark:<fingerprint>`, or a final
//! answer, `answer:<json>` with the fingerprint and the payment. The tag in
//! front lets the clear script tell a mark from an answer without parsing
//! JSON, and keeps entries readable with `redis-cli GET`.

use std::sync::Arc;

use oncepay_domain::{Payment, RequestFingerprint};
use oncepay_engine::{CheckError, FastBegin};
use serde::{Deserialize, Serialize};

use crate::payment::StoredPayment;

/// What every in-flight mark starts with; the clear script matches on it.
pub(crate) const MARK_TAG: &str = "mark:";

/// What every final answer starts with.
const ANSWER_TAG: &str = "answer:";

#[derive(Serialize, Deserialize)]
struct StoredAnswer {
    fingerprint: String,
    payment: StoredPayment,
}

/// The mark a request leaves while it works on its key.
pub(crate) fn mark(fingerprint: &RequestFingerprint) -> String {
    format!("{MARK_TAG}{}", fingerprint.as_str())
}

/// The entry that answers every later request with the same key.
pub(crate) fn answer(
    fingerprint: &RequestFingerprint,
    payment: &Payment,
) -> Result<String, CheckError> {
    let stored = StoredAnswer {
        fingerprint: fingerprint.as_str().to_owned(),
        payment: StoredPayment::from(payment),
    };
    let json = serde_json::to_string(&stored)
        .map_err(|error| CheckError(format!("could not encode the answer: {error}")))?;
    Ok(format!("{ANSWER_TAG}{json}"))
}

/// Reads an existing entry back as what `begin` reports.
///
/// `remaining_millis` is the entry's time to live as Redis reports it; a
/// negative value (no expiry) is read as zero.
pub(crate) fn read(entry: &str, remaining_millis: i64) -> Result<FastBegin, CheckError> {
    let remaining_millis = u64::try_from(remaining_millis).unwrap_or(0);
    if let Some(fingerprint) = entry.strip_prefix(MARK_TAG) {
        return Ok(FastBegin::InFlight {
            fingerprint: RequestFingerprint::from_stored(fingerprint.to_owned()),
            remaining_millis,
        });
    }
    let Some(json) = entry.strip_prefix(ANSWER_TAG) else {
        return Err(CheckError(
            "an entry in Redis has an unknown tag".to_owned(),
        ));
    };

    let stored: StoredAnswer = serde_json::from_str(json)
        .map_err(|error| CheckError(format!("an answer in Redis does not parse: {error}")))?;
    let payment = stored.payment.into_payment().map_err(CheckError)?;
    Ok(FastBegin::Answered {
        fingerprint: RequestFingerprint::from_stored(stored.fingerprint),
        payment: Arc::new(payment),
        remaining_millis,
    })
}

#[cfg(test)]
mod tests {
    use oncepay_domain::{
        Amount, Currency, MerchantId, Money, PaymentId, PaymentStatus, PspKey, StatusChange,
    };

    use super::*;

    fn fingerprint() -> RequestFingerprint {
        RequestFingerprint::from_stored("ab".repeat(32))
    }

    fn settled_payment() -> Payment {
        Payment {
            id: PaymentId::generate(),
            merchant: MerchantId::parse("acme").expect("a valid merchant"),
            money: Money {
                amount: Amount::parse(1999).expect("a valid amount"),
                currency: Currency::parse("EUR").expect("a known currency"),
            },
            status: PaymentStatus::Succeeded,
            payment_method: "pm_card_ok".to_owned(),
            description: Some("two coffees".to_owned()),
            metadata: [("order".to_owned(), "17".to_owned())].into(),
            psp_key: PspKey::generate(),
            created_at_millis: 1_700_000_000_000,
            updated_at_millis: 1_700_000_000_250,
            history: vec![
                StatusChange {
                    status: PaymentStatus::Pending,
                    at_millis: 1_700_000_000_000,
                    cause: "created".to_owned(),
                },
                StatusChange {
                    status: PaymentStatus::Succeeded,
                    at_millis: 1_700_000_000_250,
                    cause: "psp: succeeded".to_owned(),
                },
            ],
        }
    }

    #[test]
    fn a_mark_reads_back_as_in_flight_with_its_fingerprint() {
        let entry = mark(&fingerprint());

        let read = read(&entry, 1500).expect("a mark parses");

        let FastBegin::InFlight {
            fingerprint: theirs,
            remaining_millis,
        } = read
        else {
            panic!("expected in flight, got {read:?}");
        };
        assert_eq!(theirs, fingerprint());
        assert_eq!(remaining_millis, 1500);
    }

    #[test]
    fn an_answer_reads_back_as_the_same_payment() {
        let payment = settled_payment();
        let entry = answer(&fingerprint(), &payment).expect("an answer encodes");

        let read = read(&entry, 60_000).expect("an answer parses");

        let FastBegin::Answered {
            fingerprint: theirs,
            payment: recorded,
            remaining_millis,
        } = read
        else {
            panic!("expected an answer, got {read:?}");
        };
        assert_eq!(theirs, fingerprint());
        assert_eq!(*recorded, payment);
        assert_eq!(remaining_millis, 60_000);
    }

    #[test]
    fn a_mark_without_expiry_reports_no_time_left() {
        let read = read(&mark(&fingerprint()), -1).expect("a mark parses");

        assert!(matches!(
            read,
            FastBegin::InFlight {
                remaining_millis: 0,
                ..
            }
        ));
    }

    #[test]
    fn entries_that_do_not_parse_are_errors_not_answers() {
        assert!(read("something else", 10).is_err());
        assert!(read("answer:{not json", 10).is_err());

        let entry = answer(&fingerprint(), &settled_payment()).expect("an answer encodes");
        let broken = entry.replace("\"EUR\"", "\"XXX\"");
        assert!(read(&broken, 10).is_err());
    }
}
