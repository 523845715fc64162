//! Logging: `tracing` events to stdout, as text or JSON lines.
//!
//! The level filter comes from `RUST_LOG` (default `info`). Colours are used
//! only on a terminal and never when `NO_COLOR` is set, so piped output stays
//! plain text that scripts and tests can read.
//!
//! Lines are formatted where they happen and written by a thread of their
//! own, in batches: one `write` per line on the request path, each taking
//! the lock on stdout, cost a quarter of the throughput at the default
//! level (docs/benchmarks.md). The queue never drops a line: when it is
//! full, whoever logs waits, as with a slow stdout before. It is short so
//! that a stdout that stops reading costs little memory (128k lines held
//! 65 MiB), and so that on exit, when the writer gets a second to finish,
//! what is left fits in that second even for a slow reader.

use std::io::{BufWriter, IsTerminal};

use tracing::level_filters::LevelFilter;
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Most lines waiting for the log writer, some 400 KiB.
const QUEUED_LINES: usize = 1024;

/// Installs the global subscriber; call once, before anything logs. Keep
/// the guard until the process ends: dropping it writes out the lines still
/// queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> WorkerGuard {
    // PostgreSQL's notices ("relation already exists, skipping" at every
    // start) are noise at info level; they stay visible with RUST_LOG.
    let directives =
        std::env::var("RUST_LOG").unwrap_or_else(|_| "info,sqlx::postgres::notice=warn".to_owned());
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse_lossy(directives);
    let (writer, guard) = NonBlockingBuilder::default()
        .buffered_lines_limit(QUEUED_LINES)
        .lossy(false)
        .thread_name("log-writer")
        .finish(BufWriter::new(std::io::stdout()));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.with_ansi(use_colour()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    guard
}

fn use_colour() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}
