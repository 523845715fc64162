//! A simulated payment service provider (PSP), in process.
//!
//! The outcome of a charge is chosen by the payment method: `pm_card_ok`
//! succeeds, `pm_card_declined` is declined, `pm_card_pending` stays pending,
//! and `pm_card_timeout` charges but loses the answer. Any other token
//! succeeds. The simulator honours its own idempotency key: a second charge
//! with the same key returns the first one's outcome and moves no money.

pub mod ledger;
mod simulator;

pub use ledger::LedgerError;
pub use simulator::{SimConfig, SimulatedPsp};
