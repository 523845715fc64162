//! The `TestApp`: a real `oncepay` process in a directory of its own, bound to
//! a random loopback port, with one typed call per endpoint the suite uses.
//!
//! Each app owns its database, its PSP ledger and its process. The process is
//! killed when the app is dropped; the directory goes with it. Server logs are
//! kept in memory and printed only when a test fails.

use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tempfile::TempDir;

pub use crate::answer::Answer;
pub use crate::client::{fetch, signature, unix_now};
pub use crate::ledger::Charge;
use crate::output::drain_output;
pub use crate::settings::Settings;
use crate::settings::{database_path, ledger_path};

/// The webhook secret every app is started with, unless a test removes it.
pub const WEBHOOK_SECRET: &str = "whsec_suite_secret";

/// How long a process may take to print its startup line or to exit.
const PROCESS_DEADLINE: Duration = Duration::from_secs(30);

/// A running (or stopped) oncepay process and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:<port>` of the current process.
    pub address: String,
    pub(crate) client: reqwest::Client,
    pub(crate) settings: Settings,
    child: Option<Child>,
    logs: Arc<Mutex<String>>,
    dir: TempDir,
}

/// How a process ended on its own.
#[derive(Debug)]
pub struct Exit {
    pub status: ExitStatus,
    /// Everything it wrote to stdout and stderr.
    pub output: String,
}

impl TestApp {
    /// Starts an app with the default settings.
    pub async fn spawn() -> Self {
        Self::spawn_with(Settings::new()).await
    }

    /// Starts an app and waits for its `oncepay listening` line.
    pub async fn spawn_with(settings: Settings) -> Self {
        let dir = tempfile::tempdir().expect("create the app's directory");
        let mut app = Self::in_dir(settings, dir);
        app.start().await;
        app
    }

    /// Runs the binary with `settings` when it is expected to refuse to start.
    pub async fn run_until_exit(settings: Settings) -> Exit {
        let dir = tempfile::tempdir().expect("create the app's directory");
        let mut child = settings.command(&dir).spawn().expect("spawn oncepay");
        let logs = Arc::new(Mutex::new(String::new()));
        let _ = drain_output(&mut child, &logs);

        let deadline = Instant::now() + PROCESS_DEADLINE;
        let status = loop {
            if let Some(status) = child.try_wait().expect("poll the process") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "oncepay kept running: {}",
                    logs.lock().expect("logs").as_str()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // Give the reader threads a moment to collect the last lines.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let output = logs.lock().expect("logs").clone();
        Exit { status, output }
    }

    /// An app whose directory starts with copies of an existing database
    /// and PSP ledger (files an earlier release wrote, say); its process is
    /// not started yet: see [`TestApp::launch`] and [`TestApp::restart`].
    pub fn prepared_on(settings: Settings, database: &Path, ledger: &Path) -> Self {
        let dir = tempfile::tempdir().expect("create the app's directory");
        std::fs::copy(database, database_path(&dir)).expect("copy the database");
        std::fs::copy(ledger, ledger_path(&dir)).expect("copy the PSP ledger");
        Self::in_dir(settings, dir)
    }

    fn in_dir(settings: Settings, dir: TempDir) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("build the HTTP client");
        Self {
            address: String::new(),
            client,
            settings,
            child: None,
            logs: Arc::default(),
            dir,
        }
    }

    async fn start(&mut self) {
        let listening = self.launch();

        let deadline = Instant::now() + PROCESS_DEADLINE;
        let addr = loop {
            match listening.try_recv() {
                Ok(addr) => break addr,
                Err(mpsc::TryRecvError::Empty) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(_) => panic!("oncepay did not start:\n{}", self.logs()),
            }
        };
        self.address = format!("http://{addr}");
    }

    /// Starts the process without waiting for it to listen; the receiver
    /// gets its address once it does.
    pub fn launch(&mut self) -> mpsc::Receiver<String> {
        assert!(self.child.is_none(), "the app is still running");
        let mut child = self
            .settings
            .command(&self.dir)
            .spawn()
            .expect("spawn oncepay");
        let listening = drain_output(&mut child, &self.logs);
        self.child = Some(child);
        listening
    }

    /// Kills the process with SIGKILL, as a crash would.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("the app is running");
        child.kill().expect("send SIGKILL");
        child.wait().expect("reap the killed process");
    }

    /// Sends SIGTERM and waits for the process to finish shutting down.
    pub async fn sigterm(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the app is running");
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill -TERM");
        assert!(sent.success(), "kill -TERM failed");

        let deadline = Instant::now() + PROCESS_DEADLINE;
        loop {
            if let Some(status) = child.try_wait().expect("poll the process") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("oncepay ignored SIGTERM:\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a new process on the same database and ledger (the first one,
    /// for an app from [`TestApp::prepared_on`]).
    pub async fn restart(&mut self) {
        self.start().await;
    }

    /// The server output collected so far.
    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").clone()
    }

    /// Every charge the simulated PSP has booked, oldest first.
    pub fn charges(&self) -> Vec<Charge> {
        crate::ledger::read(&ledger_path(&self.dir))
    }

    /// The SQLite file oncepay keeps its records and payments in.
    pub fn database_path(&self) -> std::path::PathBuf {
        database_path(&self.dir)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if thread::panicking() {
            eprintln!("---- oncepay output ----\n{}", self.logs());
        }
    }
}

/// A body the simulated PSP answers according to `payment_method`.
pub fn payment_body(payment_method: &str) -> Value {
    json!({"amount": 1250, "currency": "EUR", "payment_method": payment_method})
}

/// A key no other test uses.
pub fn fresh_key() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("suite-{nanos:x}-{n}")
}

/// Polls `probe` until it returns `Some`, failing the test after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
