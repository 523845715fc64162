//! The load generator of `bench/run`: keeps N HTTP/1.1 connections busy with
//! payment requests for a while and prints one JSON line of results.
//!
//! Scenarios: `replay` (one key, repeated), `first` (a fresh key each time),
//! `mixed` (90 % new keys, 9 % retries, 1 % reused keys with another body),
//! and `storm` (N identical requests at once; the time until all are
//! answered).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

#[derive(Parser, Debug, Clone)]
struct Args {
    /// `host:port` of the server.
    #[arg(long)]
    addr: String,
    /// replay, first, mixed or storm.
    #[arg(long)]
    scenario: String,
    /// Open connections (for storm: simultaneous requests).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// How long to drive load, in seconds (not for storm).
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// The body's payment method.
    #[arg(long, default_value = "pm_card_ok")]
    payment_method: String,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    errors: AtomicU64,
}

fn body(amount: u64, method: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"amount":{amount},"currency":"EUR","payment_method":"{method}"}}"#
    ))
}

/// The key and body of the `n`th request of a scenario.
fn request_for(args: &Args, run: u64, n: u64) -> (String, Bytes) {
    match args.scenario.as_str() {
        "replay" | "storm" => (
            format!("bench-{run}-same"),
            body(1000, &args.payment_method),
        ),
        "mixed" => match n % 100 {
            0 => (
                format!("bench-{run}-{}", n.saturating_sub(7)),
                body(999, &args.payment_method),
            ),
            1..=9 => (
                format!("bench-{run}-{}", n.saturating_sub(3)),
                body(1000, &args.payment_method),
            ),
            _ => (format!("bench-{run}-{n}"), body(1000, &args.payment_method)),
        },
        _ => (format!("bench-{run}-{n}"), body(1000, &args.payment_method)),
    }
}

/// An answer the scenario expects: 2xx always; 409 and 422 in mixed and storm.
fn expected(scenario: &str, status: u16) -> bool {
    (200..300).contains(&status)
        || (matches!(scenario, "mixed" | "storm") && matches!(status, 409 | 422))
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Result<Sender, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn send(sender: &mut Sender, addr: &str, key: &str, body: Bytes) -> Option<u16> {
    let request = Request::post("/v1/payments")
        .header("host", addr)
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(Full::new(body))
        .ok()?;
    sender.ready().await.ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}

/// One connection's loop until the deadline; returns its latencies (µs).
async fn drive(
    args: Arc<Args>,
    run: u64,
    next: Arc<AtomicU64>,
    counters: Arc<Counters>,
    until: Instant,
) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new(3).expect("a histogram");
    let Ok(mut sender) = connect(&args.addr).await else {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        return histogram;
    };
    while Instant::now() < until {
        let n = next.fetch_add(1, Ordering::Relaxed);
        let (key, body) = request_for(&args, run, n);
        let status = measured_send(&mut sender, &args, &key, body, &counters, &mut histogram).await;
        // No status at all: the connection broke; open another.
        if status.is_none() {
            match connect(&args.addr).await {
                Ok(fresh) => sender = fresh,
                Err(_) => break,
            }
        }
    }
    histogram
}

#[tokio::main]
async fn main() {
    let args = Arc::new(Args::parse());
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let counters = Arc::new(Counters::default());
    let next = Arc::new(AtomicU64::new(0));
    let storm = args.scenario == "storm";
    if args.scenario == "replay" {
        // The payment exists before the clock starts: replays are measured,
        // not the first execution and the 409s around it.
        let mut sender = connect(&args.addr)
            .await
            .expect("connect for the first request");
        let (key, body) = request_for(&args, run, 0);
        send(&mut sender, &args.addr, &key, body)
            .await
            .expect("the first request is answered");
    }
    let seconds = if storm { 0.0 } else { args.seconds };
    let ready = Arc::new(tokio::sync::Barrier::new(args.connections));
    // A storm sends one request per connection, all at once.
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|_| {
            let (args, next, counters) =
                (Arc::clone(&args), Arc::clone(&next), Arc::clone(&counters));
            if storm {
                let ready = Arc::clone(&ready);
                tokio::spawn(async move { storm_one(args, run, counters, ready).await })
            } else {
                tokio::spawn(drive(args, run, next, counters, until))
            }
        })
        .collect();
    let mut histogram = Histogram::<u64>::new(3).expect("a histogram");
    for task in tasks {
        if let Ok(part) = task.await {
            let _ = histogram.add(part);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sent = counters.sent.load(Ordering::Relaxed);
    let result = serde_json::json!({
        "scenario": args.scenario,
        "connections": args.connections,
        "requests": sent,
        "seconds": elapsed,
        "rps": sent as f64 / elapsed,
        "p50_ms": histogram.value_at_quantile(0.5) as f64 / 1000.0,
        "p99_ms": histogram.value_at_quantile(0.99) as f64 / 1000.0,
        "p999_ms": histogram.value_at_quantile(0.999) as f64 / 1000.0,
        "errors": counters.errors.load(Ordering::Relaxed),
    });
    println!("{result}");
}

/// One request of a storm, on its own connection. Every connection is open
/// before any request leaves (`ready`), so the figure is the server's answer
/// to 1000 simultaneous duplicates, not the kernel's accept queue.
async fn storm_one(
    args: Arc<Args>,
    run: u64,
    counters: Arc<Counters>,
    ready: Arc<tokio::sync::Barrier>,
) -> Histogram<u64> {
    let mut histogram = Histogram::<u64>::new(3).expect("a histogram");
    let connected = connect(&args.addr).await;
    ready.wait().await;
    let Ok(mut sender) = connected else {
        counters.errors.fetch_add(1, Ordering::Relaxed);
        return histogram;
    };
    let (key, body) = request_for(&args, run, 0);
    measured_send(&mut sender, &args, &key, body, &counters, &mut histogram).await;
    histogram
}

/// Sends one request, records its latency, and counts it (and counts it as
/// an error unless the scenario expects its status); returns the status.
async fn measured_send(
    sender: &mut Sender,
    args: &Args,
    key: &str,
    body: Bytes,
    counters: &Counters,
    histogram: &mut Histogram<u64>,
) -> Option<u16> {
    let started = Instant::now();
    let status = send(sender, &args.addr, key, body).await;
    let _ = histogram.record(started.elapsed().as_micros() as u64);
    counters.sent.fetch_add(1, Ordering::Relaxed);
    if !status.is_some_and(|s| expected(&args.scenario, s)) {
        counters.errors.fetch_add(1, Ordering::Relaxed);
    }
    status
}
