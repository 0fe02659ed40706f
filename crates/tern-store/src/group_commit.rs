//! Group commit: one writer task applies every queued write in a single
//! transaction and fsync, then answers each caller. A small PUT costs a
//! share of one fsync instead of a whole one; each write still sees the
//! results of the writes before it, and each is isolated in a SAVEPOINT so
//! a refused write (a failed precondition, say) leaves the others intact.
//! No caller is answered before the COMMIT that makes its write durable.

use std::sync::Arc;

use futures::future::BoxFuture;
use sqlx::{Connection as _, SqliteConnection};
use tokio::sync::{mpsc, oneshot};

use crate::{StoreError, StoreResult};

/// Most writes folded into one transaction (bounds its latency).
const MAX_BATCH: usize = 256;

/// Delivers a write's outcome once the batch's COMMIT outcome is known.
type Finish = Box<dyn FnOnce(Result<(), Arc<sqlx::Error>>) + Send>;
/// One write: runs inside the batch transaction; says whether it succeeded.
type Job = Box<dyn for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, (bool, Finish)> + Send>;

/// The handle writers use; the task ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct GroupCommitter {
    jobs: mpsc::Sender<Job>,
}

impl GroupCommitter {
    /// Starts the writer task on `conn`, the only connection that writes.
    pub(crate) fn start(conn: SqliteConnection) -> Self {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(conn, rx));
        Self { jobs }
    }

    /// Runs `write` in the next batch; returns its result once durable.
    pub(crate) async fn write<T, F>(&self, write: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        self.write_then(write, || ()).await
    }

    /// As [`Self::write`], and runs `then` in the writer task once the
    /// batch's outcome is known, before the caller hears it. A write queued
    /// here happens even if its caller is dropped (a client that hangs up),
    /// so what must follow it, such as forgetting what it changed, cannot
    /// be left to the caller.
    pub(crate) async fn write_then<T, F>(&self, write: F, then: impl FnOnce() + Send + 'static) -> StoreResult<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConnection) -> BoxFuture<'c, StoreResult<T>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = write(conn).await;
                let ok = result.is_ok();
                let finish: Finish = Box::new(move |commit| {
                    then();
                    let outcome = match (result, commit) {
                        (Ok(value), Ok(())) => Ok(value),
                        (Ok(_), Err(e)) => Err(StoreError::NotCommitted(e)),
                        (Err(e), _) => Err(e),
                    };
                    let _ = tx.send(outcome);
                });
                (ok, finish)
            })
        });
        self.jobs.send(job).await.map_err(|_| closed())?;
        rx.await.map_err(|_| closed())?
    }
}

fn closed() -> StoreError {
    StoreError::Io(std::io::Error::other("the metadata write was not committed (see the server log)"))
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let (result, finishers) = apply(&mut conn, std::mem::take(&mut batch)).await;
        if let Err(e) = &result {
            tracing::error!(error = %e, "metadata batch failed to commit");
        }
        for finish in finishers {
            finish(result.clone());
        }
    }
    let _ = conn.close().await;
}

/// Applies a batch (never empty) in one transaction; returns the COMMIT
/// outcome and the callers to answer with it. The statements between two
/// writes go to the connection's thread together: every round trip there
/// costs two wake-ups.
async fn apply(conn: &mut SqliteConnection, jobs: Vec<Job>) -> (Result<(), Arc<sqlx::Error>>, Vec<Finish>) {
    let mut finishers = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter().peekable();
    let mut between = "BEGIN IMMEDIATE; SAVEPOINT write";
    while let Some(job) = jobs.next() {
        // A write runs only inside its savepoint; if any statement around it
        // fails, the batch rolls back and the writes not yet run are dropped
        // (failing their callers).
        if let Err(e) = sqlx::raw_sql(between).execute(&mut *conn).await {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return (Err(Arc::new(e)), finishers);
        }
        let (ok, finish) = job(conn).await;
        finishers.push(finish);
        between = match (ok, jobs.peek().is_some()) {
            (true, true) => "RELEASE write; SAVEPOINT write",
            (false, true) => "ROLLBACK TO write; RELEASE write; SAVEPOINT write",
            (true, false) => "RELEASE write; COMMIT",
            (false, false) => "ROLLBACK TO write; RELEASE write; COMMIT",
        };
    }
    let commit = sqlx::raw_sql(between).execute(&mut *conn).await.map(|_| ()).map_err(Arc::new);
    if commit.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    (commit, finishers)
}

#[cfg(test)]
mod tests {
    use sqlx::Connection as _;

    use super::*;

    async fn insert(committer: &GroupCommitter, n: i64, refuse: bool) -> StoreResult<i64> {
        committer
            .write(move |conn| {
                Box::pin(async move {
                    sqlx::query("INSERT INTO t (n) VALUES (?)").bind(n).execute(&mut *conn).await?;
                    if refuse { Err(StoreError::PreconditionFailed) } else { Ok(n) }
                })
            })
            .await
    }

    #[tokio::test]
    async fn a_refused_write_leaves_the_rest_of_its_batch_committed() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&mut conn).await.unwrap();
        let committer = GroupCommitter::start(conn);
        // Queued before the writer runs, the four writes share one batch.
        let (a, b, c, d) = tokio::join!(
            insert(&committer, 1, false),
            insert(&committer, 2, true),
            insert(&committer, 3, false),
            insert(&committer, 4, true),
        );
        assert_eq!((a.unwrap(), c.unwrap()), (1, 3));
        assert!(matches!((b, d), (Err(StoreError::PreconditionFailed), Err(StoreError::PreconditionFailed))));
        let rows: Vec<i64> = committer
            .write(|conn| {
                Box::pin(async move { Ok(sqlx::query_scalar("SELECT n FROM t ORDER BY n").fetch_all(conn).await?) })
            })
            .await
            .unwrap();
        assert_eq!(rows, [1, 3]);
    }

    #[tokio::test]
    async fn what_follows_a_write_runs_when_its_caller_is_gone() {
        let mut conn = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (n INTEGER)").execute(&mut conn).await.unwrap();
        let committer = GroupCommitter::start(conn);
        let followed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&followed);
        let write = committer.write_then(
            |conn| {
                Box::pin(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    sqlx::query("INSERT INTO t (n) VALUES (7)").execute(&mut *conn).await?;
                    Ok(())
                })
            },
            move || flag.store(true, std::sync::atomic::Ordering::SeqCst),
        );
        // The caller gives up while the write runs.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(5), write).await.is_err());
        let rows: Vec<i64> = committer
            .write(|conn| Box::pin(async move { Ok(sqlx::query_scalar("SELECT n FROM t").fetch_all(conn).await?) }))
            .await
            .unwrap();
        assert_eq!(rows, [7]);
        assert!(followed.load(std::sync::atomic::Ordering::SeqCst));
    }
}
