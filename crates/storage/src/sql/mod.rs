//! The SQL implementation of every storage trait: [`SqlStore`].
//!
//! Queries are written once with sea-query, rendered for the store's [`Dialect`] and bound
//! through sqlx's `Any` driver.

mod append;
mod attachments;
mod auth;
mod checkpoint;
mod conversations;
mod edits;
mod events;
mod messages;
mod outbox;
mod schema;
mod search;
mod users;
mod writes;

use std::str::FromStr;
use std::sync::{Arc, Once};
use std::time::Duration;

use sea_query::{MysqlQueryBuilder, PostgresQueryBuilder, SqliteQueryBuilder};
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Executor, Row};
use uuid::Uuid;

use crate::StoreError;

/// The SQL dialect of a database URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// SQLite (`sqlite:` URLs), the embedded default.
    Sqlite,
    /// MySQL or MariaDB (`mysql:` or `mariadb:` URLs).
    MySql,
    /// PostgreSQL (`postgres:` or `postgresql:` URLs).
    Postgres,
}

impl Dialect {
    /// The dialect of a database URL, by its scheme.
    ///
    /// # Errors
    /// [`StoreError::Unexpected`] for any other scheme.
    pub fn from_url(url: &str) -> Result<Dialect, StoreError> {
        let scheme = url.split(':').next().unwrap_or_default().to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Dialect::Sqlite),
            "mysql" | "mariadb" => Ok(Dialect::MySql),
            "postgres" | "postgresql" => Ok(Dialect::Postgres),
            other => Err(StoreError::Unexpected(anyhow::anyhow!(
                "unsupported database URL scheme {other:?}: expected sqlite:, mysql:, mariadb:, postgres: or postgresql:"
            ))),
        }
    }
}

/// Pool settings of [`SqlStore::connect`].
#[derive(Clone, Debug)]
pub struct ConnectOptions {
    /// Maximum pooled connections (readers, for SQLite; default 8). SQLite always has exactly
    /// one writer connection besides these.
    pub max_connections: u32,
    /// How long a caller waits for a pooled connection before [`StoreError::Unavailable`]
    /// (default 5 s: while the database is down, requests fail with a clear 503/UNAVAILABLE
    /// within this, instead of hanging).
    pub acquire_timeout: Duration,
    /// SQLite only: how long a statement waits for a lock held by another process
    /// (`busy_timeout`, default 10 s).
    pub sqlite_busy_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(5),
            sqlite_busy_timeout: Duration::from_secs(10),
        }
    }
}

/// SQLite page cache of the writer connection, in KiB (an upper bound; grown as used).
const SQLITE_WRITER_CACHE_KIB: u32 = 65_536;

/// WAL size (pages) at which the SQLite writer checkpoints on its own commit path; far above
/// what the background checkpointer lets the WAL grow to, so only a safety net.
const SQLITE_WRITER_CHECKPOINT_PAGES: u32 = 20_000;

/// SQLite page cache of each reader connection, in KiB (an upper bound; grown as used).
const SQLITE_READER_CACHE_KIB: u32 = 16_384;

/// The storage of chat-sys over SQLite, MySQL/MariaDB or PostgreSQL; implements every
/// storage trait. Cheap to clone (pools are shared).
///
/// SQLite has one writer connection (write transactions queue for it instead of failing
/// with `SQLITE_BUSY`) and a pool of readers; the server databases use one pool for both.
#[derive(Clone, Debug)]
pub struct SqlStore {
    dialect: Dialect,
    read: AnyPool,
    write: AnyPool,
    /// SQLite files: the background checkpoint task runs while any clone of the store lives
    /// (dropping the last clone drops the sender, which ends the task).
    _checkpointer: Option<Arc<tokio::sync::oneshot::Sender<()>>>,
    /// Outbox marks waiting for a send batch's transaction to carry them (shared by clones).
    marks: Arc<outbox::PendingMarks>,
}

/// A write transaction.
pub(crate) type Tx = sqlx::Transaction<'static, Any>;

static INSTALL_DRIVERS: Once = Once::new();

