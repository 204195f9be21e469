//! Checkpoints of SQLite's write-ahead log, off the writer's path.
//!
//! By default the commit that takes the log past 1,000 pages also copies the log back into
//! the database file and syncs both before it returns. Herald has one writer, which every
//! publish waits for: under load it stopped for that many times a second (a profile of
//! publishing showed the writer's thread spending about a third of its time in writes and
//! syncs). The writer therefore has automatic checkpoints off, and a connection of this
//! module's own runs a `PASSIVE` checkpoint every [`INTERVAL`] instead, on its own thread:
//! passive checkpoints neither wait for nor block the writer and the readers, and the log
//! starts over from its beginning at the first commit after one has copied it all.
//!
//! Durability does not depend on checkpoints: a committed transaction is in the log, which
//! survives a crash of the process either way.

use std::sync::Mutex;
use std::time::Duration;

use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the log is checkpointed. Publishing at full speed adds a few megabytes a second
/// to the log; a tenth of a second keeps it near the size SQLite's default allows (4 MiB).
pub const INTERVAL: Duration = Duration::from_millis(100);

/// The task that checkpoints one database; stopped by [`Checkpoints::close`] or when dropped.
#[derive(Debug)]
pub(crate) struct Checkpoints {
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Checkpoints {
    /// Opens a connection of its own to the database of `options` and starts checkpointing.
    pub(crate) async fn start(options: &SqliteConnectOptions) -> sqlx::Result<Checkpoints> {
        let conn = SqliteConnection::connect_with(options).await?;
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(conn, stopped));
        Ok(Checkpoints { stop, task: Mutex::new(Some(task)) })
    }

    /// Stops checkpointing and closes the connection (its thread closes the SQLite handle
    /// before this returns).
    pub(crate) async fn close(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for Checkpoints {
    fn drop(&mut self) {
        if let Some(task) = self.task.get_mut().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}

async fn run(mut conn: SqliteConnection, mut stopped: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Told once when checkpoints start failing (a full disk, say) and once when they recover,
    // not ten times a second.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stopped.changed() => break,
        }
        // (busy, frames in the log, frames copied); an idle database answers at once.
        let done = sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(&mut conn).await;
        match done {
            Err(e) if !failing => {
                tracing::warn!(error = %e, "checkpointing the SQLite log failed; retrying");
                failing = true;
            }
            Ok(_) if failing => {
                tracing::info!("checkpointing the SQLite log works again");
                failing = false;
            }
            _ => {}
        }
    }
    let _ = conn.close().await;
}

#[cfg(test)]
mod tests {
    use crate::db::Db;
    use crate::with_pool;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_reaches_the_database_file_without_the_writer() {
        let dir = std::env::temp_dir().join(format!("herald-checkpoints-{}", uuid::Uuid::new_v4().simple()));
        let file = dir.join("t.db");
        let db = Db::connect(&format!("sqlite:{}", file.display()), &Default::default()).await.unwrap();
        let writer_interval: i64 =
            with_pool!(db.writer(), |c| sqlx::query_scalar("PRAGMA wal_autocheckpoint").fetch_one(c).await).unwrap();
        assert_eq!(writer_interval, 0, "the writer does not checkpoint");
        // About 4 MiB, in the log once committed.
        for statement in [
            "CREATE TABLE t (v BLOB NOT NULL)",
            "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 1000)
             INSERT INTO t (v) SELECT randomblob(4096) FROM n",
        ] {
            with_pool!(db.writer(), |c| sqlx::query(statement).execute(c).await.map(|r| r.rows_affected())).unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::fs::metadata(&file).unwrap().len() < 4_000_000 {
            assert!(std::time::Instant::now() < deadline, "the log was never copied into the database file");
            tokio::time::sleep(super::INTERVAL).await;
        }
        db.close().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}
