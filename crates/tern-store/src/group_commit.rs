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
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            Box::pin(async move {
                let result = write(conn).await;
                let ok = result.is_ok();
                let finish: Finish = Box::new(move |commit| {
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

/// Applies a batch in one transaction; returns the COMMIT outcome and the
/// callers to answer with it.
async fn apply(conn: &mut SqliteConnection, jobs: Vec<Job>) -> (Result<(), Arc<sqlx::Error>>, Vec<Finish>) {
    let mut finishers = Vec::with_capacity(jobs.len());
    if let Err(e) = sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await {
        // Dropping the jobs fails their callers; nothing ran.
        return (Err(Arc::new(e)), finishers);
    }
    for job in jobs {
        // A write runs only inside its savepoint; if either fails, the batch
        // rolls back and the writes not yet run are dropped (failing their callers).
        if let Err(e) = sqlx::query("SAVEPOINT write").execute(&mut *conn).await {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return (Err(Arc::new(e)), finishers);
        }
        let (ok, finish) = job(conn).await;
        finishers.push(finish);
        let end = if ok { "RELEASE write" } else { "ROLLBACK TO write; RELEASE write" };
        if let Err(e) = sqlx::raw_sql(end).execute(&mut *conn).await {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            return (Err(Arc::new(e)), finishers);
        }
    }
    let commit = sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| ()).map_err(Arc::new);
    if commit.is_err() {
        let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
    }
    (commit, finishers)
}
