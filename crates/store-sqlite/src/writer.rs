//! The writer thread and its group commit.

use std::thread;

use oncepay_engine::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

use crate::execute;

/// Most writes committed together.
const MAX_GROUP: usize = 512;

/// One write, run inside the group's transaction.
trait WriteJob: Send {
    /// Runs the write; false when it failed. A write may run twice: a group
    /// in which one write failed is rolled back and run again (see
    /// `run_group`), so a write depends on nothing but the database.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller once the group's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct TypedJob<T, F> {
    work: F,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send,
    F: FnMut(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let result = (self.work)(connection);
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let missing = || Err(StoreError::Unavailable("write was not run".to_owned()));
        let answer = match commit {
            Ok(()) => self.result.unwrap_or_else(missing),
            Err(error) => Err(error),
        };
        // The caller may have gone away; the write stands either way.
        let _ = self.reply.send(answer);
    }
}

/// Handle to the writer thread. Dropping it lets the thread drain its queue,
/// commit and exit.
#[derive(Debug)]
pub struct Writer {
    queue: Option<mpsc::UnboundedSender<Box<dyn WriteJob>>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Drop for Writer {
    /// Closes the queue and waits for the thread to commit what it holds and
    /// close the connection, so a shutdown leaves a clean file.
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for dyn WriteJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteJob")
    }
}

impl Writer {
    /// Starts the thread that owns the write connection.
    pub fn start(connection: Connection) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::unbounded_channel();
        let thread = thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || run(connection, jobs))
            .map_err(|error| StoreError::Unavailable(format!("cannot start writer: {error}")))?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Runs `work` in the next group and returns its result after commit.
    pub async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnMut(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            work,
            result: None,
            reply,
        };
        self.queue
            .as_ref()
            .ok_or_else(|| StoreError::Unavailable("the writer has stopped".to_owned()))?
            .send(Box::new(job))
            .map_err(|_| StoreError::Unavailable("the writer has stopped".to_owned()))?;
        answer
            .await
            .map_err(|_| StoreError::Unavailable("the writer dropped a write".to_owned()))?
    }
}

fn run(connection: Connection, mut jobs: mpsc::UnboundedReceiver<Box<dyn WriteJob>>) {
    while let Some(first) = jobs.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        commit_group(&connection, group);
    }
}

fn commit_group(connection: &Connection, mut group: Vec<Box<dyn WriteJob>>) {
    let outcome = run_group(connection, &mut group);
    if let Err(failure) = &outcome {
        error!(error = %failure, writes = group.len(), "group commit failed, rolled back");
        let _ = connection.execute_batch("ROLLBACK");
    }
    for job in group {
        job.finish(outcome.clone());
    }
}

/// Runs the group's writes in one transaction and commits it.
///
/// Writes almost never fail, so they first run back to back. If one fails,
/// whatever it wrote before failing must not be committed: the transaction is
/// rolled back and the group runs again with each write in its own
/// savepoint, so the failed write leaves nothing and the others stand.
/// (Savepoints on every write would cost a copy of each page it touches.)
fn run_group(connection: &Connection, group: &mut [Box<dyn WriteJob>]) -> Result<(), StoreError> {
    execute(connection, "BEGIN IMMEDIATE", [])?;
    if group.iter_mut().all(|job| job.run(connection)) {
        execute(connection, "COMMIT", [])?;
        return Ok(());
    }
    execute(connection, "ROLLBACK", [])?;
    execute(connection, "BEGIN IMMEDIATE", [])?;
    for job in group.iter_mut() {
        execute(connection, "SAVEPOINT job", [])?;
        if !job.run(connection) {
            execute(connection, "ROLLBACK TO job", [])?;
        }
        execute(connection, "RELEASE job", [])?;
    }
    execute(connection, "COMMIT", [])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn count(connection: &Connection) -> Result<i64, StoreError> {
        connection
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .map_err(crate::unavailable)
    }

    /// A write that fails halfway through leaves nothing behind, and the
    /// writes committed in the same group stand.
    #[tokio::test]
    async fn a_failed_write_is_undone_and_its_group_still_commits() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Unavailable(e.to_string()))?;
        let connection = Connection::open(dir.path().join("w.db")).map_err(crate::unavailable)?;
        connection
            .execute_batch("CREATE TABLE t (v INTEGER PRIMARY KEY)")
            .map_err(crate::unavailable)?;
        let writer = std::sync::Arc::new(Writer::start(connection)?);

        // Hold the writer busy so that the next three writes queue up and
        // are committed as one group.
        let busy = {
            let writer = std::sync::Arc::clone(&writer);
            tokio::spawn(async move {
                writer
                    .write(|_| {
                        std::thread::sleep(Duration::from_millis(200));
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let insert =
            |v: i64| move |c: &Connection| execute(c, "INSERT INTO t (v) VALUES (?1)", [v]);
        let half_done = |c: &Connection| -> Result<(), StoreError> {
            execute(c, "INSERT INTO t (v) VALUES (10)", [])?;
            execute(c, "INSERT INTO t (v) VALUES (1)", [])?; // taken: fails
            Ok(())
        };
        let (first, failed, last) = tokio::join!(
            writer.write(insert(1)),
            writer.write(half_done),
            writer.write(insert(2)),
        );
        busy.await
            .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        assert_eq!(first?, 1);
        assert!(failed.is_err(), "the failing write reports its error");
        assert_eq!(last?, 1);
        let rows = writer
            .write(|c| {
                let mut values: Vec<i64> = c
                    .prepare("SELECT v FROM t ORDER BY v")
                    .and_then(|mut s| s.query_map([], |row| row.get(0))?.collect())
                    .map_err(crate::unavailable)?;
                values.push(count(c)?);
                Ok::<Vec<i64>, StoreError>(values)
            })
            .await?;
        assert_eq!(rows, vec![1, 2, 2], "row 10 of the failed write is gone");
        Ok(())
    }
}
