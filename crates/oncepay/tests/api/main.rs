//! End-to-end tests of oncepay: each test starts the real `oncepay` binary in
//! a directory of its own, talks HTTP to it on loopback, and counts charges
//! in the simulated PSP's ledger.
//!
//! `helpers` holds the `TestApp`; the other modules group behaviour: retries,
//! byte-identical retries, rejected requests, concurrent duplicates, crashes
//! and restarts, signed status updates, listing, operating the service, and
//! upgrading a file an earlier release wrote.

mod answer;
mod client;
mod crash_recovery;
mod errors;
mod helpers;
mod identical_retries;
mod ledger;
mod listing;
mod merchants;
mod mongo_outage;
mod operations;
mod outages;
mod output;
mod redis_failures;
mod redis_tls;
mod retries;
mod scale_out;
mod services;
mod settings;
mod status_updates;
mod storms;
mod upgrades;
