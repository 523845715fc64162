//! The shutdown signal: SIGINT (Ctrl-C) or SIGTERM.

use tracing::{info, warn};

/// Resolves when the process is asked to stop, after logging which signal
/// asked.
pub async fn signal() {
    let name = tokio::select! {
        () = interrupt() => "SIGINT",
        () = terminate() => "SIGTERM",
    };
    info!(signal = name, "oncepay shutting down");
}

async fn interrupt() {
    if let Err(error) = tokio::signal::ctrl_c().await {
        warn!(%error, "cannot listen for SIGINT");
        std::future::pending::<()>().await;
    }
}

#[cfg(unix)]
async fn terminate() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut stream) => {
            stream.recv().await;
        }
        Err(error) => {
            warn!(%error, "cannot listen for SIGTERM");
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(not(unix))]
async fn terminate() {
    std::future::pending::<()>().await;
}
