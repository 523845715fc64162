//! The simulated PSP's ledger, read from outside: one row per real charge.
//!
//! The suite opens the ledger file read-only, so it counts what the PSP
//! booked without trusting anything oncepay says about it.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// One charge the PSP booked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub psp_key: String,
    pub amount: i64,
    pub currency: String,
    pub payment_method: String,
    pub outcome: String,
}

/// Every charge in the ledger at `path`; none when it does not exist yet.
pub fn read(path: &Path) -> Vec<Charge> {
    if !path.exists() {
        return Vec::new();
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(path, flags).expect("open the PSP ledger");
    connection
        .busy_timeout(Duration::from_secs(5))
        .expect("set a busy timeout");

    let query = "SELECT psp_key, amount, currency, payment_method, outcome \
                 FROM charges ORDER BY created_at";
    let mut statement = match connection.prepare(query) {
        Ok(statement) => statement,
        Err(e) if e.to_string().contains("no such table") => return Vec::new(),
        Err(e) => panic!("read the PSP ledger: {e}"),
    };
    let rows = statement
        .query_map([], |row| {
            Ok(Charge {
                psp_key: row.get(0)?,
                amount: row.get(1)?,
                currency: row.get(2)?,
                payment_method: row.get(3)?,
                outcome: row.get(4)?,
            })
        })
        .expect("query the PSP ledger");
    rows.collect::<Result<_, _>>().expect("read ledger rows")
}
