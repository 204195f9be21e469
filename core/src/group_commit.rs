//! Group commit: writes that arrive together share one transaction.
//!
//! A commit costs far more than the statements in it. On SQLite every page a transaction
//! touched goes to the write-ahead log once per commit (a notification touches its table,
//! its indexes, the event log and the counts: about a dozen pages), and there is one writer;
//! on PostgreSQL each commit waits for its WAL flush, and event-log writers are serialised
//! (see [`crate::events`]). Concurrent publishes mostly touch the same pages, so writing a
//! batch of them in one transaction writes those pages once and takes the locks once.
//!
//! One task per [`Db`] (on SQLite, on a thread of its own) takes whatever work is waiting
//! (up to [`MAX_BATCH`]), runs it in one transaction and commits. Under light load a batch is
//! a single request and nothing waits for company; under load batches grow by themselves
//! while the previous commit runs.
//!
//! A batch succeeds or fails as a whole, so one bad request must not fail the others: when
//! any work in a batch fails before the commit, the transaction is rolled back and every
//! work of the batch runs again in a transaction of its own, where each meets its own
//! outcome — unless the database itself is unavailable, which every work would meet again
//! after waiting for it once more: then each is told so at once. Work therefore must be
//! repeatable (`Fn`), which it is when it only writes through the transaction. A failed commit is not retried: whether it took effect is not
//! always knowable, so every request of the batch is told it failed.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use futures::FutureExt;
use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::db::{Backend, Db, Tx};
use crate::{Error, Result};

/// Most pieces of work in one transaction.
pub const MAX_BATCH: usize = 256;

type Output = Box<dyn Any + Send>;

/// Work to run inside a transaction; see the module documentation for why it is `Fn`.
type Work = Arc<dyn for<'t> Fn(&'t mut Tx) -> BoxFuture<'t, Result<Output>> + Send + Sync>;

struct Job {
    work: Work,
    done: oneshot::Sender<Result<Output>>,
}

/// The queue into one database's group-commit task, started on first use.
#[derive(Clone, Debug, Default)]
pub(crate) struct Committer {
    queue: Arc<OnceLock<mpsc::UnboundedSender<Job>>>,
}

impl Db {
    /// Runs `work` in a write transaction shared with other work submitted at the same time,
    /// and returns its result once that transaction has committed.
    pub(crate) async fn write_grouped<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'t> Fn(&'t mut Tx) -> BoxFuture<'t, Result<T>> + Send + Sync + 'static,
    {
        let work: Work = Arc::new(move |tx: &mut Tx| {
            let fut = work(tx);
            Box::pin(async move { fut.await.map(|t| Box::new(t) as Output) })
        });
        let queue = self.committer().queue.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            // The task holds the pools but not this queue, so it ends when the last handle
            // on the database is dropped.
            let task = run(self.without_committer(), receiver);
            match self.backend() {
                Backend::Sqlite => on_a_thread_of_its_own(task),
                // A PostgreSQL connection is bound to the runtime that opened it, which a
                // runtime of the writer's own would end with it.
                Backend::Postgres => {
                    tokio::spawn(task);
                }
            }
            sender
        });
        let (done, outcome) = oneshot::channel();
        queue.send(Job { work, done }).map_err(|_| Error::Internal("the database writer has stopped".into()))?;
        let output = outcome.await.map_err(|_| Error::Internal("the database writer has stopped".into()))??;
        Ok(*output.downcast::<T>().expect("group commit returns what the work produced"))
    }
}

/// Runs SQLite's group-commit task on a thread and runtime of its own. It is every publish's
/// one serial path, and it wakes once per statement (each is answered by SQLite's connection
/// thread): on the shared runtime each wake-up queued behind the request tasks that were
/// ready, under load dozens of them, while the writer idled. Its own thread answers at once.
/// (SQLite's connections do no I/O through the runtime, so any runtime may drive them.)
fn on_a_thread_of_its_own(task: impl std::future::Future<Output = ()> + Send + 'static) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime for the writer");
    std::thread::Builder::new()
        .name("herald-writer".into())
        .spawn(move || runtime.block_on(task))
        .expect("a thread for the writer");
}

async fn run(db: Db, mut queue: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        commit(&db, std::mem::take(&mut jobs)).await;
    }
}

