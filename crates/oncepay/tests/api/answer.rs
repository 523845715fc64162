//! What oncepay answered: status, headers and the raw body, with the checks
//! the suite makes over and over (problem types, replay header, location).

use reqwest::header::HeaderMap;
use serde_json::Value;

/// Prefix of every problem `type` URI.
pub const PROBLEM_BASE: &str = "https://oncepay.dev/problems/";

/// One HTTP answer, read to the end.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("a JSON body ({e}): {} {}", self.status, self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// The `Idempotent-Replayed` header.
    pub fn replayed(&self) -> Option<&str> {
        self.header("idempotent-replayed")
    }

    /// The payment id of a payment body, or of a decline's `payment_id`.
    #[track_caller]
    pub fn payment_id(&self) -> String {
        let body = self.json();
        let id = body.get("payment_id").or_else(|| body.get("id"));
        let id = id.and_then(Value::as_str);
        id.unwrap_or_else(|| panic!("no payment id in {}", self.text()))
            .to_owned()
    }

    /// Asserts the status code, with the body in the message when it differs.
    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "unexpected status; body: {}",
            self.text()
        );
        self
    }

    /// Asserts a `201` replay of `original`: the header says so and the body
    /// is the same, byte for byte.
    #[track_caller]
    pub fn assert_replay_of(&self, original: &Answer) {
        self.assert_status(201);
        assert_eq!(self.replayed(), Some("true"));
        assert_eq!(self.body, original.body, "the replay is byte-identical");
    }

    /// Asserts a `201` answer for a succeeded payment and returns the body.
    #[track_caller]
    pub fn assert_succeeded(&self) -> Value {
        self.assert_status(201);
        let body = self.json();
        assert_eq!(body["status"], "succeeded", "{body}");
        self.assert_location_names(&body["id"]);
        body
    }

    #[track_caller]
    pub fn assert_location_names(&self, id: &Value) {
        let id = id.as_str().expect("a payment id");
        let expected = format!("/v1/payments/{id}");
        assert_eq!(self.header("location"), Some(expected.as_str()));
    }

    /// Asserts an RFC 9457 problem of the given status and slug, returns it.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, slug: &str) -> Value {
        self.assert_status(status);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "content-type of a {slug} problem is {content_type:?}"
        );
        let problem = self.json();
        assert_eq!(
            problem["type"],
            format!("{PROBLEM_BASE}{slug}"),
            "problem type; body: {problem}"
        );
        assert!(problem["detail"].is_string(), "a human detail: {problem}");
        problem
    }
}

/// Sums the samples of `name` in a Prometheus text exposition whose label
/// set contains `labels`.
pub fn sum_samples(exposition: &str, name: &str, labels: &str) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (sample_name, sample_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest),
                None => (series, ""),
            };
            let wanted = sample_name == name && sample_labels.contains(labels);
            wanted.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

#[test]
fn samples_are_summed_by_exact_name_and_label_filter() {
    let exposition = "# TYPE oncepay_psp_calls counter\n\
        oncepay_psp_calls_total{outcome=\"succeeded\"} 2\n\
        oncepay_psp_calls_total{outcome=\"pending\"} 1\n\
        oncepay_psp_calls_total_total 7\n\
        oncepay_lease_takeovers_total 1\n";

    assert_eq!(sum_samples(exposition, "oncepay_psp_calls_total", ""), 3.0);
    assert_eq!(
        sum_samples(exposition, "oncepay_psp_calls_total", "pending"),
        1.0
    );
    assert_eq!(
        sum_samples(exposition, "oncepay_lease_takeovers_total", ""),
        1.0
    );
    assert_eq!(sum_samples(exposition, "oncepay_missing_total", ""), 0.0);
}
