//! What every handler shares: the engine and the API's own settings.

use std::sync::Arc;

use oncepay_engine::Engine;
use secrecy::SecretString;

use crate::auth::Auth;

/// Shared, cheaply cloned state of the router.
#[derive(Clone)]
pub struct AppState {
    /// The idempotency engine.
    pub engine: Arc<Engine>,
    /// How merchants are recognised.
    pub auth: Arc<Auth>,
    /// The key of `Oncepay-Signature`; status updates are refused without it.
    pub webhook_secret: Option<Arc<SecretString>>,
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
        Self {
            engine,
            auth: Arc::new(auth),
            webhook_secret: webhook_secret.map(Arc::new),
            max_body_bytes,
        }
    }
}
