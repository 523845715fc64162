//! The baseline: a bare axum server answering every POST with a fixed body,
//! the HTTP layer's own limit on this machine. `bench/run` measures it in the
//! same run as oncepay, so every figure is also a ratio to it.

use axum::Router;
use axum::routing::post;

const BODY: &str = r#"{"id":"pay_00000000000000000000000000000000","status":"succeeded"}"#;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("baseline listening addr={}", listener.local_addr()?);
    let app = Router::new().route("/v1/payments", post(|| async { BODY }));
    axum::serve(listener, app).await
}
