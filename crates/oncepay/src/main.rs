//! The oncepay server binary.
//!
//! `main` stays thin: read the [`config`], start [`telemetry`], build the
//! [`app`] and run it until a [`shutdown`] signal. Configuration errors exit
//! with status 2 and a message naming the variable; failures to start or
//! serve exit with status 1.

mod app;
mod config;
mod shutdown;
mod telemetry;

use std::process::ExitCode;

use clap::Parser;
use tracing::error;

use crate::app::Application;
use crate::config::{Flags, Settings};

/// mimalloc rather than the system allocator: a request allocates and frees
/// many small buffers across threads, where glibc's malloc spent a sixth of
/// the CPU of a replay (perf, docs/benchmarks.md) and kept arenas per thread.
/// Its v2 series (Cargo.toml): v3 holds freed pages for a second before
/// returning them, and back-to-back storms of 1000 requests then peaked at
/// 68-72 MiB instead of 54-58 MiB, at the same speed. Built with `no_thp`:
/// otherwise it asks the kernel for transparent huge pages on its arenas,
/// and each 2 MiB page counts whole in RSS as soon as one byte of it is
/// touched (16 MiB of huge pages at start; 56 MiB against 28 MiB with 1000
/// connections that each made one request), with no speed to show for it.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let flags = Flags::parse();
    let settings = match Settings::load(&flags, |name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(problem) => {
            eprintln!("oncepay: {problem}");
            return ExitCode::from(2);
        }
    };
    let _log_writer = telemetry::init(settings.log_format);

    match run(settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            error!(
                error = format!("{failure:#}"),
                "oncepay stopped on an error"
            );
            ExitCode::FAILURE
        }
    }
}

async fn run(settings: Settings) -> anyhow::Result<()> {
    Application::build(settings).await?.run().await
}
