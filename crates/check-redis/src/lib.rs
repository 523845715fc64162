//! The Redis primary check of oncepay, for standalone Redis and Redis Cluster.
//!
//! [`RedisCheck`] implements the engine's [`FastCheck`] so that any number
//! of oncepay processes share one view of which keys are in flight and which
//! are answered. It only accelerates: the engine claims every key in the
//! durable store before calling the PSP, so a flushed, restarted or
//! unreachable Redis costs speed, never a second charge.
//!
//! A request's path through Redis: [`FastCheck::begin`] runs one script that
//! returns the key's entry or marks the key in flight (`scripts`); the engine
//! then either records the final payment with [`FastCheck::answer`], a plain
//! `SET` with an expiry that replaces the mark, or drops the mark with
//! [`FastCheck::clear`], a script that never deletes an answer. Key names
//! (`keys`) hide the idempotency key behind a digest; values (`entry`,
//! `payment`) are a tag plus JSON. `connection` opens either deployment and
//! `reachability` logs outages once instead of once per request.

mod connection;
mod entry;
mod keys;
mod payment;
mod reachability;
mod scripts;
#[cfg(feature = "test-support")]
pub mod test_support;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use oncepay_domain::{Payment, RequestFingerprint};
use oncepay_engine::{CheckError, FastBegin, FastCheck, KeyScope};
use redis::{ErrorKind, RedisError, RedisResult, ServerErrorKind};

use crate::connection::Connection;
use crate::keys::KeyNames;
use crate::reachability::Reachability;
use crate::scripts::Scripts;

/// Timeouts of a [`RedisCheck`].
#[derive(Debug, Clone)]
pub struct RedisCheckOptions {
    /// Longest wait for one call to Redis. A payment waits this long at most
    /// before it goes to the durable store instead, so it stays small.
    pub call_timeout: Duration,
    /// Longest wait for Redis to answer when the check is built.
    pub connect_timeout: Duration,
}

