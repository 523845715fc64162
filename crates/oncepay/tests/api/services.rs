//! Outside services some tests need: a PostgreSQL database of their own, and
//! a key prefix of their own on the shared Redis.
//!
//! The servers are `ONCEPAY_TEST_POSTGRES_URL` and `ONCEPAY_TEST_REDIS_URL`
//! (default: the local ones). When one cannot be reached the test fails under
//! `CI` and is skipped, saying why, anywhere else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::postgres::PgPoolOptions;
use sqlx::{Executor, PgPool};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A database created for one test and dropped with it.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The URL oncepay processes are given.
    pub url: String,
}

async fn admin(url: &str) -> Result<PgPool, sqlx::Error> {
    PgPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(3))
        .connect(url)
        .await
}

impl TestDatabase {
    /// Creates a fresh database, or `None` (after saying why) when
    /// PostgreSQL is unreachable outside CI.
    pub async fn create() -> Option<Self> {
        let admin_url =
            std::env::var("ONCEPAY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let pool = match admin(&admin_url).await {
            Ok(pool) => pool,
            Err(error) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL is required in CI but {admin_url} cannot be reached: {error}")
            }
            Err(error) => {
                eprintln!("skipped: PostgreSQL at {admin_url} cannot be reached ({error})");
                return None;
            }
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("oncepay_test_{}_{nanos}", std::process::id());
        pool.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create the test's database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(base, _)| base);
        let url = format!("{base}/{name}");
        Some(Self {
            admin_url,
            name,
            url,
        })
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop cannot await; a short-lived runtime on its own thread can.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let pool = admin(&admin_url).await.map_err(std::io::Error::other)?;
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                pool.execute(sql.as_str())
                    .await
                    .map_err(std::io::Error::other)?;
                Ok::<(), std::io::Error>(())
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop the test database {}", self.name);
        }
    }
}

/// A key prefix on the shared Redis for one test; its keys are deleted by
/// [`TestRedisPrefix::clean_up`].
pub struct TestRedisPrefix {
    /// The Redis URL oncepay processes are given.
    pub url: String,
    /// The prefix oncepay processes are given.
    pub prefix: String,
    client: redis::Client,
}

impl TestRedisPrefix {
    /// A fresh prefix, or `None` (after saying why) when Redis is unreachable
    /// outside CI.
    pub async fn new() -> Option<Self> {
        let url = std::env::var("ONCEPAY_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
        let reachable = async {
            let client = redis::Client::open(url.as_str())?;
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await?;
            Ok::<_, redis::RedisError>(client)
        };
        let client = match tokio::time::timeout(Duration::from_secs(3), reachable).await {
            Ok(Ok(client)) => client,
            failure if std::env::var_os("CI").is_some() => {
                panic!("Redis is required in CI but {url} cannot be reached: {failure:?}")
            }
            failure => {
                eprintln!("skipped: Redis at {url} cannot be reached ({failure:?})");
                return None;
            }
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let prefix = format!("oncepay-test-{}-{nanos}:", std::process::id());
        Some(Self {
            url,
            prefix,
            client,
        })
    }

    /// Deletes every key under the prefix.
    pub async fn clean_up(&self) {
        let mut connection = self
            .client
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis to clean up");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}*", self.prefix))
            .query_async(&mut connection)
            .await
            .expect("list the test's keys");
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<i64>(&mut connection)
                .await
                .expect("delete the test's keys");
        }
    }
}

/// Fails under `CI`, or says why the test is skipped and returns `None`.
fn required_or_skipped<T>(what: &str, outcome: std::io::Result<T>) -> Option<T> {
    match outcome {
        Ok(value) => Some(value),
        Err(error) if std::env::var_os("CI").is_some() => {
            panic!("{what} is required in CI but could not start: {error}")
        }
        Err(error) => {
            eprintln!("skipped: {what} could not start ({error}); is redis-server installed?");
            None
        }
    }
}

/// A throwaway `redis-server` of this test's own.
pub fn local_redis() -> Option<oncepay_check_redis::test_support::LocalRedis> {
    required_or_skipped(
        "a local redis-server",
        oncepay_check_redis::test_support::LocalRedis::start(),
    )
}

/// A throwaway `redis-server` of this test's own that also speaks TLS.
pub fn local_redis_tls() -> Option<oncepay_check_redis::test_support::LocalRedis> {
    required_or_skipped(
        "a local redis-server with TLS (and openssl)",
        oncepay_check_redis::test_support::LocalRedis::start_tls(),
    )
}

/// A throwaway Redis Cluster of `masters` nodes.
pub fn local_redis_cluster(
    masters: usize,
) -> Option<oncepay_check_redis::test_support::LocalRedisCluster> {
    required_or_skipped(
        "a local Redis Cluster",
        oncepay_check_redis::test_support::LocalRedisCluster::start(masters),
    )
}

/// A MongoDB database name of its own on `ONCEPAY_TEST_MONGODB_URL`. There
/// is no default server: `.ci/run` starts one (see `.ci/mongo`).
pub struct TestMongoDatabase {
    /// The URL oncepay processes are given, naming the test's database.
    pub url: String,
}

impl TestMongoDatabase {
    /// A fresh database name, or `None` (after saying why) when no MongoDB
    /// server is configured outside CI. oncepay creates the database.
    pub fn create() -> Option<Self> {
        let Ok(base) = std::env::var("ONCEPAY_TEST_MONGODB_URL") else {
            assert!(
                std::env::var_os("CI").is_none(),
                "MongoDB is required in CI but ONCEPAY_TEST_MONGODB_URL is not set"
            );
            eprintln!("skipped: ONCEPAY_TEST_MONGODB_URL is not set (.ci/mongo start gives one)");
            return None;
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!("oncepay_test_{}_{nanos}", std::process::id());
        let (base, query) = base
            .split_once('?')
            .map_or((base.as_str(), None), |(b, q)| (b, Some(q)));
        let url = match query {
            Some(query) => format!("{}/{name}?{query}", base.trim_end_matches('/')),
            None => format!("{}/{name}", base.trim_end_matches('/')),
        };
        Some(Self { url })
    }
}
