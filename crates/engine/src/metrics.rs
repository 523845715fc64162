//! Prometheus metrics: what an operator watches to see oncepay at work.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

/// The labels of a counted request: made on every request, so they borrow a
/// static route name and keep the status as a number (no allocation).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

/// Every counter oncepay exports, registered once at start.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    replays: Counter,
    in_flight_conflicts: Counter,
    fingerprint_mismatches: Counter,
    psp_calls: Family<Labels, Counter>,
    lease_takeovers: Counter,
    check_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Self {
            registry: Registry::default(),
            requests: Family::default(),
            replays: Counter::default(),
            in_flight_conflicts: Counter::default(),
            fingerprint_mismatches: Counter::default(),
            psp_calls: Family::default(),
            lease_takeovers: Counter::default(),
            check_failures: Counter::default(),
        };
        metrics.register_all();
        metrics
    }
}

impl Metrics {
    fn register_all(&mut self) {
        let r = &mut self.registry;
        r.register(
            "oncepay_http_requests",
            "HTTP requests by route and status",
            self.requests.clone(),
        );
        r.register(
            "oncepay_idempotent_replays",
            "Retries answered from the record",
            self.replays.clone(),
        );
        r.register(
            "oncepay_idempotency_conflicts",
            "Duplicates refused with 409 while the first request was in flight",
            self.in_flight_conflicts.clone(),
        );
        r.register(
            "oncepay_idempotency_mismatches",
            "Keys reused with a different request, refused with 422",
            self.fingerprint_mismatches.clone(),
        );
        r.register(
            "oncepay_psp_calls",
            "PSP calls by outcome",
            self.psp_calls.clone(),
        );
        r.register(
            "oncepay_lease_takeovers",
            "Leases taken over after their holder lapsed",
            self.lease_takeovers.clone(),
        );
        r.register(
            "oncepay_primary_check_failures",
            "Calls to the primary check that failed and fell back to the store",
            self.check_failures.clone(),
        );
    }

    /// Counts one answered HTTP request by its route's pattern.
    pub fn record_request(&self, route: &'static str, status: u16) {
        let labels = RequestLabels { route, status };
        self.requests.get_or_create(&labels).inc();
    }

    /// Counts one replay.
    pub fn record_replay(&self) {
        self.replays.inc();
    }

    /// Counts one 409 for a key in flight.
    pub fn record_in_flight_conflict(&self) {
        self.in_flight_conflicts.inc();
    }

    /// Counts one 422 for a reused key.
    pub fn record_mismatch(&self) {
        self.fingerprint_mismatches.inc();
    }

    /// Counts one PSP call by its outcome label.
    pub fn record_psp_call(&self, outcome: &str) {
        self.psp_calls
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// Counts one lease takeover.
    pub fn record_takeover(&self) {
        self.lease_takeovers.inc();
    }

    /// Counts one failed call to the primary check.
    pub fn record_check_failure(&self) {
        self.check_failures.inc();
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
