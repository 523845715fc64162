//! Domain types of oncepay.
//!
//! Everything here is plain data plus the rules that make it valid: money in
//! integer minor units, the payment status machine, idempotency keys as
//! clients send them, and the request fingerprint that tells a retry from a
//! different request. Nothing here does I/O.

pub mod fields;
pub mod fingerprint;
pub mod ids;
pub mod key;
pub mod merchant;
pub mod money;
pub mod payment;
pub mod request;
pub mod time_fmt;

pub use fingerprint::RequestFingerprint;
pub use ids::{PaymentId, PspKey};
pub use key::{IdempotencyKey, KeyError};
pub use merchant::MerchantId;
pub use money::{Amount, Currency, Money, MoneyError};
pub use payment::{Payment, PaymentStatus, StatusChange, TransitionError};
pub use request::{PaymentRequest, RequestError};
