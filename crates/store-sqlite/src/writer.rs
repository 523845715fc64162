//! The writer thread and its group commit.

use std::thread;

use oncepay_engine::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use tracing::error;

/// Most writes committed together.
const MAX_GROUP: usize = 512;

/// One write, run inside the group's transaction.
trait WriteJob: Send {
    /// Runs the write; false when it failed and its savepoint must roll back.
    fn run(&mut self, connection: &Connection) -> bool;
    /// Answers the caller once the group's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct TypedJob<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for TypedJob<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, connection: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(connection);
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
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = TypedJob {
            work: Some(work),
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

fn run_group(connection: &Connection, group: &mut [Box<dyn WriteJob>]) -> Result<(), StoreError> {
    connection
        .execute_batch("BEGIN IMMEDIATE")
        .map_err(crate::unavailable)?;
    for job in group.iter_mut() {
        connection
            .execute_batch("SAVEPOINT job")
            .map_err(crate::unavailable)?;
        let undo = if job.run(connection) {
            "RELEASE job"
        } else {
            "ROLLBACK TO job; RELEASE job"
        };
        connection.execute_batch(undo).map_err(crate::unavailable)?;
    }
    connection
        .execute_batch("COMMIT")
        .map_err(crate::unavailable)
}
