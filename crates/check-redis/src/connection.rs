//! Connections to a standalone Redis or a Redis Cluster, behind one type.
//!
//! `ONCEPAY_REDIS_URL` names one server (`redis://host:port`), served through
//! a [`ConnectionManager`], or a comma-separated list of cluster nodes,
//! served through the cluster client. Both reconnect by themselves after an
//! outage; this module only opens them and bounds how long that may take.

use std::time::Duration;

use oncepay_engine::CheckError;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// Shortest wait before reconnecting to a standalone Redis.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);

/// Longest wait between reconnection attempts, which bounds how long the
/// check stays off after Redis is back.
const RECONNECT_MAX_DELAY: Duration = Duration::from_secs(1);

/// Reconnection attempts in one round; the next command starts a new round.
const RECONNECT_ATTEMPTS: usize = 6;

/// Retries of one command inside the cluster client (redirections, a node
/// failing over); the per-call timeout bounds them anyway.
const CLUSTER_RETRIES: u32 = 2;

/// How the nodes in `ONCEPAY_REDIS_URL` are deployed.
#[derive(Debug, PartialEq, Eq)]
enum Topology<'a> {
    /// One server.
    Standalone(&'a str),
    /// Seed nodes of a Redis Cluster.
    Cluster(Vec<&'a str>),
}

/// Reads `ONCEPAY_REDIS_URL`: one URL, or several for a cluster.
fn topology(url_list: &str) -> Result<Topology<'_>, CheckError> {
    let urls: Vec<&str> = url_list
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .collect();
    match urls.as_slice() {
        [] => Err(CheckError("the Redis URL is empty".to_owned())),
        [url] => Ok(Topology::Standalone(url)),
        _ => Ok(Topology::Cluster(urls)),
    }
}

/// A connection to whichever Redis deployment was configured. Cloning is
/// cheap and every clone shares the same sockets.
#[derive(Clone)]
pub(crate) enum Connection {
    /// One server, reconnected by the manager.
    Standalone(ConnectionManager),
    /// A cluster, rerouted and reconnected by the cluster client.
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects to the deployment `url_list` names, waiting at most
    /// `connect_timeout` for it to answer.
    ///
    /// Credentials in the URLs are passed to Redis and never appear in an
    /// error message.
    pub(crate) async fn open(
        url_list: &str,
        call_timeout: Duration,
        connect_timeout: Duration,
    ) -> Result<Self, CheckError> {
        // `rediss://` runs on rustls, with ring's cryptography named here
        // rather than left to whichever rustls features other crates turn
        // on. Installing fails only when a provider is already in place.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let opening = async {
            match topology(url_list)? {
                Topology::Standalone(url) => open_standalone(url, call_timeout, connect_timeout)
                    .await
                    .map(Self::Standalone),
                Topology::Cluster(urls) => open_cluster(urls, call_timeout, connect_timeout)
                    .await
                    .map(Self::Cluster),
            }
        };
        tokio::time::timeout(connect_timeout, opening)
            .await
            .map_err(|_| {
                CheckError(format!(
                    "Redis did not answer within {} ms",
                    connect_timeout.as_millis()
                ))
            })?
    }

    /// `redis` or `redis-cluster`, for logs.
    pub(crate) fn backend(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "redis",
            Self::Cluster(_) => "redis-cluster",
        }
    }
}

async fn open_standalone(
    url: &str,
    call_timeout: Duration,
    connect_timeout: Duration,
) -> Result<ConnectionManager, CheckError> {
    let client = redis::Client::open(url).map_err(|error| unusable_url(&error))?;
    // One plain attempt first: the manager retries quietly until the
    // timeout, which would hide why the server cannot be used (a refused
    // connection, a certificate that is not trusted, a wrong password).
    client
        .get_multiplexed_async_connection()
        .await
        .map_err(|error| CheckError(format!("could not connect to Redis: {error}")))?;
    let config = ConnectionManagerConfig::new()
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY)
        .set_number_of_retries(RECONNECT_ATTEMPTS)
        .set_connection_timeout(Some(connect_timeout))
        .set_response_timeout(Some(call_timeout));
    ConnectionManager::new_with_config(client, config)
        .await
        .map_err(|error| CheckError(format!("could not connect to Redis: {error}")))
}

async fn open_cluster(
    urls: Vec<&str>,
    call_timeout: Duration,
    connect_timeout: Duration,
) -> Result<ClusterConnection, CheckError> {
    let client = ClusterClientBuilder::new(urls)
        .connection_timeout(connect_timeout)
        .response_timeout(call_timeout)
        .retries(CLUSTER_RETRIES)
        .build()
        .map_err(|error| unusable_url(&error))?;
    client
        .get_async_connection()
        .await
        .map_err(|error| CheckError(format!("could not connect to the Redis Cluster: {error}")))
}

/// The client's parse errors are static texts, so they are safe to repeat;
/// the URL, which may hold a password, is not.
fn unusable_url(error: &redis::RedisError) -> CheckError {
    CheckError(format!("the Redis URL is not usable: {error}"))
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Standalone(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Standalone(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Standalone(connection) => connection.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_a_standalone_server() {
        assert_eq!(
            topology("redis://127.0.0.1:6379").expect("a valid URL"),
            Topology::Standalone("redis://127.0.0.1:6379")
        );
    }

    #[test]
    fn a_list_of_urls_is_a_cluster() {
        let parsed = topology("redis://h1:7000, redis://h2:7001,").expect("valid URLs");

        assert_eq!(
            parsed,
            Topology::Cluster(vec!["redis://h1:7000", "redis://h2:7001"])
        );
    }

    #[test]
    fn tls_urls_are_read_like_any_other() {
        let one = topology("rediss://cache.example:6380").expect("a TLS URL");
        let many = topology("rediss://h1:7000,rediss://h2:7001").expect("TLS URLs");

        assert_eq!(one, Topology::Standalone("rediss://cache.example:6380"));
        assert_eq!(
            many,
            Topology::Cluster(vec!["rediss://h1:7000", "rediss://h2:7001"])
        );
    }

    #[test]
    fn an_empty_list_is_refused() {
        assert!(topology(" , ").is_err());
    }
}
