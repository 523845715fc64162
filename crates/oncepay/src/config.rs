//! The server's settings: one typed [`Settings`], loaded and checked once at
//! startup.
//!
//! Layers, later ones winning: built-in defaults, the TOML file named by
//! `--config` or `ONCEPAY_CONFIG`, `ONCEPAY_*` environment variables, then
//! command-line flags ([`sources`]). Each value is then parsed into its type
//! ([`parse`]) and the settings are checked as a whole. Every error names the
//! variable it is about; the binary exits with status 2 on any of them.

mod parse;
mod sources;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use oncepay_domain::MerchantId;
use secrecy::SecretString;

use self::parse::Setting;
use self::sources::{RawSettings, Source};

/// Command-line flags for the common settings; the rest are variables.
#[derive(Debug, Default, Parser)]
#[command(name = "oncepay", version, about = "Exactly-once payments over HTTP.")]
pub struct Flags {
    /// Address to bind, like 127.0.0.1:8080 (ONCEPAY_LISTEN).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Durable store, like sqlite://oncepay.db (ONCEPAY_DATABASE_URL).
    #[arg(long, value_name = "URL")]
    pub database_url: Option<String>,
    /// A TOML file of settings (ONCEPAY_CONFIG).
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

/// A setting that cannot be used; the message names the variable.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

impl ConfigError {
    fn new(message: String) -> Self {
        Self(message)
    }
}

/// The durable store to open.
#[derive(Debug, Clone)]
pub enum Database {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server; the URL may hold a password, so it stays secret.
    Postgres(SecretString),
    /// A MongoDB deployment (database from the URL path, else `oncepay`).
    Mongo(SecretString),
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Compact text, for people.
    Text,
    /// One JSON object per line, for machines.
    Json,
}

/// Everything the server is configured with, checked.
#[derive(Debug)]
pub struct Settings {
    /// Address to bind.
    pub listen: SocketAddr,
    /// The durable store.
    pub database: Database,
    /// Most connections to a database server (PostgreSQL) per process.
    pub database_pool_size: u32,
    /// Redis (one URL) or Redis Cluster (several) for the primary check; the
    /// in-process check when `None`. May hold a password.
    pub redis_url: Option<SecretString>,
    /// What every Redis key oncepay writes starts with.
    pub redis_prefix: String,
    /// Merchants and their API keys; empty means loopback dev mode.
    pub api_keys: Vec<(MerchantId, SecretString)>,
    /// Key of `Oncepay-Signature`; status updates are refused without it.
    pub webhook_secret: Option<SecretString>,
    /// Delay of every simulated PSP call.
    pub psp_latency: Duration,
    /// The simulated PSP's ledger file; in memory when `None`.
    pub psp_ledger: Option<PathBuf>,
    /// How long idempotency records are kept.
    pub retention: Duration,
    /// How long a lease on a key lasts.
    pub lease_ttl: Duration,
    /// How long to wait for the PSP; shorter than the lease.
    pub psp_timeout: Duration,
    /// How often background recovery runs.
    pub recovery_interval: Duration,
    /// How long a pending payment waits before recovery asks the PSP again.
    pub redrive_after: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Text or JSON logs.
    pub log_format: LogFormat,
}

impl Settings {
    /// Loads the settings from every layer and checks them.
    ///
    /// # Errors
    ///
    /// The first setting that cannot be used, by variable name.
    pub fn load(flags: &Flags, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut raw = RawSettings::defaults();
        let config_file = flags
            .config
            .clone()
            .or_else(|| env("ONCEPAY_CONFIG").map(PathBuf::from));
        if let Some(path) = config_file.filter(|path| !path.as_os_str().is_empty()) {
            raw.apply_file(&path)?;
        }
        raw.apply_env(&env);
        if let Some(listen) = &flags.listen {
            raw.set("ONCEPAY_LISTEN", listen.clone(), Source::Flag("--listen"));
        }
        if let Some(url) = &flags.database_url {
            raw.set(
                "ONCEPAY_DATABASE_URL",
                url.clone(),
                Source::Flag("--database-url"),
            );
        }

        let settings = Self::parse(&raw)?;
        settings.check()?;
        Ok(settings)
    }