impl SqlStore {
    /// A store over a server database: one pool for reads and writes, no checkpointer.
    fn one_pool(dialect: Dialect, pool: AnyPool) -> SqlStore {
        SqlStore { dialect, read: pool.clone(), write: pool, _checkpointer: None, marks: Default::default() }
    }

    /// Connects to `url` (`sqlite:PATH` (the file is created when missing),
    /// `mysql://user:pass@host:port/db`, `mariadb://...`, `postgres://...`). Does not migrate:
    /// call [`SqlStore::migrate`].
    ///
    /// SQLite connections use WAL journaling, `synchronous=FULL` (an acknowledged commit
    /// survives power loss), foreign keys and a busy timeout. MySQL sessions use READ COMMITTED.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database cannot be reached;
    /// [`StoreError::Unexpected`] for an unsupported URL.
    pub async fn connect(url: &str, opts: ConnectOptions) -> Result<SqlStore, StoreError> {
        INSTALL_DRIVERS.call_once(sqlx::any::install_default_drivers);
        let dialect = Dialect::from_url(url)?;
        let base = AnyPoolOptions::new().acquire_timeout(opts.acquire_timeout);
        match dialect {
            Dialect::Sqlite => {
                let memory = url.contains(":memory:") || url.contains("mode=memory");
                let url = if memory || url.contains("mode=") {
                    url.to_owned()
                } else if url.contains('?') {
                    format!("{url}&mode=rwc")
                } else {
                    format!("{url}?mode=rwc")
                };
                // An embedded connection cannot go stale as a socket can: no liveness ping (a
                // round trip to the connection's driver thread) before every acquire.
                let base = base.test_before_acquire(false);
                let busy_ms = opts.sqlite_busy_timeout.as_millis();
                let pragmas = format!(
                    "PRAGMA busy_timeout = {busy_ms}; PRAGMA foreign_keys = ON; PRAGMA synchronous = FULL; \
                     PRAGMA cache_size = -{SQLITE_READER_CACHE_KIB};"
                );
                // The writer's page cache keeps the hot index pages of the append path (the
                // default 2 MiB re-reads them from the OS on every batch).
                // Checkpoints normally run in the background (`checkpoint::spawn_checkpointer`); the writer
                // checkpoints itself only when the WAL outgrows `SQLITE_WRITER_CHECKPOINT_PAGES`.
                let writer_pragmas = format!(
                    "PRAGMA journal_mode = WAL; {pragmas} PRAGMA cache_size = -{SQLITE_WRITER_CACHE_KIB}; \
                     PRAGMA wal_autocheckpoint = {SQLITE_WRITER_CHECKPOINT_PAGES};"
                );
                let write = base
                    .clone()
                    .max_connections(1)
                    .min_connections(1)
                    .after_connect(move |conn, _| {
                        let sql = writer_pragmas.clone();
                        Box::pin(async move { run_raw(conn, sql).await })
                    })
                    .connect(&url)
                    .await
                    .map_err(db_err)?;
                // Journal mode is persistent: the writer has set WAL before any reader opens.
                let read = if memory {
                    write.clone()
                } else {
                    base.max_connections(opts.max_connections.max(1))
                        .after_connect(move |conn, _| {
                            let sql = pragmas.clone();
                            Box::pin(async move { run_raw(conn, sql).await })
                        })
                        .connect(&url)
                        .await
                        .map_err(db_err)?
                };
                let checkpointer = (!memory)
                    .then(|| checkpoint::spawn_checkpointer(read.clone(), write.clone(), opts.sqlite_busy_timeout));
                Ok(SqlStore { dialect, read, write, _checkpointer: checkpointer, marks: Default::default() })
            }
            Dialect::MySql => {
                let url = match url.strip_prefix("mariadb:") {
                    Some(rest) => format!("mysql:{rest}"),
                    None => url.to_owned(),
                };
                let pool = base
                    .max_connections(opts.max_connections.max(1))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            run_raw(conn, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED".into()).await
                        })
                    })
                    .connect(&url)
                    .await
                    .map_err(db_err)?;
                Ok(SqlStore::one_pool(dialect, pool))
            }
            Dialect::Postgres => {
                let pool = base.max_connections(opts.max_connections.max(1)).connect(url).await.map_err(db_err)?;
                Ok(SqlStore::one_pool(dialect, pool))
            }
        }
    }

    /// Runs the pending versioned migrations of this dialect (`migrations/{sqlite,mysql,postgres}`);
    /// idempotent, safe to run on every start.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database is unreachable, [`StoreError::Unexpected`]
    /// when a migration fails or the database has migrations this binary does not know.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Dialect::MySql => sqlx::migrate!("./migrations/mysql"),
            Dialect::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.run(&self.write).await.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => db_err(e),
            other => StoreError::Unexpected(anyhow::anyhow!("migration failed: {other}")),
        })
    }

    /// The store's dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Readiness check: one round trip on a reader and (SQLite) on the writer.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when the database does not answer.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::raw_sql("SELECT 1").execute(&self.read).await.map_err(db_err)?;
        if self.dialect == Dialect::Sqlite {
            sqlx::raw_sql("SELECT 1").execute(&self.write).await.map_err(db_err)?;
        }
        Ok(())
    }

    /// Closes the pools, waiting for checked-out connections to be returned.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Begins a write transaction (SQLite: `BEGIN IMMEDIATE` on the single writer connection).
    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        match self.dialect {
            Dialect::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await.map_err(db_err),
            _ => self.write.begin().await.map_err(db_err),
        }
    }

    /// The pool for reads outside a transaction.
    pub(crate) fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// The pool for single-statement writes outside a transaction.
    pub(crate) fn writer(&self) -> &AnyPool {
        &self.write
    }
}

