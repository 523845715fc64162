//! Whether Redis answers, logged once per change rather than once per call.
//!
//! During an outage every request fails its call to Redis and falls back to
//! the durable store; the engine counts those failures in its metrics. The
//! log gets one `warn` when Redis stops answering and one `info` when it
//! answers again, however many requests ran in between.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tracing::{info, warn};

/// While Redis is unreachable, how often one call is let through to see
/// whether it is back; every other call fails at once instead of waiting for
/// its timeout, so an outage costs requests nothing but the store's time.
const PROBE_EVERY: Duration = Duration::from_millis(500);

/// Tracks the last known state of the connection to Redis.
#[derive(Debug)]
pub(crate) struct Reachability {
    backend: &'static str,
    unreachable: AtomicBool,
    /// Milliseconds since `origin` of the last call let through to Redis
    /// while it was unreachable.
    last_probe: AtomicU64,
    origin: Instant,
}

impl Reachability {
    /// Starts as reachable: the check is only built after Redis answered.
    pub(crate) fn new(backend: &'static str) -> Self {
        Self {
            backend,
            unreachable: AtomicBool::new(false),
            last_probe: AtomicU64::new(0),
            origin: Instant::now(),
        }
    }

    /// True when the call should fail at once: Redis is unreachable and
    /// another call probed it less than [`PROBE_EVERY`] ago. Otherwise this
    /// call is the probe.
    pub(crate) fn should_skip(&self) -> bool {
        if !self.unreachable.load(Ordering::Relaxed) {
            return false;
        }
        let now = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX);
        let last = self.last_probe.load(Ordering::Relaxed);
        let due = now.saturating_sub(last) >= PROBE_EVERY.as_millis() as u64;
        let won = due
            && self
                .last_probe
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok();
        !won
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
    fn while_redis_is_away_at_most_one_call_per_interval_waits_for_it() {
        let reachability = Reachability::new("redis");
        assert!(
            !reachability.should_skip(),
            "a reachable Redis is always called"
        );
        reachability.lost("connection refused");
        let let_through = (0..1000).filter(|_| !reachability.should_skip()).count();
        assert!(
            let_through <= 1,
            "{let_through} calls waited for an absent Redis"
        );
        reachability.answered();
        assert!(
            !reachability.should_skip(),
            "calls flow again once Redis answers"
        );
    }

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
