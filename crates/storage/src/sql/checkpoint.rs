//! The background WAL checkpointer of file-backed SQLite stores.
//!
//! Every [`CHECKPOINT_EVERY`] it runs `PRAGMA wal_checkpoint(PASSIVE)` on a reader connection:
//! committed pages are copied into the database file without blocking the writer or readers,
//! so the writer's commits do not pay for checkpoints (with `synchronous=FULL` a checkpoint
//! fsyncs the database file: tens of milliseconds inside a commit otherwise).
//!
//! A PASSIVE checkpoint never rewinds the log (SQLite restarts the WAL from its start only
//! when a writer finds it fully copied and no reader on it). Under a steady stream of commits
//! and reads that moment never comes, so the log grows without bound and every commit and page
//! lookup gets slower: measured 84 MB of WAL after 30 s of the fanout benchmark, with the
//! writer past its own autocheckpoint threshold re-trying a checkpoint on every commit and the
//! driver threads' CPU doubling at the same load. So when a PASSIVE pass reports at least
//! [`WAL_RESTART_FRAMES`] frames in the log, the pass also runs
//! `PRAGMA wal_checkpoint(RESTART)` on the WRITER connection: it queues between two group
//! commits like any write (no busy-waiting against the writer), waits at most
//! [`RESTART_BUSY_TIMEOUT`] for the readers' current statements, and rewinds the log, so the
//! next commit writes from its start. When a reader takes longer, the RESTART gives up
//! (SQLite reports it busy) and the next pass tries again: the writer is never held longer.

use std::sync::Arc;
use std::time::Duration;

use sqlx::{AnyPool, Row};

/// How often the background task checkpoints.
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);

/// WAL length (frames, one page each) from which a pass also rewinds the log: 16 MiB of 4 KiB
/// pages.
pub(crate) const WAL_RESTART_FRAMES: i64 = 4_096;

/// Longest a RESTART waits for readers while it holds the writer connection.
pub(crate) const RESTART_BUSY_TIMEOUT: Duration = Duration::from_millis(10);

/// What one [`checkpoint_pass`] saw and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pass {
    /// Frames in the log when the PASSIVE checkpoint ran.
    pub frames: i64,
    /// Whether a RESTART ran and rewound the log (`false`: not needed, or readers were busy).
    pub restarted: bool,
}

/// Spawns the checkpointer over `read` and `write` (the store's pools); `busy` is the writer's
/// normal `busy_timeout`, restored after each RESTART. Ends when the returned sender is
/// dropped or a pool closes.
pub(crate) fn spawn_checkpointer(
    read: AnyPool,
    write: AnyPool,
    busy: Duration,
) -> Arc<tokio::sync::oneshot::Sender<()>> {
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = tick.tick() => {}
            }
            if read.is_closed() || write.is_closed() {
                return;
            }
            match checkpoint_pass(&read, &write, WAL_RESTART_FRAMES, RESTART_BUSY_TIMEOUT, busy).await {
                Ok(p) if p.frames >= WAL_RESTART_FRAMES && !p.restarted => {
                    tracing::debug!(frames = p.frames, "WAL not rewound: readers busy; trying again next pass")
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "background WAL checkpoint failed"),
            }
        }
    });
    Arc::new(stop)
}

