//! chat-bench: the benchmark harness of chat-sys (issue 8, `docs/benchmarks.md`).
//!
//! * [`load`]: an open-loop load generator over WebSocket (a fixed send schedule per sender;
//!   latency is measured from the *scheduled* send time, so a slow server cannot slow the
//!   clock down and hide latency). It speaks STOMP 1.2 to chat-sys and to RabbitMQ Web-STOMP,
//!   Centrifugo's JSON protocol, and the raw frames of the in-crate broadcast server.
//! * [`stats`]: HDR latency histograms, throughput counters, and loss/duplicate/order
//!   accounting from a marker carried in every message body ([`marker`]).
//! * [`procfs`]: server CPU seconds and RSS from `/proc/<pid>/stat` and `/proc/<pid>/status`.
//! * [`target`]: the system under test: a `chat-sys serve` the harness starts itself (temporary
//!   data directory, ports 0), or an already running deployment given by URLs and PIDs.
//! * [`scenarios`]: fanout, ingest, idle connections, catch-up.
//! * [`limits`]: this machine's limits (a minimal WebSocket broadcast server, SQLite's raw
//!   insert rate of the same rows); [`peers`]: RabbitMQ Web-STOMP and Centrifugo v6.
//! * [`report`]: `docs/benchmarks.md` tables and PNG plots.
#![warn(missing_docs)]

pub mod conn;
pub mod error;
pub mod limits;
pub mod load;
pub mod marker;
pub mod peers;
pub mod procfs;
pub mod report;
pub mod rest;
pub mod results;
pub mod scenarios;
pub mod stats;
pub mod target;
pub mod wire;

pub use error::BenchError;

/// Raises this process's soft limit of open files to the hard limit (children inherit it):
/// one run holds ~19,000 sockets. Returns the new soft limit.
///
/// # Errors
/// [`BenchError::Io`] when `getrlimit`/`setrlimit` fail.
pub fn raise_nofile_limit() -> Result<u64, BenchError> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read/write the struct passed by pointer.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(BenchError::Io("getrlimit(RLIMIT_NOFILE)".into(), std::io::Error::last_os_error()));
        }
        lim.rlim_cur = lim.rlim_max;
        if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
            return Err(BenchError::Io("setrlimit(RLIMIT_NOFILE)".into(), std::io::Error::last_os_error()));
        }
    }
    Ok(lim.rlim_cur)
}