impl Default for RedisCheckOptions {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_millis(200),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// The primary check on a standalone Redis or a Redis Cluster.
pub struct RedisCheck {
    connection: Connection,
    keys: KeyNames,
    scripts: Scripts,
    reachability: Reachability,
    call_timeout: Duration,
}

impl fmt::Debug for RedisCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisCheck")
            .field("backend", &self.connection.backend())
            .field("keys", &self.keys)
            .field("call_timeout", &self.call_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisCheck {
    /// Connects with the default timeouts; see [`RedisCheck::connect_with`].
    ///
    /// # Errors
    ///
    /// As [`RedisCheck::connect_with`].
    pub async fn connect(url_list: &str, prefix: &str) -> Result<Self, CheckError> {
        Self::connect_with(url_list, prefix, RedisCheckOptions::default()).await
    }

    /// Connects to the Redis deployment `url_list` names, in the form of
    /// `ONCEPAY_REDIS_URL`: one `redis://host:port` for a standalone server,
    /// or a comma-separated list of node URLs for a Redis Cluster. Every
    /// Redis key starts with `prefix`, so several deployments or test runs
    /// can share a server.
    ///
    /// Once built, the check never needs rebuilding: after an outage the
    /// connection comes back by itself.
    ///
    /// # Errors
    ///
    /// When the URL list is empty or unusable, the prefix contains a brace,
    /// or Redis does not answer within `options.connect_timeout` (over TLS:
    /// also when its certificate is not trusted).
    pub async fn connect_with(
        url_list: &str,
        prefix: &str,
        options: RedisCheckOptions,
    ) -> Result<Self, CheckError> {
        let keys = KeyNames::new(prefix)?;
        let connection =
            Connection::open(url_list, options.call_timeout, options.connect_timeout).await?;
        Ok(Self {
            reachability: Reachability::new(connection.backend()),
            connection,
            keys,
            scripts: Scripts::default(),
            call_timeout: options.call_timeout,
        })
    }

    /// Runs one call to Redis within the call timeout and notes whether Redis
    /// answered.
    async fn call<T>(
        &self,
        step: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Result<T, CheckError> {
        if self.reachability.should_skip() {
            return Err(CheckError(format!(
                "redis {step}: skipped while Redis is unreachable"
            )));
        }
        let Ok(outcome) = tokio::time::timeout(self.call_timeout, call).await else {
            let reason = format!("no answer within {} ms", self.call_timeout.as_millis());
            self.reachability.lost(&reason);
            return Err(CheckError(format!("redis {step}: {reason}")));
        };
        match outcome {
            Ok(value) => {
                self.reachability.answered();
                Ok(value)
            }
            Err(error) => {
                if is_error_reply(&error) {
                    self.reachability.answered();
                } else {
                    self.reachability.lost(&error.to_string());
                }
                Err(CheckError(format!("redis {step}: {error}")))
            }
        }
    }
}

/// True when Redis replied, with an error of its own: a bug or a misconfigured
/// server, not an outage. Everything else counts as Redis being away.
fn is_error_reply(error: &RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Server(
            ServerErrorKind::ResponseError
                | ServerErrorKind::ExecAbort
                | ServerErrorKind::NoScript
                | ServerErrorKind::CrossSlot
                | ServerErrorKind::NoPerm
        ) | ErrorKind::Extension
            | ErrorKind::UnexpectedReturnType
    )
}

/// `SET ... PX 0` is an error in Redis; the shortest lifetime it takes is 1.
fn lifetime(ttl_millis: u64) -> u64 {
    ttl_millis.max(1)
}

#[async_trait]
impl FastCheck for RedisCheck {
    fn backend(&self) -> &'static str {
        self.connection.backend()
    }

    async fn begin(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        ttl_millis: u64,
    ) -> Result<FastBegin, CheckError> {
        let key = self.keys.entry(scope);
        let mut connection = self.connection.clone();
        let mut invocation = self.scripts.begin.key(&key);
        invocation
            .arg(entry::mark(fingerprint))
            .arg(lifetime(ttl_millis));

        let existing: Option<(String, i64)> = self
            .call("begin", invocation.invoke_async(&mut connection))
            .await?;

        match existing {
            None => Ok(FastBegin::Marked),
            Some((entry, remaining_millis)) => entry::read(&entry, remaining_millis),
        }
    }

    async fn answer(
        &self,
        scope: &KeyScope,
        fingerprint: &RequestFingerprint,
        payment: Arc<Payment>,
        ttl_millis: u64,
    ) -> Result<(), CheckError> {
        let key = self.keys.entry(scope);
        let value = entry::answer(fingerprint, &payment)?;
        let mut connection = self.connection.clone();
        let mut set = redis::cmd("SET");
        set.arg(&key).arg(value).arg("PX").arg(lifetime(ttl_millis));

        self.call("answer", set.query_async::<()>(&mut connection))
            .await
    }

    async fn clear(&self, scope: &KeyScope) -> Result<(), CheckError> {
        let key = self.keys.entry(scope);
        let mut connection = self.connection.clone();
        let mut invocation = self.scripts.clear.key(&key);
        invocation.arg(entry::MARK_TAG);

        // Nothing deleted means an answer was recorded or the mark lapsed;
        // either way there is no mark left to remove. The trait does not say
        // whose mark to clear, so when ours lapsed and another request marked
        // the key since, that mark goes: its duplicates then reach the
        // durable store, whose lease still turns them away.
        let _deleted: u64 = self
            .call("clear", invocation.invoke_async(&mut connection))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    #[test]
    fn lost_connections_are_outages_and_error_replies_are_not() {
        let refused = RedisError::from(io::Error::from(io::ErrorKind::ConnectionRefused));
        let wrong_type = RedisError::from((ErrorKind::UnexpectedReturnType, "not a string"));

        assert!(!is_error_reply(&refused));
        assert!(is_error_reply(&wrong_type));
    }

    #[test]
    fn a_zero_lifetime_becomes_the_shortest_redis_accepts() {
        assert_eq!(lifetime(0), 1);
        assert_eq!(lifetime(30_000), 30_000);
    }
}
