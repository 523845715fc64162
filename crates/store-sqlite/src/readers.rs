//! Read-only connections, reused across requests.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use oncepay_engine::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::unavailable;
use crate::writer::Horizon;

/// Most idle connections kept.
const MAX_IDLE: usize = 8;

/// A small pool of read-only connections to the store's file.
#[derive(Debug)]
pub struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// The writer's progress: a read is answered only once what it saw is
    /// on disk.
    horizon: Arc<Horizon>,
}

impl ReaderPool {
    pub fn new(path: &Path, horizon: Arc<Horizon>) -> Self {
        Self {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
            horizon,
        }
    }

    /// Runs `read` on a pooled connection, off the async threads.
    pub async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let connection = match self.take() {
            Some(connection) => connection,
            None => self.connect()?,
        };
        let (connection, result) = tokio::task::spawn_blocking(move || {
            let result = read(&connection);
            (connection, result)
        })
        .await
        .map_err(|error| StoreError::Unavailable(format!("read task failed: {error}")))?;
        self.give_back(connection);
        self.horizon.settle_read().await?;
        result
    }

    fn connect(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(&self.path, flags).map_err(unavailable)?;
        connection
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(unavailable)?;
        crate::limit_page_cache(&connection, crate::HELPER_CACHE_KIB)?;
        Ok(connection)
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().ok()?.pop()
    }

    fn give_back(&self, connection: Connection) {
        if let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(connection);
        }
    }
}
