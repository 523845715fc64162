//! The writer thread, its group commit, and the thread that makes each group
//! durable before anyone hears of it.
//!
//! SQLite runs with `synchronous = NORMAL`: a commit appends its frames to
//! the write-ahead log and returns without waiting for the disk. The writer
//! hands each committed group to the flush thread, which flushes the log
//! file (`fdatasync`) and only then answers the group's callers. While the
//! disk works, the writer already runs and commits the next group, so the
//! statements of one group overlap the flush of the one before. The log is
//! appended in commit order, so a flush makes every commit before it
//! durable. A caller hears "done" only once its write would survive a power
//! cut, and readers wait for the same (see [`Horizon`]).

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc as std_mpsc};
use std::thread;

use oncepay_engine::StoreError;
use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::error;

use crate::{execute, unavailable};

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

impl std::fmt::Debug for dyn WriteJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteJob")
    }
}

/// How far the writer has got: commits numbered in order, the last one
/// readers may see, and the last one on disk.
///
/// A reader can see a commit the moment SQLite publishes it, a flush before
/// it is durable. So a read that saw commit `n` is answered only once `n` is
/// durable (see [`Horizon::settle_read`]); otherwise a client could be shown a
/// payment that a power cut then takes back.
#[derive(Debug)]
pub struct Horizon {
    /// Number of the last group whose commit has started.
    visible: AtomicU64,
    /// Number of the last group known durable; [`FAILED`] once a flush
    /// failed: what SQLite committed since may not be on disk, and a later
    /// flush that reports success does not prove it is (the kernel may have
    /// dropped the failed pages). Writes stop until a restart.
    durable: watch::Sender<u64>,
}

/// The durable mark of a horizon whose flush failed: past every group, so
/// waiting readers wake, and never reached by a real one.
const FAILED: u64 = u64::MAX;

impl Default for Horizon {
    fn default() -> Self {
        Self {
            visible: AtomicU64::new(0),
            durable: watch::Sender::new(0),
        }
    }
}

