//! The simulator's ledger: one entry per PSP key, so a key is charged once.
//!
//! In memory by default, holding only the most recent keys so that a long
//! run does not grow the process (see [`RecentKeys`]); in a SQLite file,
//! complete, when the ledger must outlive the process or be counted (tests
//! that kill oncepay mid-payment read that file).

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

/// Keys remembered by the in-memory ledger in each of its two generations.
const GENERATION: usize = 25_000;

/// The in-memory ledger: the last 25 000 to 50 000 keys booked.
///
/// Keys go into the current generation; when it is full, it becomes the
/// previous one and the generation before is forgotten. A re-drive comes
/// within seconds or minutes of its payment, so recent keys are the ones
/// that matter; a key older than that would be booked again, which is why
/// anything that counts charges uses the file ledger. Unbounded, this map
/// took 300 MiB in a 4-minute soak.
#[derive(Debug, Default)]
pub struct RecentKeys {
    current: HashMap<String, ProviderOutcome>,
    previous: HashMap<String, ProviderOutcome>,
}

impl RecentKeys {
    fn get(&self, key: &str) -> Option<ProviderOutcome> {
        self.current
            .get(key)
            .or_else(|| self.previous.get(key))
            .copied()
    }

    fn insert(&mut self, key: String, outcome: ProviderOutcome) {
        if self.current.len() >= GENERATION {
            self.previous = std::mem::take(&mut self.current);
        }
        self.current.insert(key, outcome);
    }
}

#[derive(Debug)]
pub enum Ledger {
    Memory(Mutex<RecentKeys>),
    File(Mutex<Connection>),
}

impl Ledger {
    pub fn in_memory() -> Self {
        Self::Memory(Mutex::new(RecentKeys::default()))
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
                let key = request.psp_key.as_str();
                Ok(match map.get(key) {
                    Some(existing) => Booking::Existing(existing),
                    None => {
                        map.insert(key.to_owned(), outcome);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_ledger_keeps_recent_keys_and_stays_bounded() {
        let mut keys = RecentKeys::default();
        for n in 0..GENERATION * 5 {
            keys.insert(format!("psp_{n}"), ProviderOutcome::Succeeded);
        }
        let held = keys.current.len() + keys.previous.len();
        assert!(held <= 2 * GENERATION, "{held} keys held");
        let newest = format!("psp_{}", GENERATION * 5 - 1);
        let a_generation_ago = format!("psp_{}", GENERATION * 4 - 1);
        assert_eq!(keys.get(&newest), Some(ProviderOutcome::Succeeded));
        assert_eq!(
            keys.get(&a_generation_ago),
            Some(ProviderOutcome::Succeeded)
        );
        assert_eq!(keys.get("psp_0"), None);
    }
}
