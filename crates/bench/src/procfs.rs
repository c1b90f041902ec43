//! Server resource use from `/proc` (Linux): CPU seconds from `/proc/<pid>/stat` (fields 14
//! and 15, `utime` + `stime`, in clock ticks) and memory from `/proc/<pid>/status` (`VmRSS`,
//! `VmHWM`, in KiB).

use crate::BenchError;

/// One reading of a process's resource use.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProcSample {
    /// User + system CPU time so far, seconds.
    pub cpu_secs: f64,
    /// Resident set size now, bytes.
    pub rss_bytes: u64,
    /// Peak resident set size since the process started (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
}

impl ProcSample {
    /// Reads `/proc/<pid>/stat` and `/proc/<pid>/status`.
    ///
    /// # Errors
    /// [`BenchError::Io`] when the process is gone; [`BenchError::Protocol`] when a file
    /// does not have the expected shape.
    pub fn read(pid: u32) -> Result<ProcSample, BenchError> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| BenchError::Io(format!("reading /proc/{pid}/stat"), e))?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map_err(|e| BenchError::Io(format!("reading /proc/{pid}/status"), e))?;
        // The command name (field 2) is in parentheses and may contain spaces: split after it.
        let after = stat
            .rfind(')')
            .map(|i| &stat[i + 1..])
            .ok_or_else(|| BenchError::Protocol("/proc stat", "no ')' after the command name".into()))?;
        let fields: Vec<&str> = after.split_whitespace().collect();
        // `after` starts at field 3 (state): utime is field 14 → index 11, stime 15 → 12.
        let tick = |i: usize| -> Result<u64, BenchError> {
            fields
                .get(i)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| BenchError::Protocol("/proc stat", format!("field {} missing", i + 3)))
        };
        let ticks = tick(11)? + tick(12)?;
        // SAFETY: sysconf has no memory-safety preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let kib = |key: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(ProcSample {
            cpu_secs: ticks as f64 / hz,
            rss_bytes: kib("VmRSS:") * 1024,
            peak_rss_bytes: kib("VmHWM:") * 1024,
        })
    }

    /// Sums the readings of several processes (a scale-out deployment); missing ones count 0.
    pub fn read_all(pids: &[u32]) -> ProcSample {
        pids.iter().filter_map(|p| ProcSample::read(*p).ok()).fold(ProcSample::default(), |a, b| ProcSample {
            cpu_secs: a.cpu_secs + b.cpu_secs,
            rss_bytes: a.rss_bytes + b.rss_bytes,
            peak_rss_bytes: a.peak_rss_bytes + b.peak_rss_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let s = ProcSample::read(std::process::id()).unwrap();
        assert!(s.rss_bytes > 0 && s.peak_rss_bytes >= s.rss_bytes / 2, "{s:?}");
        assert!(s.cpu_secs >= 0.0);
    }

    #[test]
    fn missing_process_is_an_error() {
        assert!(matches!(ProcSample::read(u32::MAX), Err(BenchError::Io(..))));
    }
}
