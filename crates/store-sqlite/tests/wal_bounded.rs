//! The write-ahead log stays small however long writes keep coming.
//!
//! A checkpoint running beside a busy writer never catches up, and SQLite
//! only starts the log over after one that did: without the writer's own
//! checkpoints the log grew by gigabytes in a soak run.

use std::sync::Arc;

use oncepay_engine::DurableStore;
use oncepay_store_conformance::fixtures::claim;
use oncepay_store_sqlite::SqliteStore;

/// Claims written by 32 tasks at once, far more pages than the log may hold.
const CLAIMS: usize = 30_000;
const TASKS: usize = 32;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_over_under_sustained_writes() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("oncepay.db");
    let store: Arc<dyn DurableStore> = Arc::new(SqliteStore::open(&path).expect("the store opens"));
    let writers: Vec<_> = (0..TASKS)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in (task..CLAIMS).step_by(TASKS) {
                    let now = 1_700_000_000_000 + n as i64;
                    let key = format!("wal-{n:06}");
                    store
                        .claim(claim(&key, 1000, "owner", now))
                        .await
                        .expect("the claim is written");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.expect("the writer task ends");
    }
    let wal = std::fs::metadata(dir.path().join("oncepay.db-wal"))
        .expect("the log exists while the store is open")
        .len();
    let database = std::fs::metadata(&path).expect("the database file").len();
    assert!(
        wal < 16 << 20,
        "the log holds {wal} bytes beside a {database}-byte database"
    );
    assert!(
        database > 16 << 20,
        "the writes reached the database file: {database} bytes"
    );
}
