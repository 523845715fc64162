//! Where settings come from, in layers: defaults, then the TOML file, then
//! `ONCEPAY_*` environment variables, then command-line flags.
//!
//! Every layer is read as raw text keyed by the variable's name, so a later
//! layer simply overwrites an earlier one and every error, whatever layer
//! the value came from, names the variable. Turning text into typed values
//! is left to `parse`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use super::ConfigError;

/// Every setting's variable name and its default, if it has one.
pub const VARIABLES: &[(&str, Option<&str>)] = &[
    ("ONCEPAY_LISTEN", Some("127.0.0.1:8080")),
    ("ONCEPAY_DATABASE_URL", Some("sqlite://oncepay.db")),
    ("ONCEPAY_DATABASE_POOL_SIZE", Some("16")),
    ("ONCEPAY_REDIS_URL", None),
    ("ONCEPAY_REDIS_PREFIX", Some("oncepay:")),
    ("ONCEPAY_API_KEYS", None),
    ("ONCEPAY_WEBHOOK_SECRET", None),
    ("ONCEPAY_PSP_LATENCY_MS", Some("0")),
    ("ONCEPAY_PSP_LEDGER", None),
    ("ONCEPAY_RETENTION_SECS", Some("86400")),
    ("ONCEPAY_LEASE_TTL_MS", Some("30000")),
    ("ONCEPAY_PSP_TIMEOUT_MS", Some("10000")),
    ("ONCEPAY_RECOVERY_INTERVAL_MS", Some("1000")),
    ("ONCEPAY_REDRIVE_AFTER_MS", Some("30000")),
    ("ONCEPAY_MAX_BODY_BYTES", Some("65536")),
    ("ONCEPAY_LOG_FORMAT", Some("text")),
];

/// The prefix of every variable; TOML keys are the rest, lower-cased.
const PREFIX: &str = "ONCEPAY_";

/// The layer a value came from, named in error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Built in.
    Default,
    /// A key of the TOML file.
    File(String),
    /// The environment.
    Environment,
    /// A command-line flag.
    Flag(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => f.write_str("the default"),
            Self::File(path) => write!(f, "set in {path}"),
            Self::Environment => f.write_str("set in the environment"),
            Self::Flag(flag) => write!(f, "set by {flag}"),
        }
    }
}

/// Every setting as text, with where its value came from.
#[derive(Debug, Default)]
pub struct RawSettings {
    values: BTreeMap<&'static str, (String, Source)>,
}

impl RawSettings {
    /// The built-in defaults.
    pub fn defaults() -> Self {
        let mut raw = Self::default();
        for (name, default) in VARIABLES {
            if let Some(value) = default {
                raw.set(name, (*value).to_owned(), Source::Default);
            }
        }
        raw
    }

    /// Overwrites one setting. An empty value counts as not given in this
    /// layer, as shells make it easy to export a variable by accident.
    pub fn set(&mut self, name: &'static str, value: String, source: Source) {
        if !value.is_empty() {
            self.values.insert(name, (value, source));
        }
    }

    /// A setting's text and source, when set.
    pub fn get(&self, name: &str) -> Option<(&str, &Source)> {
        self.values
            .get(name)
            .map(|(value, source)| (value.as_str(), source))
    }

    /// Lays the keys of a TOML file over the settings.
    ///
    /// # Errors
    ///
    /// The file cannot be read, is not TOML, has an unknown key, or a value
    /// that is neither a string nor an integer.
    pub fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| {
            ConfigError::new(format!("ONCEPAY_CONFIG: cannot read {shown}: {error}"))
        })?;
        let table: toml::Table = text.parse().map_err(|error| {
            ConfigError::new(format!("ONCEPAY_CONFIG: {shown} is not TOML: {error}"))
        })?;
        for (key, value) in table {
            let name = variable_for_key(&key).ok_or_else(|| {
                ConfigError::new(format!("ONCEPAY_CONFIG: unknown key `{key}` in {shown}"))
            })?;
            let value = match value {
                toml::Value::String(text) => text,
                toml::Value::Integer(number) => number.to_string(),
                _ => {
                    let problem =
                        format!("{name}: `{key}` in {shown} must be a string or an integer");
                    return Err(ConfigError::new(problem));
                }
            };
            self.set(name, value, Source::File(shown.clone()));
        }
        Ok(())
    }

    /// Lays the known `ONCEPAY_*` variables of an environment over the settings.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) {
        for (name, _) in VARIABLES {
            if let Some(value) = lookup(name) {
                self.set(name, value, Source::Environment);
            }
        }
    }
}

/// The variable a TOML key stands for: `listen` → `ONCEPAY_LISTEN`.
fn variable_for_key(key: &str) -> Option<&'static str> {
    VARIABLES
        .iter()
        .map(|(name, _)| *name)
        .find(|name| name[PREFIX.len()..].eq_ignore_ascii_case(key) && key == key.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_keys_are_the_variable_names_without_prefix_in_lower_case() {
        assert_eq!(variable_for_key("listen"), Some("ONCEPAY_LISTEN"));
        assert_eq!(
            variable_for_key("psp_timeout_ms"),
            Some("ONCEPAY_PSP_TIMEOUT_MS")
        );
        assert_eq!(variable_for_key("LISTEN"), None);
        assert_eq!(variable_for_key("config"), None);
    }

    #[test]
    fn a_later_layer_wins_unless_its_value_is_empty() {
        let mut raw = RawSettings::defaults();
        raw.apply_env(|name| (name == "ONCEPAY_LISTEN").then(|| "127.0.0.1:9".to_owned()));
        raw.set("ONCEPAY_PSP_LATENCY_MS", String::new(), Source::Environment);

        assert_eq!(
            raw.get("ONCEPAY_LISTEN"),
            Some(("127.0.0.1:9", &Source::Environment))
        );
        assert_eq!(
            raw.get("ONCEPAY_PSP_LATENCY_MS"),
            Some(("0", &Source::Default))
        );
    }
}
