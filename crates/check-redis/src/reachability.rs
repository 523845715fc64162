//! Whether Redis answers, logged once per change rather than once per call.
//!
//! During an outage every request fails its call to Redis and falls back to
//! the durable store; the engine counts those failures in its metrics. The
//! log gets one `warn` when Redis stops answering and one `info` when it
//! answers again, however many requests ran in between.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing::{info, warn};

/// Tracks the last known state of the connection to Redis.
#[derive(Debug)]
pub(crate) struct Reachability {
    backend: &'static str,
    unreachable: AtomicBool,
}

impl Reachability {
    /// Starts as reachable: the check is only built after Redis answered.
    pub(crate) fn new(backend: &'static str) -> Self {
        Self {
            backend,
            unreachable: AtomicBool::new(false),
        }
    }

    /// Redis answered a call, successfully or with an error of its own.
    pub(crate) fn answered(&self) {
        // The plain load keeps the common path free of writes to a shared
        // cache line; only the call that flips the state logs.
        if self.unreachable.load(Ordering::Relaxed)
            && self.unreachable.swap(false, Ordering::AcqRel)
        {
            info!(
                check = self.backend,
                "Redis answers again, the primary check is back"
            );
        }
    }

    /// A call could not reach Redis, or Redis could not serve it.
    pub(crate) fn lost(&self, reason: &str) {
        if !self.unreachable.load(Ordering::Relaxed)
            && !self.unreachable.swap(true, Ordering::AcqRel)
        {
            warn!(
                check = self.backend,
                reason, "Redis is unreachable, payments use the durable store until it is back"
            );
        }
    }

    /// True between a `lost` and the next `answered`.
    #[cfg(test)]
    fn is_unreachable(&self) -> bool {
        self.unreachable.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_the_last_outcome() {
        let reachability = Reachability::new("redis");

        reachability.lost("timed out");
        reachability.lost("timed out");
        assert!(reachability.is_unreachable());

        reachability.answered();
        assert!(!reachability.is_unreachable());
    }
}