/// One pass: PASSIVE on a reader; when the log holds at least `restart_frames` frames, RESTART
/// on the writer with `restart_busy` as its busy timeout (then `busy` again).
///
/// # Errors
/// Database errors of either checkpoint (the writer's busy timeout is restored either way,
/// unless the connection itself failed).
pub(crate) async fn checkpoint_pass(
    read: &AnyPool,
    write: &AnyPool,
    restart_frames: i64,
    restart_busy: Duration,
    busy: Duration,
) -> Result<Pass, sqlx::Error> {
    // One row: (busy, frames in the log, frames checkpointed).
    let row = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)").fetch_optional(read).await?;
    let frames = row.map(|r| r.try_get::<i64, _>(1)).transpose()?.unwrap_or(0);
    if frames < restart_frames {
        return Ok(Pass { frames, restarted: false });
    }
    let mut conn = write.acquire().await?;
    super::run_raw(&mut conn, format!("PRAGMA busy_timeout = {}", restart_busy.as_millis())).await?;
    let result = sqlx::raw_sql("PRAGMA wal_checkpoint(RESTART)").fetch_optional(&mut *conn).await;
    super::run_raw(&mut conn, format!("PRAGMA busy_timeout = {}", busy.as_millis())).await?;
    let blocked = result?.map(|r| r.try_get::<i64, _>(0)).transpose()?.unwrap_or(1);
    Ok(Pass { frames, restarted: blocked == 0 })
}

#[cfg(test)]
mod tests {
    use sqlx::AssertSqlSafe;

    use super::*;
    use crate::{ConnectOptions, SqlStore};

    /// Frames in the log now (a PASSIVE checkpoint's report).
    async fn log_frames(read: &AnyPool) -> i64 {
        let row = sqlx::raw_sql("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(read).await.unwrap();
        row.try_get::<i64, _>(1).unwrap()
    }

    async fn write_pages(write: &AnyPool, n: usize) {
        let sql = format!("BEGIN; {} COMMIT;", "INSERT INTO t VALUES (randomblob(3000));".repeat(n));
        sqlx::raw_sql(AssertSqlSafe(sql)).execute(write).await.unwrap();
    }

    /// With a reader on an old snapshot, PASSIVE checkpoints leave the log to grow (the failure
    /// mode); a pass past the threshold waits for that reader, rewinds the log, and the next
    /// commit writes from the log's start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_pass_past_the_threshold_rewinds_the_log_that_passive_checkpoints_let_grow() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("wal.db").display());
        let store = SqlStore::connect(&url, ConnectOptions::default()).await.unwrap();
        let (read, write) = (store.reader().clone(), store.writer().clone());
        sqlx::raw_sql("CREATE TABLE t (x BLOB)").execute(&write).await.unwrap();
        write_pages(&write, 100).await;

        // A reader holds a snapshot while more commits land: PASSIVE cannot copy past it, and
        // the next commits append to the log instead of rewinding it.
        let mut reader = read.acquire().await.unwrap();
        sqlx::raw_sql("BEGIN; SELECT count(*) FROM t;").execute(&mut *reader).await.unwrap();
        write_pages(&write, 100).await;
        let before = log_frames(&read).await;
        write_pages(&write, 10).await;
        let grown = log_frames(&read).await;
        assert!(grown > before && before >= 100, "the log grows while a reader holds a snapshot: {before} -> {grown}");

        // The reader finishes while the pass waits for it (busy timeout far longer than that).
        let release = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            sqlx::raw_sql("COMMIT").execute(&mut *reader).await.unwrap();
        });
        let busy = Duration::from_secs(10);
        let pass = checkpoint_pass(&read, &write, 100, Duration::from_secs(5), busy).await.unwrap();
        release.await.unwrap();
        assert_eq!(pass, Pass { frames: grown, restarted: true });
        write_pages(&write, 1).await;
        let after = log_frames(&read).await;
        assert!(after < 10, "the next commit wrote from the log's start: {after} frames (was {grown})");

        // Below the threshold a pass only checkpoints.
        let small = checkpoint_pass(&read, &write, 1_000_000, Duration::from_secs(5), busy).await.unwrap();
        assert_eq!(small, Pass { frames: after, restarted: false });
        // The writer's busy timeout is back to normal.
        let row = sqlx::raw_sql("PRAGMA busy_timeout").fetch_one(&write).await.unwrap();
        assert_eq!(row.try_get::<i64, _>(0).unwrap(), busy.as_millis() as i64);
    }
}