/// Runs one batch and answers each of its jobs.
async fn commit(db: &Db, jobs: Vec<Job>) {
    if jobs.len() == 1 {
        let job = jobs.into_iter().next().expect("one job");
        let _ = job.done.send(alone(db, &job.work).await);
        return;
    }
    let mut outputs = Vec::with_capacity(jobs.len());
    let attempt = async {
        let mut tx = db.begin_inbox().await?;
        for job in &jobs {
            outputs.push(run_work(&job.work, &mut tx).await?);
        }
        // What the works held back is written here, where a failure still sends each work to
        // run alone, rather than within the commit, whose failure fails them all.
        tx.flush().await?;
        Ok::<_, Error>(tx)
    }
    .await;
    match attempt {
        Ok(tx) => match tx.commit().await {
            Ok(()) => {
                for (job, output) in jobs.into_iter().zip(outputs) {
                    let _ = job.done.send(Ok(output));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, batch = jobs.len(), "committing a batch of writes failed");
                for job in jobs {
                    let _ = job.done.send(Err(e.for_another()));
                }
            }
        },
        // The database is unreachable (or full, or read-only): running each alone would only
        // make each wait for it again, one after another.
        Err(e) if e.unavailable().is_some() => {
            tracing::warn!(error = %e, batch = jobs.len(), "a batch of writes failed: the database is unavailable");
            for job in jobs {
                let _ = job.done.send(Err(e.for_another()));
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, batch = jobs.len(), "a batch of writes failed; running each alone");
            for job in jobs {
                let _ = job.done.send(alone(db, &job.work).await);
            }
        }
    }
}

/// Runs one work; a panic in it fails that work, not the task every publish depends on.
async fn run_work(work: &Work, tx: &mut Tx) -> Result<Output> {
    match AssertUnwindSafe(work(tx)).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(_) => Err(Error::Internal("a database write panicked".into())),
    }
}

async fn alone(db: &Db, work: &Work) -> Result<Output> {
    let mut tx = db.begin_inbox().await?;
    let output = run_work(work, &mut tx).await?;
    tx.commit().await?;
    Ok(output)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::with_tx;

    async fn database() -> (Db, std::path::PathBuf) {
        let (db, dir) = crate::db::scratch_sqlite("group-commit", false).await;
        crate::with_pool!(db.writer(), |c| sqlx::query("CREATE TABLE t (v INTEGER NOT NULL)")
            .execute(c)
            .await
            .map(|r| r.rows_affected()))
        .unwrap();
        (db, dir)
    }

    /// Inserts `v`, then fails when `v` is negative, or panics when it is 13: the insert must
    /// not survive either.
    async fn insert(db: &Db, v: i64) -> Result<i64> {
        db.write_grouped(move |tx| {
            Box::pin(async move {
                with_tx!(tx, |c| sqlx::query("INSERT INTO t (v) VALUES ($1)")
                    .bind(v)
                    .execute(c)
                    .await
                    .map(|r| r.rows_affected()))?;
                assert_ne!(v, 13, "unlucky");
                if v < 0 { Err(Error::Invalid(format!("{v} is negative"))) } else { Ok(v) }
            })
        })
        .await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_or_panicking_write_in_a_batch_fails_alone() {
        let (db, dir) = database().await;
        // Hold SQLite's one writer so that the writes below queue up and go as batches.
        let held = db.begin().await.unwrap();
        let writes: Vec<_> = (-3..20)
            .map(|v| {
                tokio::spawn({
                    let db = db.clone();
                    async move { (v, insert(&db, v).await) }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
        for w in writes {
            let (v, outcome) = w.await.unwrap();
            match outcome {
                Ok(got) => assert!(v >= 0 && v != 13 && got == v, "{v} answered {got}"),
                Err(Error::Internal(_)) if v == 13 => {}
                Err(e) => assert!(v < 0 && matches!(e, Error::Invalid(_)), "{v}: {e}"),
            }
        }
        assert_eq!(insert(&db, 20).await.unwrap(), 20, "the writer outlives a panic");
        let stored: Vec<i64> =
            crate::with_pool!(db.reader(), |c| sqlx::query_scalar("SELECT v FROM t ORDER BY v").fetch_all(c).await)
                .unwrap();
        let expected: Vec<i64> = (0..=20).filter(|v| *v != 13).collect();
        assert_eq!(stored, expected, "every good write once, no failed one");
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
