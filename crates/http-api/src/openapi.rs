//! The OpenAPI description of the API, generated from the handlers and body
//! types themselves and served at `/openapi.json`.

use std::sync::LazyLock;

use axum::Json;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::health::HealthView;
use crate::status_updates::{FinalStatus, StatusUpdateBody};
use crate::views::{
    CreatePaymentBody, HistoryEntryView, IssuedKeyView, PaymentListView, PaymentStatusView,
    PaymentView, Problem,
};
use crate::{health, keys, metrics, payments, status_updates};

/// The API description; see the `paths` and `schemas` lists.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "oncepay",
        description = "Exactly-once payments: every payment is guarded by an idempotency key."
    ),
    paths(
        keys::issue_key,
        payments::create_payment,
        payments::get_payment,
        payments::list_payments,
        status_updates::update_payment_status,
        health::healthz,
        health::readyz,
        metrics::metrics,
    ),
    components(schemas(
        CreatePaymentBody,
        FinalStatus,
        HealthView,
        HistoryEntryView,
        IssuedKeyView,
        PaymentListView,
        PaymentStatusView,
        PaymentView,
        Problem,
        StatusUpdateBody,
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the merchant routes refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The description, built once.
static DOCUMENT: LazyLock<utoipa::openapi::OpenApi> = LazyLock::new(ApiDoc::openapi);

/// `GET /openapi.json`.
pub async fn openapi_json() -> impl IntoResponse {
    Json(&*DOCUMENT)
}
