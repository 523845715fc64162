//! The simulator's ledger: one entry per PSP key, so a key is charged once.
//!
//! In memory by default; in a SQLite file when the ledger must outlive the
//! process (tests that kill oncepay mid-payment count charges across the
//! restart by reading that file).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use oncepay_domain::time_fmt::now_millis;
use oncepay_engine::{ChargeRequest, ProviderOutcome};
use rusqlite::{Connection, params};

/// The ledger file could not be opened or written.
#[derive(Debug, thiserror::Error)]
#[error("simulated PSP ledger: {0}")]
pub struct LedgerError(pub String);

impl From<rusqlite::Error> for LedgerError {
    fn from(error: rusqlite::Error) -> Self {
        Self(error.to_string())
    }
}

/// What booking a charge found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Booking {
    /// The key was new; money moved (or was refused) now.
    New(ProviderOutcome),
    /// The key was charged before; this is what happened then.
    Existing(ProviderOutcome),
}

#[derive(Debug)]
pub enum Ledger {
    Memory(Mutex<HashMap<String, ProviderOutcome>>),
    File(Mutex<Connection>),
}

impl Ledger {
    pub fn in_memory() -> Self {
        Self::Memory(Mutex::new(HashMap::new()))
    }

    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        let connection = Connection::open(path)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(
            "CREATE TABLE IF NOT EXISTS charges (
                psp_key TEXT PRIMARY KEY,
                amount INTEGER NOT NULL,
                currency TEXT NOT NULL,
                payment_method TEXT NOT NULL,
                outcome TEXT NOT NULL,
                created_at INTEGER NOT NULL
            )",
        )?;
        Ok(Self::File(Mutex::new(connection)))
    }

    /// Books the charge unless its key is known; returns what stands.
    pub fn book(
        &self,
        request: &ChargeRequest,
        outcome: ProviderOutcome,
    ) -> Result<Booking, LedgerError> {
        match self {
            Self::Memory(map) => {
                let mut map = map
                    .lock()
                    .map_err(|_| LedgerError("ledger lock poisoned".into()))?;
                let key = request.psp_key.as_str().to_owned();
                Ok(match map.get(&key) {
                    Some(existing) => Booking::Existing(*existing),
                    None => {
                        map.insert(key, outcome);
                        Booking::New(outcome)
                    }
                })
            }
            Self::File(connection) => {
                let connection = connection
                    .lock()
                    .map_err(|_| LedgerError("ledger lock poisoned".into()))?;
                book_in_file(&connection, request, outcome)
            }
        }
    }
}

fn book_in_file(
    connection: &Connection,
    request: &ChargeRequest,
    outcome: ProviderOutcome,
) -> Result<Booking, LedgerError> {
    // Insert-if-absent in one statement: several oncepay processes may share
    // one ledger file, and the key's primary key decides who booked first.
    let inserted = connection.execute(
        "INSERT INTO charges (psp_key, amount, currency, payment_method, outcome, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (psp_key) DO NOTHING",
        params![
            request.psp_key.as_str(),
            request.money.amount.minor_units(),
            request.money.currency.code(),
            request.payment_method,
            outcome.label(),
            now_millis(),
        ],
    )?;
    if inserted == 1 {
        return Ok(Booking::New(outcome));
    }
    let existing: String = connection.query_row(
        "SELECT outcome FROM charges WHERE psp_key = ?1",
        [request.psp_key.as_str()],
        |row| row.get(0),
    )?;
    Ok(Booking::Existing(parse_outcome(&existing)?))
}

fn parse_outcome(label: &str) -> Result<ProviderOutcome, LedgerError> {
    match label {
        "succeeded" => Ok(ProviderOutcome::Succeeded),
        "declined" => Ok(ProviderOutcome::Declined),
        "pending" => Ok(ProviderOutcome::Pending),
        other => Err(LedgerError(format!(
            "unknown outcome {other:?} in the ledger"
        ))),
    }
}
