//! What every handler shares: the engine and the API's own settings.

use std::ops::Deref;
use std::sync::Arc;

use oncepay_engine::Engine;
use secrecy::SecretString;

use crate::auth::Auth;

/// Shared state of the router, cloned into every request: one `Arc`, so a
/// clone is a single reference count however many settings it holds.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

/// The contents of [`AppState`].
pub struct Shared {
    /// The idempotency engine.
    pub engine: Arc<Engine>,
    /// How merchants are recognised.
    pub auth: Auth,
    /// The key of `Oncepay-Signature`; status updates are refused without it.
    pub webhook_secret: Option<SecretString>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
}

impl AppState {
    /// Bundles the engine with the API's settings.
    pub fn new(
        engine: Arc<Engine>,
        auth: Auth,
        webhook_secret: Option<SecretString>,
        max_body_bytes: usize,
    ) -> Self {
        Self(Arc::new(Shared {
            engine,
            auth,
            webhook_secret,
            max_body_bytes,
        }))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}