/// Runs raw SQL on a fresh connection (PRAGMA / SET: session settings sea-query cannot express).
async fn run_raw(conn: &mut AnyConnection, sql: String) -> Result<(), sqlx::Error> {
    conn.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await.map(|_| ())
}

/// Renders a sea-query statement for a dialect.
pub(crate) fn render<Q: SqlxBinder>(dialect: Dialect, q: &Q) -> (String, SqlxValues) {
    match dialect {
        Dialect::Sqlite => q.build_sqlx(SqliteQueryBuilder),
        Dialect::MySql => q.build_sqlx(MysqlQueryBuilder),
        Dialect::Postgres => q.build_sqlx(PostgresQueryBuilder),
    }
}

/// Runs a query and returns all rows.
pub(crate) async fn fetch_all<'e, E, Q>(e: E, dialect: Dialect, q: &Q) -> Result<Vec<AnyRow>, StoreError>
where
    E: Executor<'e, Database = Any>,
    Q: SqlxBinder,
{
    let (sql, values) = render(dialect, q);
    sqlx::query_with(AssertSqlSafe(sql), values).fetch_all(e).await.map_err(db_err)
}

/// Runs a query and returns its first row, if any.
pub(crate) async fn fetch_optional<'e, E, Q>(e: E, dialect: Dialect, q: &Q) -> Result<Option<AnyRow>, StoreError>
where
    E: Executor<'e, Database = Any>,
    Q: SqlxBinder,
{
    let (sql, values) = render(dialect, q);
    sqlx::query_with(AssertSqlSafe(sql), values).fetch_optional(e).await.map_err(db_err)
}

/// Runs a statement and returns the number of rows it matched.
pub(crate) async fn execute<'e, E, Q>(e: E, dialect: Dialect, q: &Q) -> Result<u64, StoreError>
where
    E: Executor<'e, Database = Any>,
    Q: SqlxBinder,
{
    let (sql, values) = render(dialect, q);
    Ok(sqlx::query_with(AssertSqlSafe(sql), values).execute(e).await.map_err(db_err)?.rows_affected())
}

/// Prefix of the [`StoreError::Unavailable`] message for deadlocks and serialization failures
/// (retryable by re-running the transaction).
pub(crate) const RETRYABLE_PREFIX: &str = "transaction conflict";

