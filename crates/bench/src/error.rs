//! [`BenchError`]: every way a benchmark run can fail.

/// A benchmark failure. Each variant names what was being done.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A file or socket operation failed (context, cause).
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// A WebSocket connect or I/O failure (context, cause).
    #[error("{0}: {1}")]
    WebSocket(String, #[source] tokio_tungstenite::tungstenite::Error),
    /// An HTTP request of the setup failed (context, cause).
    #[error("{0}: {1}")]
    Http(String, #[source] reqwest::Error),
    /// The server answered a setup request with an error status (context, status, body).
    #[error("{0}: HTTP {1}: {2}")]
    HttpStatus(String, u16, String),
    /// The peer spoke something the client does not expect (what, detail).
    #[error("protocol error ({0}): {1}")]
    Protocol(&'static str, String),
    /// Waiting for something took longer than allowed (what).
    #[error("timed out: {0}")]
    Timeout(String),
    /// A server process could not be started or exited early (what, detail).
    #[error("{0}: {1}")]
    Server(String, String),
    /// SQLite (the raw insert limit) failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A JSON document (results, replies) could not be read or written (context, cause).
    #[error("{0}: {1}")]
    Json(String, #[source] serde_json::Error),
    /// A parameter is out of range (name, why).
    #[error("invalid parameter {0}: {1}")]
    Param(&'static str, String),
    /// Drawing a plot failed (file, cause).
    #[error("plot {0}: {1}")]
    Plot(String, String),
}
