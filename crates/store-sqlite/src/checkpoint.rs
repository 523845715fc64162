//! WAL checkpoints on their own thread, off the writer's path.
//!
//! SQLite normally copies the write-ahead log back into the database file
//! from inside a commit, which stalls every caller waiting on the group
//! writer. This thread does most of that copying instead, often, with its own
//! connection and in PASSIVE mode, which never waits for the writer or a
//! reader. Under steady writes it can never finish, though: new frames keep
//! arriving while it copies, and the log only starts over after a checkpoint
//! that found nothing left to copy. So the writer still checkpoints once the
//! log passes `WRITER_CHECKPOINT_FRAMES` (lib.rs), between two groups, where
//! it finishes quickly because this thread has already copied nearly all of
//! it.

use std::path::Path;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use oncepay_engine::StoreError;
use rusqlite::Connection;
use tracing::warn;

use crate::unavailable;

/// How often the log is copied into the database file.
const INTERVAL: Duration = Duration::from_millis(100);

/// Handle to the checkpoint thread; dropping it stops the thread.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(unavailable)?;
        connection
            .busy_timeout(Duration::from_secs(5))
            .map_err(unavailable)?;
        crate::limit_page_cache(&connection, crate::HELPER_CACHE_KIB)?;
        let (stop, stopped) = mpsc::channel();
        let thread = thread::Builder::new()
            .name("sqlite-checkpoint".to_owned())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(INTERVAL) {
                    checkpoint(&connection);
                }
            })
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot start checkpoints: {error}"))
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

fn checkpoint(connection: &Connection) {
    let outcome = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    if let Err(error) = outcome {
        warn!(%error, "WAL checkpoint failed; the log grows until one succeeds");
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
