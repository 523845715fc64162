//! The environment a `TestApp` starts oncepay with: loopback on a random
//! port, files inside the app's own directory, and whatever a test changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use tempfile::TempDir;

use crate::helpers::WEBHOOK_SECRET;

/// The environment an app is started with.
#[derive(Debug, Clone)]
pub struct Settings {
    env: BTreeMap<String, String>,
    pub(crate) bearer: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self::new()
    }
}

impl Settings {
    /// Dev mode (no API keys), the simulated PSP without latency, a webhook
    /// secret, and every file inside the app's own directory.
    pub fn new() -> Self {
        let mut env = BTreeMap::from([
            ("ONCEPAY_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "ONCEPAY_WEBHOOK_SECRET".to_owned(),
                WEBHOOK_SECRET.to_owned(),
            ),
            ("ONCEPAY_PSP_LATENCY_MS".to_owned(), "0".to_owned()),
        ]);
        env.extend(stack_env());
        Self { env, bearer: None }
    }

    /// Forces the embedded SQLite store and the in-process check, for the
    /// few tests that reach into SQLite's file.
    pub fn on_sqlite(self) -> Self {
        self.without("ONCEPAY_DATABASE_URL")
            .without("ONCEPAY_REDIS_URL")
            .without("ONCEPAY_REDIS_PREFIX")
    }

    /// Sets one `ONCEPAY_*` (or other) variable.
    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.env.insert(name.to_owned(), value.to_string());
        self
    }

    /// Leaves one variable unset.
    pub fn without(mut self, name: &str) -> Self {
        self.env.remove(name);
        self
    }

    /// Configures merchants; requests then carry the first merchant's key.
    pub fn merchants(mut self, merchants: &[(&str, &str)]) -> Self {
        let spec: Vec<String> = merchants.iter().map(|(m, k)| format!("{m}:{k}")).collect();
        self.bearer = merchants.first().map(|(_, key)| (*key).to_owned());
        self.env("ONCEPAY_API_KEYS", spec.join(","))
    }

    pub(crate) fn command(&self, dir: &TempDir) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_oncepay"));
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("ONCEPAY_")) {
            command.env_remove(name);
        }
        let database = database_path(dir);
        command
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env(
                "ONCEPAY_DATABASE_URL",
                format!("sqlite://{}", database.display()),
            )
            .env("ONCEPAY_PSP_LEDGER", ledger_path(dir))
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }
}

pub(crate) fn database_path(dir: &TempDir) -> PathBuf {
    dir.path().join("oncepay.db")
}

pub(crate) fn ledger_path(dir: &TempDir) -> PathBuf {
    dir.path().join("psp-ledger.db")
}

/// The stores every app of this run uses, from `ONCEPAY_TEST_STACK`:
/// `sqlite` (the default: a file in the app's directory, in-process check)
/// or `mongodb+redis` (a database of its own on `ONCEPAY_TEST_MONGODB_URL`
/// and a key prefix of its own on `ONCEPAY_TEST_REDIS_URL`). `.ci/run` runs
/// the suite once with each.
fn stack_env() -> Vec<(String, String)> {
    let stack = std::env::var("ONCEPAY_TEST_STACK").unwrap_or_default();
    if stack != "mongodb+redis" {
        return Vec::new();
    }
    let mongo = std::env::var("ONCEPAY_TEST_MONGODB_URL")
        .expect("ONCEPAY_TEST_STACK=mongodb+redis needs ONCEPAY_TEST_MONGODB_URL");
    let redis = std::env::var("ONCEPAY_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let unique = crate::helpers::fresh_key().replace('-', "_");
    vec![
        (
            "ONCEPAY_DATABASE_URL".to_owned(),
            format!("{}/{unique}", mongo.trim_end_matches('/')),
        ),
        ("ONCEPAY_REDIS_URL".to_owned(), redis),
        ("ONCEPAY_REDIS_PREFIX".to_owned(), format!("{unique}:")),
    ]
}
