//! Typed calls to every endpoint the suite exercises, sent by a `TestApp`
//! with its default API key unless a call names another one (or none).

use std::time::{SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::answer::Answer;
use crate::helpers::{TestApp, WEBHOOK_SECRET};

/// Sends a request built beforehand, from any task, and reads the whole
/// answer; an error means the connection failed.
pub async fn fetch(request: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
    let response = request.send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

impl TestApp {
    /// A signature header value for `body`, made now with the suite's secret.
    pub fn sign(&self, body: &str) -> String {
        signature(WEBHOOK_SECRET, unix_now(), body)
    }

    /// A request carrying the app's default API key, if it has one.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request_by(self.settings.bearer.as_deref(), method, path)
    }

    /// A request carrying `api_key` as bearer, or no credentials at all.
    pub fn request_by(
        &self,
        api_key: Option<&str>,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::RequestBuilder {
        let builder = self
            .client
            .request(method, format!("{}{path}", self.address));
        match api_key {
            Some(key) => builder.bearer_auth(key),
            None => builder,
        }
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        self.try_send(request).await.expect("oncepay answers")
    }

    /// Sends a request; an error means the connection failed (a crash, say).
    pub async fn try_send(&self, request: reqwest::RequestBuilder) -> reqwest::Result<Answer> {
        fetch(request).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.request(reqwest::Method::GET, path)).await
    }

    /// `POST /v1/payments` with one `Idempotency-Key` header.
    pub fn payment_request(&self, key: &str, body: &Value) -> reqwest::RequestBuilder {
        self.payment_request_raw(&[key], &body.to_string())
    }

    /// `POST /v1/payments` with any number of key headers and a raw body.
    pub fn payment_request_raw(&self, keys: &[&str], body: &str) -> reqwest::RequestBuilder {
        self.payment_request_by(self.settings.bearer.as_deref(), keys, body)
    }

    /// `POST /v1/payments` as the merchant holding `api_key` (or nobody).
    pub fn payment_request_by(
        &self,
        api_key: Option<&str>,
        keys: &[&str],
        body: &str,
    ) -> reqwest::RequestBuilder {
        let mut headers = HeaderMap::new();
        for key in keys {
            let value = HeaderValue::from_bytes(key.as_bytes()).expect("a sendable header");
            headers.append("idempotency-key", value);
        }
        self.request_by(api_key, reqwest::Method::POST, "/v1/payments")
            .headers(headers)
            .header("content-type", "application/json")
            .body(body.to_owned())
    }

    pub async fn post_payment(&self, key: &str, body: &Value) -> Answer {
        self.send(self.payment_request(key, body)).await
    }

    pub async fn post_payment_raw(&self, keys: &[&str], body: &str) -> Answer {
        self.send(self.payment_request_raw(keys, body)).await
    }

    /// `POST /v1/payments` as the merchant holding `api_key` (or nobody).
    pub async fn post_payment_by(&self, api_key: Option<&str>, key: &str, body: &Value) -> Answer {
        let request = self.payment_request_by(api_key, &[key], &body.to_string());
        self.send(request).await
    }

    pub async fn get_payment(&self, id: &str) -> Answer {
        self.get(&format!("/v1/payments/{id}")).await
    }

    pub async fn get_by(&self, api_key: Option<&str>, path: &str) -> Answer {
        self.send(self.request_by(api_key, reqwest::Method::GET, path))
            .await
    }

    /// `GET /v1/payments` with a raw query string.
    pub async fn list_payments(&self, query: &str) -> Answer {
        self.get(&format!("/v1/payments?{query}")).await
    }

    pub async fn issue_key(&self) -> Answer {
        self.send(self.request(reqwest::Method::POST, "/v1/idempotency-keys"))
            .await
    }

    /// `POST /v1/payments/{id}/status` with a raw body and signature header.
    pub async fn post_status(&self, id: &str, body: &str, signature: Option<&str>) -> Answer {
        let path = format!("/v1/payments/{id}/status");
        let mut request = self
            .request(reqwest::Method::POST, &path)
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("oncepay-signature", signature);
        }
        self.send(request).await
    }

    /// A correctly signed status update.
    pub async fn settle(&self, id: &str, event_id: &str, status: &str) -> Answer {
        let body = json!({"event_id": event_id, "status": status}).to_string();
        self.post_status(id, &body, Some(&self.sign(&body))).await
    }

    /// The sum of every sample of the counter `name` whose labels contain
    /// `labels` (`""` for all samples); 0 when it has none yet.
    pub async fn metric(&self, name: &str, labels: &str) -> f64 {
        let text = self.get("/metrics").await.text();
        crate::answer::sum_samples(&text, name, labels)
    }
}

/// `t=<t>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
pub fn signature(secret: &str, t: u64, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key size");
    mac.update(format!("{t}.{body}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub fn unix_now() -> u64 {
    let now = SystemTime::now().duration_since(UNIX_EPOCH);
    now.expect("the clock is after 1970").as_secs()
}
