//! The idempotency engine of oncepay.
//!
//! The engine decides what every payment request means — first execution,
//! duplicate in flight, replay, re-drive of a pending payment, or a reused key
//! with a different body — and carries it out against three parts it only
//! knows by trait: the [`FastCheck`] in front, the [`DurableStore`] behind it
//! (the source of truth) and the [`PaymentProvider`]. Stores, checks and PSPs
//! live in their own crates and plug in without touching this one.

pub mod check;
pub mod engine;
mod execution;
pub mod in_process;
pub mod layered;
pub mod metrics;
pub mod provider;
pub mod recovery;
pub mod status_update;
pub mod store;

pub use check::{CheckError, ExactReplay, FastBegin, FastCheck, KeptAnswer, KeyScope, Rendering};
pub use engine::{Engine, EngineConfig, PaymentAnswer};
pub use in_process::InProcessCheck;
pub use layered::LayeredCheck;
pub use metrics::Metrics;
pub use provider::{ChargeRequest, PaymentProvider, ProviderError, ProviderOutcome};
pub use status_update::{StatusUpdate, StatusUpdateAnswer};
pub use store::{
    Claim, ClaimOutcome, Cursor, DurableStore, Lease, Page, PageQuery, RecordedUpdate,
    SettleOutcome, Settlement, StoreError, UpdateOutcome,
};
