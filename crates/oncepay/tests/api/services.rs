//! Outside services some tests need: a PostgreSQL database of their own.
//!
//! The server is `ONCEPAY_TEST_POSTGRES_URL` (default: the local one). When it
//! cannot be reached the test fails under `CI` and is skipped, saying why,
//! anywhere else.

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
