//! What happens around every request: its id, its span, its log line and
//! its count.
//!
//! - `x-request-id` is taken from the request or made up, and echoed.
//! - One span per request holds the request id, method and matched route;
//!   handlers and extractors fill in merchant, key digest, idempotency
//!   outcome and payment id as they learn them.
//! - One event at completion carries status and latency, plus the problem
//!   slug and, for server-side failures, the internal cause (logged here
//!   once, never sent to the client).
//! - Every answer is counted by matched route and status code.
//! - Bodies above the configured size are refused with `413`.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Response};
use axum::middleware::{Next, from_fn_with_state};
use oncepay_engine::Metrics;
use rand::RngCore;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{OnResponse, TraceLayer};
use tracing::{Span, error, field, info, info_span};

use crate::error::ProblemReport;
use crate::state::AppState;

/// The route label of requests that matched no route.
pub(crate) const UNMATCHED: &str = "unmatched";

/// Wraps every route of `router` in the request layers, innermost first.
pub fn around_requests(
    router: Router<AppState>,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
) -> Router<AppState> {
    let trace = TraceLayer::new_for_http()
        .make_span_with(request_span)
        .on_request(())
        .on_response(RequestLog)
        .on_failure(());
    // axum's limit rather than tower-http's: it is enforced where the body
    // is read, so the refusal goes through `ApiError` and is problem+json.
    router
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(from_fn_with_state(metrics, count_request))
        .layer(trace)
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(RandomRequestId))
}

/// Makes request ids of 128 random bits, for requests that bring none.
#[derive(Debug, Clone, Copy)]
struct RandomRequestId;

impl MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<RequestId> {
        let mut bytes = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut bytes);
        HeaderValue::from_str(&hex::encode(bytes))
            .ok()
            .map(RequestId::new)
    }
}

fn route_of<B>(request: &axum::http::Request<B>) -> &str {
    request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
}

/// The request's span; empty fields are recorded once known.
fn request_span<B>(request: &axum::http::Request<B>) -> Span {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    info_span!(
        "request",
        request_id,
        method = %request.method(),
        route = route_of(request),
        merchant = field::Empty,
        idempotency_key = field::Empty,
        idempotency = field::Empty,
        payment_id = field::Empty,
    )
}

/// Emits the one event of a finished request, inside its span.
#[derive(Debug, Clone, Copy)]
struct RequestLog;

impl<B> OnResponse<B> for RequestLog {
    fn on_response(self, response: &Response<B>, latency: Duration, _span: &Span) {
        let status = response.status().as_u16();
        // Microsecond resolution, shown as milliseconds: `latency_ms=1.234`.
        let latency_ms = latency.as_micros() as f64 / 1000.0;
        let report = response.extensions().get::<ProblemReport>();
        let problem = report.map(|report| report.slug);
        match report.and_then(|report| report.cause.as_deref()) {
            Some(cause) => error!(status, latency_ms, problem, cause, "request failed"),
            None => info!(status, latency_ms, problem, "request completed"),
        }
    }
}

/// Counts the answer by matched route and status code.
async fn count_request(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> axum::response::Response {
    let route = crate::route_label(route_of(&request));
    let response = next.run(request).await;
    metrics.record_request(route, response.status().as_u16());
    response
}