    fn parse(raw: &RawSettings) -> Result<Self, ConfigError> {
        let required = |name| setting(raw, name).expect("every required setting has a default");
        Ok(Self {
            listen: required("ONCEPAY_LISTEN").socket_addr()?,
            database: required("ONCEPAY_DATABASE_URL").database()?,
            database_pool_size: required("ONCEPAY_DATABASE_POOL_SIZE").pool_size()?,
            redis_url: setting(raw, "ONCEPAY_REDIS_URL").map(|s| SecretString::from(s.text)),
            redis_prefix: required("ONCEPAY_REDIS_PREFIX").text.to_owned(),
            api_keys: setting(raw, "ONCEPAY_API_KEYS")
                .map(|s| s.api_keys())
                .transpose()?
                .unwrap_or_default(),
            webhook_secret: setting(raw, "ONCEPAY_WEBHOOK_SECRET")
                .map(|s| SecretString::from(s.text)),
            psp_latency: required("ONCEPAY_PSP_LATENCY_MS").millis()?,
            psp_ledger: setting(raw, "ONCEPAY_PSP_LEDGER").map(|s| s.path()),
            retention: required("ONCEPAY_RETENTION_SECS").positive_secs()?,
            lease_ttl: required("ONCEPAY_LEASE_TTL_MS").positive_millis()?,
            psp_timeout: required("ONCEPAY_PSP_TIMEOUT_MS").positive_millis()?,
            recovery_interval: required("ONCEPAY_RECOVERY_INTERVAL_MS").positive_millis()?,
            redrive_after: required("ONCEPAY_REDRIVE_AFTER_MS").millis()?,
            max_body_bytes: required("ONCEPAY_MAX_BODY_BYTES").positive_bytes()?,
            log_format: required("ONCEPAY_LOG_FORMAT").log_format()?,
        })
    }

    /// Rules that tie settings together.
    fn check(&self) -> Result<(), ConfigError> {
        if self.psp_timeout >= self.lease_ttl {
            return Err(ConfigError::new(format!(
                "ONCEPAY_PSP_TIMEOUT_MS: {} ms must be shorter than ONCEPAY_LEASE_TTL_MS ({} ms), \
                 or a lease could lapse while its PSP call is still running",
                self.psp_timeout.as_millis(),
                self.lease_ttl.as_millis()
            )));
        }
        if self.is_dev_mode() && !self.listen.ip().is_loopback() {
            return Err(ConfigError::new(format!(
                "ONCEPAY_LISTEN: {} is not a loopback address, and no ONCEPAY_API_KEYS are set. \
                 Without API keys every caller acts as the \"default\" merchant, so oncepay only \
                 listens on loopback. Set ONCEPAY_API_KEYS=merchant:key,... (keys of 16 or more \
                 characters) to listen here, or listen on 127.0.0.1 or [::1].",
                self.listen
            )));
        }
        Ok(())
    }

    /// True when no API keys are configured.
    pub fn is_dev_mode(&self) -> bool {
        self.api_keys.is_empty()
    }
}

fn setting<'a>(raw: &'a RawSettings, name: &'static str) -> Option<Setting<'a>> {
    raw.get(name)
        .map(|(text, source)| Setting { name, text, source })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn load(flags: &Flags, env: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::load(flags, |name| env.get(name).cloned())
    }

    #[test]
    fn with_nothing_set_oncepay_serves_loopback_8080_in_dev_mode() {
        let settings = load(&Flags::default(), &[]).expect("the defaults are valid");

        assert_eq!(settings.listen, "127.0.0.1:8080".parse().expect("address"));
        assert!(
            matches!(&settings.database, Database::Sqlite(path) if path == &PathBuf::from("oncepay.db"))
        );
        assert_eq!(settings.database_pool_size, 16);
        assert!(settings.is_dev_mode());
        assert_eq!(settings.max_body_bytes, 65536);
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("oncepay.toml");
        let toml = "listen = \"127.0.0.1:1\"\npsp_latency_ms = 7\nlease_ttl_ms = 40000\n";
        std::fs::write(&file, toml).expect("write the file");
        let flags = Flags {
            listen: Some("127.0.0.1:3".to_owned()),
            config: Some(file),
            ..Flags::default()
        };

        let env = [
            ("ONCEPAY_LISTEN", "127.0.0.1:2"),
            ("ONCEPAY_PSP_LATENCY_MS", "9"),
        ];
        let settings = load(&flags, &env).expect("valid settings");

        assert_eq!(settings.listen.port(), 3);
        assert_eq!(settings.psp_latency, Duration::from_millis(9));
        assert_eq!(settings.lease_ttl, Duration::from_millis(40000));
    }

    #[test]
    fn dev_mode_refuses_a_public_address_but_api_keys_allow_it() {
        let public = [("ONCEPAY_LISTEN", "0.0.0.0:8080")];
        let refused = load(&Flags::default(), &public).expect_err("dev mode on 0.0.0.0");
        assert!(
            refused.to_string().starts_with("ONCEPAY_LISTEN: "),
            "{refused}"
        );

        let keyed = [public[0], ("ONCEPAY_API_KEYS", "acme:acme-key-0123456789")];
        assert!(load(&Flags::default(), &keyed).is_ok());
    }
}