impl Horizon {
    /// Numbers the next group; called before its commit can be seen.
    fn next_group(&self) -> u64 {
        self.visible.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn made_durable(&self, group: u64) {
        self.durable.send_if_modified(|durable| {
            let advanced = *durable < group;
            if advanced {
                *durable = group;
            }
            advanced
        });
    }

    fn fail(&self) {
        self.durable.send_replace(FAILED);
    }

    fn has_failed(&self) -> bool {
        *self.durable.borrow() == FAILED
    }

    /// Waits, after a read, until every commit the read may have seen is
    /// durable. Almost always returns at once: a flush takes a fraction of a
    /// millisecond.
    pub async fn settle_read(&self) -> Result<(), StoreError> {
        let seen = self.visible.load(Ordering::SeqCst);
        let mut durable = self.durable.subscribe();
        // An error means the writer is gone, and with it anything unflushed.
        let _ = durable.wait_for(|durable| *durable >= seen).await;
        if self.has_failed() {
            return Err(flush_failed());
        }
        Ok(())
    }
}

fn flush_failed() -> StoreError {
    StoreError::Unavailable(
        "the SQLite log could not be flushed to disk; writes are refused until oncepay restarts"
            .to_owned(),
    )
}

/// Flushes the write-ahead log to disk.
type Flush = Box<dyn FnMut() -> io::Result<()> + Send>;

/// The log file of the writer's database, opened for flushing. SQLite
/// creates it when the database is first read in WAL mode and keeps it
/// while any connection is open, so this handle stays on the same file.
fn log_flush(connection: &Connection) -> Result<Flush, StoreError> {
    let database = connection
        .path()
        .filter(|path| !path.is_empty())
        .ok_or_else(|| StoreError::Unavailable("the SQLite store needs a file".to_owned()))?;
    let log = PathBuf::from(format!("{database}-wal"));
    // Reading the schema makes SQLite open (and create) the log.
    connection
        .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
        .map_err(unavailable)?;
    let file = File::open(&log).map_err(|error| {
        StoreError::Unavailable(format!(
            "cannot open the SQLite log {}: {error}",
            log.display()
        ))
    })?;
    Ok(Box::new(move || file.sync_data()))
}

/// A committed (or rolled back) group on its way to the flush thread.
struct Committed {
    number: u64,
    group: Vec<Box<dyn WriteJob>>,
    outcome: Result<(), StoreError>,
}

/// Handle to the writer and flush threads. Dropping it lets the writer drain
/// its queue and commit, and the flush thread flush and answer, then waits
/// for both.
#[derive(Debug)]
pub struct Writer {
    queue: Option<mpsc::UnboundedSender<Box<dyn WriteJob>>>,
    threads: Vec<thread::JoinHandle<()>>,
    horizon: Arc<Horizon>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        // The writer first: its end closes the flush thread's queue.
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Writer {
    /// Starts the threads that own the write connection and flush its log.
    pub fn start(connection: Connection) -> Result<Self, StoreError> {
        let flush = log_flush(&connection)?;
        Self::start_with(connection, flush)
    }

    fn start_with(connection: Connection, flush: Flush) -> Result<Self, StoreError> {
        let horizon = Arc::new(Horizon::default());
        let (queue, jobs) = mpsc::unbounded_channel();
        // A rendezvous: the writer hands over its next group only when the flush
        // thread has finished the previous flush, so while the disk works the
        // writer commits one group and new writes queue up for the one after.
        // Unbounded, the writer would commit many tiny groups, each writing
        // its own copy of the same few pages to the log.
        let (committed, to_flush) = std_mpsc::sync_channel(0);
        let cannot_start =
            |error: io::Error| StoreError::Unavailable(format!("cannot start writer: {error}"));
        let flusher = {
            let horizon = Arc::clone(&horizon);
            thread::Builder::new()
                .name("sqlite-flush".to_owned())
                .spawn(move || flush_groups(flush, &to_flush, &horizon))
                .map_err(cannot_start)?
        };
        let writer = {
            let horizon = Arc::clone(&horizon);
            thread::Builder::new()
                .name("sqlite-writer".to_owned())
                .spawn(move || write_groups(&connection, jobs, &committed, &horizon))
                .map_err(cannot_start)?
        };
        Ok(Self {
            queue: Some(queue),
            threads: vec![writer, flusher],
            horizon,
        })
    }

    /// The writer's progress, for readers to wait on.
    pub fn horizon(&self) -> Arc<Horizon> {
        Arc::clone(&self.horizon)
    }

    /// Runs `work` in the next group and returns its result once the group
    /// is committed and on disk.
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

fn write_groups(
    connection: &Connection,
    mut jobs: mpsc::UnboundedReceiver<Box<dyn WriteJob>>,
    committed: &std_mpsc::SyncSender<Committed>,
    horizon: &Horizon,
) {
    while let Some(first) = jobs.blocking_recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if horizon.has_failed() {
            for job in group {
                job.finish(Err(flush_failed()));
            }
            continue;
        }
        let number = horizon.next_group();
        let outcome = commit_group(connection, &mut group);
        let committed = committed.send(Committed {
            number,
            group,
            outcome,
        });
        if committed.is_err() {
            // The flush thread is gone; dropping the group tells its callers
            // their writes were not confirmed, and failing the horizon keeps
            // readers from waiting for a flush that will never come.
            error!("the SQLite flush thread has stopped; writes are not confirmed");
            horizon.fail();
        }
    }
}

/// Flushes the log once for every group committed since the last flush,
/// then answers their callers.
fn flush_groups(mut flush: Flush, committed: &std_mpsc::Receiver<Committed>, horizon: &Horizon) {
    while let Ok(first) = committed.recv() {
        let mut groups = vec![first];
        groups.extend(committed.try_iter());
        let flushed = if horizon.has_failed() {
            Err(flush_failed())
        } else {
            flush().map_err(|error| {
                error!(%error, "flushing the SQLite log failed; refusing writes until restart");
                horizon.fail();
                flush_failed()
            })
        };
        if flushed.is_ok()
            && let Some(last) = groups.last()
        {
            horizon.made_durable(last.number);
        }
        for Committed { group, outcome, .. } in groups {
            let outcome = flushed.clone().and(outcome);
            for job in group {
                job.finish(outcome.clone());
            }
        }
    }
}

fn commit_group(
    connection: &Connection,
    group: &mut [Box<dyn WriteJob>],
) -> Result<(), StoreError> {
    let outcome = run_group(connection, group);
    if let Err(failure) = &outcome {
        error!(error = %failure, writes = group.len(), "group commit failed, rolled back");
        let _ = connection.execute_batch("ROLLBACK");
    }
    outcome
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

    fn table_t(connection: Connection) -> Result<Connection, StoreError> {
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;
                 CREATE TABLE t (v INTEGER PRIMARY KEY)",
            )
            .map_err(crate::unavailable)?;
        Ok(connection)
    }