/// Maps a sqlx error: unique violations to [`StoreError::Conflict`], connection trouble,
/// timeouts, busy databases and deadlocks to [`StoreError::Unavailable`], the rest to
/// [`StoreError::Unexpected`].
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(de) => {
            if de.is_unique_violation() {
                return StoreError::Conflict(de.message().to_owned());
            }
            let code = de.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                // PostgreSQL serialization_failure / deadlock_detected; MySQL SQLSTATE 40001
                // (ER_LOCK_DEADLOCK); MariaDB/MySQL error 1213 and lock wait timeout 1205.
                "40001" | "40P01" | "1213" | "1205" => {
                    StoreError::Unavailable(format!("{RETRYABLE_PREFIX}: {}", de.message()))
                }
                // SQLITE_BUSY, SQLITE_LOCKED and their extended codes (SQLite only: other
                // engines' numeric codes, e.g. PostgreSQL's 22021, share low bytes).
                c if de.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some()
                    && c.parse::<i64>().is_ok_and(|n| n & 0xff == 5 || n & 0xff == 6) =>
                {
                    StoreError::Unavailable(format!("database busy: {}", de.message()))
                }
                _ => StoreError::Unexpected(anyhow::Error::new(sqlx::Error::Database(de))),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(e.to_string()),
        other => StoreError::Unexpected(anyhow::Error::new(other)),
    }
}

/// Is this error worth re-running the whole transaction for (unique race, deadlock)?
pub(crate) fn is_retryable(e: &StoreError) -> bool {
    match e {
        StoreError::Conflict(_) => true,
        StoreError::Unavailable(m) => m.starts_with(RETRYABLE_PREFIX),
        _ => false,
    }
}

fn decode_err(col: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("cannot decode column {col}: {e}"))
}

/// Reads an integer column (any integer width).
pub(crate) fn get_i64(row: &AnyRow, col: &str) -> Result<i64, StoreError> {
    row.try_get::<i64, _>(col).map_err(|e| decode_err(col, e))
}

/// Reads a nullable integer column.
pub(crate) fn get_opt_i64(row: &AnyRow, col: &str) -> Result<Option<i64>, StoreError> {
    row.try_get::<Option<i64>, _>(col).map_err(|e| decode_err(col, e))
}

/// Reads an integer 0/1 column as a boolean.
pub(crate) fn get_bool(row: &AnyRow, col: &str) -> Result<bool, StoreError> {
    Ok(get_i64(row, col)? != 0)
}

/// Reads a text column.
pub(crate) fn get_str(row: &AnyRow, col: &str) -> Result<String, StoreError> {
    row.try_get::<String, _>(col).map_err(|e| decode_err(col, e))
}

/// Reads a nullable text column.
pub(crate) fn get_opt_str(row: &AnyRow, col: &str) -> Result<Option<String>, StoreError> {
    row.try_get::<Option<String>, _>(col).map_err(|e| decode_err(col, e))
}

/// Reads a UUID text column into a typed id.
pub(crate) fn get_id<T: From<Uuid>>(row: &AnyRow, col: &str) -> Result<T, StoreError> {
    let s = get_str(row, col)?;
    Uuid::from_str(&s).map(T::from).map_err(|e| decode_err(col, e))
}

/// Reads a nullable UUID text column into a typed id.
pub(crate) fn get_opt_id<T: From<Uuid>>(row: &AnyRow, col: &str) -> Result<Option<T>, StoreError> {
    match get_opt_str(row, col)? {
        Some(s) => Uuid::from_str(&s).map(|u| Some(T::from(u))).map_err(|e| decode_err(col, e)),
        None => Ok(None),
    }
}

/// A boolean as stored (integer 0/1).
pub(crate) fn b(v: bool) -> i64 {
    i64::from(v)
}

/// Wraps a serde error as [`StoreError::Unexpected`].
pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Unexpected(anyhow::anyhow!("event payload JSON: {e}"))
}

/// A caller's limit as a SQL `LIMIT` (negative means 0).
pub(crate) fn lim(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
