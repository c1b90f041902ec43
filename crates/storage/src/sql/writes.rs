//! [`WriteBuffer`]: the write statements of a transaction, sent to SQLite together.
//!
//! sqlx runs each SQLite statement on the connection's driver thread: every statement is a
//! round trip between the async task and that thread (two thread wake-ups). A group commit
//! writes a handful of multi-row statements; on SQLite they are concatenated into ONE
//! multi-statement execution (sqlx binds positional `?` parameters across the statements in
//! order, see `sqlx_sqlite::SqliteArguments::bind`), so the write phase of a batch is one round
//! trip. MySQL and PostgreSQL do not take parameters across statements in one prepared
//! execution, so there each statement runs as it is pushed (the same statements, same order).

use sea_query::Values;
use sea_query_sqlx::{SqlxBinder, SqlxValues};
use sqlx::{AnyConnection, AssertSqlSafe};

use super::{Dialect, db_err, execute, render};
use crate::{StoreError, StoreResult};

/// Most bind values in one combined SQLite execution (its limit is 32,766 per statement
/// text; a combined text counts as one).
const MAX_COMBINED_VALUES: usize = 30_000;

/// Write statements of one transaction, in order, with the number of rows each must change.
pub(crate) struct WriteBuffer<'c> {
    tx: &'c mut AnyConnection,
    dialect: Dialect,
    /// SQLite: statements not sent yet, `;`-separated.
    sql: String,
    /// SQLite: their bind values, in order.
    values: Vec<sea_query::Value>,
    /// SQLite: rows the pending statements must change in total.
    expected: u64,
}

impl<'c> WriteBuffer<'c> {
    /// An empty buffer over the transaction's connection.
    pub(crate) fn new(tx: &'c mut AnyConnection, dialect: Dialect) -> Self {
        WriteBuffer { tx, dialect, sql: String::new(), values: Vec::new(), expected: 0 }
    }

    /// The dialect statements are rendered for.
    pub(crate) fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The connection, for reads: pending writes are sent first, so a read sees them.
    ///
    /// # Errors
    /// As [`WriteBuffer::flush`].
    pub(crate) async fn conn(&mut self) -> StoreResult<&mut AnyConnection> {
        self.flush().await?;
        Ok(&mut *self.tx)
    }

    /// Adds a statement that must change exactly `rows` rows (an INSERT of `rows` rows, an
    /// UPDATE of `rows` existing rows); `None` when any count is fine.
    ///
    /// # Errors
    /// Database errors; [`StoreError::Unexpected`] when a statement run now changed another
    /// number of rows (for SQLite that is checked for the whole combined execution at flush).
    pub(crate) async fn push<Q: SqlxBinder>(&mut self, q: &Q, rows: Option<u64>) -> StoreResult<()> {
        if self.dialect != Dialect::Sqlite {
            let n = execute(&mut *self.tx, self.dialect, q).await?;
            return check_rows(rows, n);
        }
        let (sql, SqlxValues(Values(values))) = render(self.dialect, q);
        let Some(rows) = rows else {
            // Unchecked statements are not combined: their count would hide the others'.
            self.flush().await?;
            return sqlx::query_with(AssertSqlSafe(sql), SqlxValues(Values(values)))
                .execute(&mut *self.tx)
                .await
                .map(|_| ())
                .map_err(db_err);
        };
        if self.values.len() + values.len() > MAX_COMBINED_VALUES {
            self.flush().await?;
        }
        if !self.sql.is_empty() {
            self.sql.push_str(";\n");
        }
        self.sql.push_str(&sql);
        self.values.extend(values);
        self.expected += rows;
        Ok(())
    }

    /// Sends the pending statements (SQLite: as one execution) and checks the rows changed.
    ///
    /// # Errors
    /// Database errors; [`StoreError::Unexpected`] when the rows changed differ from the sum
    /// of the pushed counts.
    pub(crate) async fn flush(&mut self) -> StoreResult<()> {
        if self.sql.is_empty() {
            return Ok(());
        }
        let sql = std::mem::take(&mut self.sql);
        let values = SqlxValues(Values(std::mem::take(&mut self.values)));
        let expected = std::mem::take(&mut self.expected);
        // Not cached as a prepared statement: the text differs from batch to batch.
        let done = sqlx::query_with(AssertSqlSafe(sql), values)
            .persistent(false)
            .execute(&mut *self.tx)
            .await
            .map_err(db_err)?;
        check_rows(Some(expected), done.rows_affected())
    }
}

/// Checks a statement's changed-row count against what it must be.
fn check_rows(want: Option<u64>, got: u64) -> StoreResult<()> {
    match want {
        Some(w) if w != got => Err(StoreError::Unexpected(anyhow::anyhow!(
            "a write changed {got} rows where {w} were expected (rolled back)"
        ))),
        _ => Ok(()),
    }
}