    fn count(connection: &Connection) -> Result<i64, StoreError> {
        connection
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .map_err(crate::unavailable)
    }

    /// A write that fails halfway through leaves nothing behind, and the
    /// writes committed in the same group stand.
    #[tokio::test]
    async fn a_failed_write_is_undone_and_its_group_still_commits() -> Result<(), StoreError> {
        let (_dir, connection) = database()?;
        let writer = Arc::new(Writer::start(connection)?);

        // Hold the writer busy so that the next three writes queue up and
        // are committed as one group.
        let busy = {
            let writer = Arc::clone(&writer);
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
        busy.await.map_err(lost)??;
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

    fn lost(error: impl std::fmt::Display) -> StoreError {
        StoreError::Unavailable(error.to_string())
    }

    /// Inserts `v` into `t` from its own task.
    fn spawn_insert(
        writer: &Arc<Writer>,
        v: i64,
    ) -> tokio::task::JoinHandle<Result<usize, StoreError>> {
        let writer = Arc::clone(writer);
        tokio::spawn(async move {
            writer
                .write(move |c| execute(c, "INSERT INTO t (v) VALUES (?1)", [v]))
                .await
        })
    }

    /// A flush the test lets through one at a time, counting them. (The
    /// disk itself cannot be made to wait or fail here, so the flush is
    /// stood in for; the database is a real file.)
    fn gated_flush() -> (Flush, std_mpsc::SyncSender<io::Result<()>>) {
        let (open, gate) = std_mpsc::sync_channel(0);
        let flush: Flush = Box::new(move || gate.recv().unwrap_or(Ok(())));
        (flush, open)
    }

    fn database() -> Result<(tempfile::TempDir, Connection), StoreError> {
        let dir = tempfile::tempdir().map_err(lost)?;
        let connection = Connection::open(dir.path().join("w.db")).map_err(crate::unavailable)?;
        Ok((dir, table_t(connection)?))
    }

    /// A write is committed (readers can see it) before its flush, but its
    /// caller, and a reader that saw it, hear of it only after the flush.
    #[tokio::test]
    async fn a_write_is_confirmed_only_after_the_log_is_flushed() -> Result<(), StoreError> {
        let (_dir, connection) = database()?;
        let (flush, gate) = gated_flush();
        let writer = Arc::new(Writer::start_with(connection, flush)?);
        let horizon = writer.horizon();

        let insert = spawn_insert(&writer, 7);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!insert.is_finished(), "confirmed before the flush");
        let read = tokio::spawn(async move { horizon.settle_read().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!read.is_finished(), "a read settled before the flush");

        let open = tokio::task::spawn_blocking(move || gate.send(Ok(())));
        assert_eq!(insert.await.map_err(lost)??, 1);
        read.await.map_err(lost)??;
        let _ = open.await;
        Ok(())
    }

    /// After a failed flush nothing more is confirmed: not the group that
    /// was being flushed, not later writes, not reads.
    #[tokio::test]
    async fn a_failed_flush_stops_all_writes() -> Result<(), StoreError> {
        let (_dir, connection) = database()?;
        let (flush, gate) = gated_flush();
        let writer = Arc::new(Writer::start_with(connection, flush)?);
        let horizon = writer.horizon();

        let first = spawn_insert(&writer, 1);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let failure = io::Error::other("disk on fire");
        tokio::task::spawn_blocking(move || gate.send(Err(failure)))
            .await
            .map_err(lost)?
            .map_err(lost)?;

        let first = first.await.map_err(lost)?;
        assert!(first.is_err(), "the group being flushed is not confirmed");
        let later = writer
            .write(|c| execute(c, "INSERT INTO t VALUES (2)", []))
            .await;
        assert!(
            matches!(later, Err(StoreError::Unavailable(ref m)) if m.contains("flushed")),
            "{later:?}"
        );
        assert!(
            horizon.settle_read().await.is_err(),
            "reads must not be answered either"
        );
        Ok(())
    }
}
