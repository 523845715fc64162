//! The shared conformance suite, against real SQLite files.

use std::sync::Arc;

use async_trait::async_trait;
use oncepay_engine::DurableStore;
use oncepay_store_conformance::{StoreHarness, conformance_suite};
use oncepay_store_sqlite::SqliteStore;

/// A temporary directory holding this test's database file.
struct SqliteHarness {
    dir: tempfile::TempDir,
}

impl SqliteHarness {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("a temporary directory"),
        }
    }
}

#[async_trait]
impl StoreHarness for SqliteHarness {
    async fn open(&self) -> Arc<dyn DurableStore> {
        let path = self.dir.path().join("oncepay.db");
        Arc::new(SqliteStore::open(&path).expect("the store opens"))
    }
}

conformance_suite!(Some(SqliteHarness::new()));
