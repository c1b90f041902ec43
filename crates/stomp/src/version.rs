//! Protocol versions and `accept-version` negotiation (spec "Protocol Negotiation").

use std::fmt;

/// A STOMP protocol version.
///
/// Affects header escaping only (spec "Value Encoding"): 1.0 has no escaping,
/// 1.1 defines `\n`, `\c`, `\\`, and 1.2 adds `\r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Version {
    /// STOMP 1.0 (no `accept-version` header sent by the client).
    V1_0,
    /// STOMP 1.1.
    V1_1,
    /// STOMP 1.2 (default).
    #[default]
    V1_2,
}

impl Version {
    /// Every version this crate supports, oldest first.
    pub const SUPPORTED: [Version; 3] = [Version::V1_0, Version::V1_1, Version::V1_2];

    /// Value for the `version` header of an ERROR frame sent when negotiation
    /// fails (spec: "the server MUST respond with an ERROR frame ... set the
    /// version header to the versions it supports").
    pub const SUPPORTED_HEADER: &'static str = "1.0,1.1,1.2";

    /// Wire spelling: `"1.0"`, `"1.1"` or `"1.2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }

    /// Parses `"1.0"`, `"1.1"` or `"1.2"` exactly; `None` otherwise.
    pub fn parse(s: &str) -> Option<Version> {
        Version::SUPPORTED.into_iter().find(|v| v.as_str() == s)
    }

    /// Picks the version for a session from the client's `accept-version` header
    /// value (spec "Protocol Negotiation").
    ///
    /// * `None` (header absent): the client speaks 1.0 ("If the accept-version
    ///   header is missing, it means that the clients only supports version 1.0").
    /// * `Some("1.0,1.1,1.2")`: the highest version both sides support. Entries are
    ///   comma separated; surrounding spaces are tolerated, unknown entries ignored.
    ///
    /// # Errors
    /// [`NegotiationError::NoCommonVersion`] when no listed version is supported;
    /// the server should then send an ERROR frame with a `version` header of
    /// [`Version::SUPPORTED_HEADER`] and close the connection.
    pub fn negotiate(accept_version: Option<&str>) -> Result<Version, NegotiationError> {
        let Some(list) = accept_version else {
            return Ok(Version::V1_0);
        };
        list.split(',')
            .filter_map(|v| Version::parse(v.trim()))
            .max()
            .ok_or_else(|| NegotiationError::NoCommonVersion { offered: truncate(list, 64) })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Failure of [`Version::negotiate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NegotiationError {
    /// None of the client's versions is supported (`offered` truncated to 64 bytes).
    #[error("supported protocol versions are 1.0,1.1,1.2 (client offered '{offered}')")]
    NoCommonVersion {
        /// The client's `accept-version` value, truncated.
        offered: String,
    },
}

/// Truncates `s` to at most `max` bytes on a char boundary (for error messages).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_accept_version_means_1_0() {
        assert_eq!(Version::negotiate(None), Ok(Version::V1_0));
    }

    #[test]
    fn highest_common_version_is_picked() {
        assert_eq!(Version::negotiate(Some("1.0,1.1,1.2")), Ok(Version::V1_2));
        assert_eq!(Version::negotiate(Some("1.1,1.0")), Ok(Version::V1_1));
        assert_eq!(Version::negotiate(Some("1.0")), Ok(Version::V1_0));
        assert_eq!(Version::negotiate(Some("1.2, 2.0")), Ok(Version::V1_2));
    }

    #[test]
    fn no_common_version_is_an_error() {
        assert!(matches!(Version::negotiate(Some("2.0,3.1")), Err(NegotiationError::NoCommonVersion { .. })));
        assert!(Version::negotiate(Some("")).is_err());
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ééé", 3), "é...");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
