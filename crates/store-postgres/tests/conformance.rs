//! The shared conformance suite, against a real PostgreSQL server.
//!
//! Each test gets its own schema, dropped when the test passes. The server is
//! `ONCEPAY_TEST_POSTGRES_URL` (default: the local one on 127.0.0.1:5432).
//! When it cannot be reached, the tests fail under `CI` and are skipped, with
//! a message saying so, anywhere else.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use oncepay_engine::DurableStore;
use oncepay_store_conformance::{StoreHarness, conformance_suite};
use oncepay_store_postgres::PostgresStore;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

struct PostgresHarness {
    admin: PgPool,
    options: PgConnectOptions,
    schema: String,
}

impl PostgresHarness {
    async fn new() -> Option<Self> {
        let url =
            std::env::var("ONCEPAY_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned());
        let connected = PgPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(Duration::from_secs(3))
            .connect(&url)
            .await;
        let admin = match connected {
            Ok(admin) => admin,
            Err(error) if std::env::var_os("CI").is_some() => {
                panic!("PostgreSQL is required in CI but {url} cannot be reached: {error}")
            }
            Err(error) => {
                eprintln!("skipped: PostgreSQL at {url} cannot be reached ({error})");
                return None;
            }
        };
        let schema = unique_schema();
        sqlx::raw_sql(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create the test's schema");
        let options: PgConnectOptions = url.parse().expect("a valid PostgreSQL URL");
        let options = options.options([("search_path", schema.as_str())]);
        Some(Self {
            admin,
            options,
            schema,
        })
    }
}

fn unique_schema() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("conformance_{}_{nanos}", std::process::id())
}

#[async_trait]
impl StoreHarness for PostgresHarness {
    async fn open(&self) -> Arc<dyn DurableStore> {
        let store = PostgresStore::connect_with(self.options.clone(), 8).await;
        Arc::new(store.expect("the store connects and migrates"))
    }

    async fn clean_up(&self) {
        let drop = format!("DROP SCHEMA {} CASCADE", self.schema);
        sqlx::raw_sql(&drop)
            .execute(&self.admin)
            .await
            .expect("drop the test's schema");
    }
}

conformance_suite!(PostgresHarness::new().await);
