//! Turning one setting's text into a typed value, or into an error that
//! names the variable, says what is wrong and what a good value looks like.
//!
//! Secret values (API keys, URLs that may hold passwords) are never echoed.

use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use oncepay_domain::MerchantId;
use secrecy::SecretString;

use super::sources::Source;

/// Largest number any setting accepts.
const MAX_NUMBER: u64 = 1_000_000_000_000;
use super::{ConfigError, Database, LogFormat};

/// Shortest API key accepted, in characters.
const MIN_API_KEY_CHARS: usize = 16;

/// One setting as given: its variable, its text and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Setting<'a> {
    /// The variable's name, such as `ONCEPAY_LISTEN`.
    pub name: &'static str,
    /// The value as text.
    pub text: &'a str,
    /// The layer it came from.
    pub source: &'a Source,
}

impl Setting<'_> {
    /// An error about this setting: `NAME: problem`, plus where the value
    /// came from when that was not the environment.
    pub fn fail(&self, problem: impl Display) -> ConfigError {
        match self.source {
            Source::Environment => ConfigError::new(format!("{}: {problem}", self.name)),
            other => ConfigError::new(format!("{}: {problem} ({other})", self.name)),
        }
    }

    /// An address to bind, such as `127.0.0.1:8080`.
    pub fn socket_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.text.parse().map_err(|_| {
            self.fail(format_args!(
                "{:?} is not a socket address like 127.0.0.1:8080",
                self.text
            ))
        })
    }

    /// A whole number of milliseconds, zero allowed.
    pub fn millis(&self) -> Result<Duration, ConfigError> {
        self.number("milliseconds").map(Duration::from_millis)
    }

    /// A whole, positive number of milliseconds.
    pub fn positive_millis(&self) -> Result<Duration, ConfigError> {
        self.positive("milliseconds").map(Duration::from_millis)
    }

    /// A whole, positive number of seconds.
    pub fn positive_secs(&self) -> Result<Duration, ConfigError> {
        self.positive("seconds").map(Duration::from_secs)
    }

    /// A whole, positive number of bytes.
    pub fn positive_bytes(&self) -> Result<usize, ConfigError> {
        let bytes = self.positive("bytes")?;
        usize::try_from(bytes).map_err(|_| self.fail("is too large for this machine"))
    }

    fn number(&self, unit: &str) -> Result<u64, ConfigError> {
        let digits_only = !self.text.is_empty() && self.text.bytes().all(|b| b.is_ascii_digit());
        let number: Option<u64> = digits_only.then(|| self.text.parse().ok()).flatten();
        let number = number.ok_or_else(|| {
            self.fail(format_args!(
                "{:?} is not a whole number of {unit}",
                self.text
            ))
        })?;
        // Durations become unix milliseconds added to "now": a bound keeps
        // that far from overflowing (10^12 seconds is some 31 000 years).
        if number > MAX_NUMBER {
            return Err(self.fail(format_args!("must be at most {MAX_NUMBER} {unit}")));
        }
        Ok(number)
    }

    fn positive(&self, unit: &str) -> Result<u64, ConfigError> {
        match self.number(unit)? {
            0 => Err(self.fail(format_args!("must be at least 1 ({unit})"))),
            number => Ok(number),
        }
    }

    /// A file path.
    pub fn path(&self) -> PathBuf {
        PathBuf::from(self.text)
    }

    /// `text` or `json`.
    pub fn log_format(&self) -> Result<LogFormat, ConfigError> {
        match self.text {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(self.fail(format_args!(
                "{other:?} is not a log format: use text or json"
            ))),
        }
    }

    /// A connection pool size: 1 to 1000.
    pub fn pool_size(&self) -> Result<u32, ConfigError> {
        let size = self.positive("connections")?;
        u32::try_from(size)
            .ok()
            .filter(|size| *size <= 1000)
            .ok_or_else(|| self.fail("must be between 1 and 1000 connections"))
    }

    /// `sqlite://PATH`, `sqlite:PATH` or `postgres://...`; MongoDB is named but
    /// refused in this build.
    pub fn database(&self) -> Result<Database, ConfigError> {
        let (scheme, rest) = self.text.split_once(':').unwrap_or((self.text, ""));
        match scheme {
            "sqlite" => {
                let path = rest.strip_prefix("//").unwrap_or(rest);
                if path.is_empty() {
                    return Err(self.fail("sqlite: needs a file, as in sqlite://oncepay.db"));
                }
                Ok(Database::Sqlite(PathBuf::from(path)))
            }
            // Without the `//` a typo would read the credentials as a
            // database name and send them, in clear, into error messages.
            "postgres" | "postgresql" if rest.starts_with("//") => {
                Ok(Database::Postgres(SecretString::from(self.text.to_owned())))
            }
            "postgres" | "postgresql" => Err(self.fail(format_args!(
                "must look like {scheme}://user:password@host:port/database"
            ))),
            "mongodb" | "mongodb+srv" if rest.starts_with("//") => {
                Ok(Database::Mongo(SecretString::from(self.text.to_owned())))
            }
            "mongodb" | "mongodb+srv" => Err(self.fail(format_args!(
                "must look like {scheme}://user:password@host:port/database"
            ))),
            // The URL itself may hold a password: name only its scheme.
            _ => Err(self.fail(format_args!(
                "scheme {scheme:?} is not a database URL like sqlite://oncepay.db"
            ))),
        }
    }

    /// `merchant:key,merchant:key`; keys are never echoed.
    pub fn api_keys(&self) -> Result<Vec<(MerchantId, SecretString)>, ConfigError> {
        let mut keys: Vec<(MerchantId, SecretString)> = Vec::new();
        let mut seen_keys: Vec<&str> = Vec::new();
        for (index, entry) in self.text.split(',').map(str::trim).enumerate() {
            let position = index + 1;
            let (merchant, key) = entry
                .split_once(':')
                .ok_or_else(|| self.fail(format_args!("entry {position} is not merchant:key")))?;
            let merchant = MerchantId::parse(merchant).ok_or_else(|| {
                // Not echoed: with merchant and key swapped, this is the key.
                self.fail(format_args!(
                    "entry {position} does not start with a merchant id: 1 to 64 of A-Z a-z 0-9 _ -"
                ))
            })?;
            // Entries are named by position, never by merchant: with merchant
            // and key swapped, the "merchant" would be the secret.
            if key.chars().count() < MIN_API_KEY_CHARS {
                let problem = format!("the key of entry {position} is shorter than 16 characters");
                return Err(self.fail(problem));
            }
            if key.chars().any(|c| c.is_whitespace() || c == ';') {
                return Err(self.fail(format_args!(
                    "the key of entry {position} holds a space or ';'; separate entries with ','"
                )));
            }
            if keys.iter().any(|(known, _)| known == &merchant) {
                return Err(self.fail(format_args!("merchant {merchant} is listed twice")));
            }
            if seen_keys.contains(&key) {
                return Err(self.fail(format_args!(
                    "merchant {merchant} reuses another merchant's key"
                )));
            }
            seen_keys.push(key);
            keys.push((merchant, SecretString::from(key)));
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting(name: &'static str, text: &'static str) -> Setting<'static> {
        Setting {
            name,
            text,
            source: &Source::Environment,
        }
    }

    #[test]
    fn an_error_names_the_variable_and_the_bad_value() {
        let error = setting("ONCEPAY_LISTEN", "foo")
            .socket_addr()
            .expect_err("not an address");
        assert_eq!(
            error.to_string(),
            r#"ONCEPAY_LISTEN: "foo" is not a socket address like 127.0.0.1:8080"#
        );
    }

    #[test]
    fn both_sqlite_spellings_name_a_file_and_other_stores_are_refused() {
        let path = |text| match setting("ONCEPAY_DATABASE_URL", text).database() {
            Ok(Database::Sqlite(path)) => Some(path),
            Ok(Database::Postgres(_) | Database::Mongo(_)) | Err(_) => None,
        };
        assert_eq!(path("sqlite://data/a.db"), Some(PathBuf::from("data/a.db")));
        assert_eq!(path("sqlite:///var/a.db"), Some(PathBuf::from("/var/a.db")));
        assert_eq!(path("sqlite:a.db"), Some(PathBuf::from("a.db")));
        assert_eq!(path("sqlite://"), None);

        let postgres = setting("ONCEPAY_DATABASE_URL", "postgres://u:hunter2@db/x").database();
        assert!(matches!(postgres, Ok(Database::Postgres(_))));
        let typo = setting("ONCEPAY_DATABASE_URL", "postgres:/u:hunter2@db/x").database();
        let typo = typo.expect_err("a single slash").to_string();
        assert!(!typo.contains("hunter2"), "{typo}");
        let mongo = setting("ONCEPAY_DATABASE_URL", "mongodb://u:hunter2@db/x").database();
        assert!(matches!(mongo, Ok(Database::Mongo(_))));
        let error = setting("ONCEPAY_DATABASE_URL", "mysql://u:hunter2@db/x").database();
        let message = error.expect_err("not a store").to_string();
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn api_keys_are_checked_without_ever_being_echoed() {
        let keys = setting(
            "ONCEPAY_API_KEYS",
            "acme:acme-key-0123456789, globex:globex-key-0123456789",
        );
        assert_eq!(keys.api_keys().map(|keys| keys.len()).ok(), Some(2));

        for bad in [
            "acme",
            "ac me:acme-key-0123456789",
            "acme:short-secret",
            "acme:acme-key-0123456789,acme:other-key-0123456789",
            "acme:same-key-0123456789,globex:same-key-0123456789",
            "SECRETkey0123456789abcdef:acme",
            "acme:key-0123456789aaaa;globex:key-0123456789bbbb",
        ] {
            let message = setting("ONCEPAY_API_KEYS", bad)
                .api_keys()
                .expect_err(bad)
                .to_string();
            assert!(message.starts_with("ONCEPAY_API_KEYS: "), "{message}");
            assert!(!message.contains("key-0123456789") && !message.contains("short-secret"));
            assert!(!message.contains("SECRETkey"), "{message}");
        }
    }

    #[test]
    fn numbers_so_large_that_time_arithmetic_would_overflow_are_refused() {
        let huge = setting("ONCEPAY_RETENTION_SECS", "9223372036854775807").positive_secs();
        let message = huge.expect_err("too large").to_string();
        assert!(
            message.starts_with("ONCEPAY_RETENTION_SECS: must be at most"),
            "{message}"
        );
        assert!(
            setting("ONCEPAY_LEASE_TTL_MS", "18446744073709551615")
                .positive_millis()
                .is_err()
        );
        assert!(
            setting("ONCEPAY_RETENTION_SECS", "1000000000000")
                .positive_secs()
                .is_ok()
        );
    }

    #[test]
    fn durations_are_whole_numbers_and_some_must_be_positive() {
        assert_eq!(
            setting("ONCEPAY_PSP_LATENCY_MS", "0").millis().ok(),
            Some(Duration::ZERO)
        );
        assert!(
            setting("ONCEPAY_LEASE_TTL_MS", "0")
                .positive_millis()
                .is_err()
        );
        assert!(setting("ONCEPAY_LEASE_TTL_MS", "-5").millis().is_err());
        assert!(setting("ONCEPAY_LEASE_TTL_MS", "1.5").millis().is_err());
    }
}
