//! Instants as integer milliseconds since the Unix epoch (UTC).
//!
//! Storage keeps instants as `BIGINT` milliseconds on every backend (one type instead of
//! three dialects' timestamp types); APIs render them as ISO-8601 / RFC 3339 UTC strings.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Milliseconds since 1970-01-01T00:00:00Z. Serialized as an RFC 3339 UTC string with
/// millisecond precision, e.g. `2026-11-29T19:06:01.123Z`; deserialized from any RFC 3339
/// string.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub i64);

impl Millis {
    /// The current wall-clock instant.
    pub fn now() -> Self {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Millis((nanos / 1_000_000) as i64)
    }

    /// RFC 3339 rendering in UTC with exactly three fractional digits.
    pub fn to_rfc3339(self) -> String {
        let dt = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            dt.year(),
            u8::from(dt.month()),
            dt.day(),
            dt.hour(),
            dt.minute(),
            dt.second(),
            dt.millisecond()
        )
    }

    /// Parses an RFC 3339 instant (any offset), truncating to milliseconds.
    ///
    /// # Errors
    /// A message naming the expected format when `s` is not RFC 3339.
    pub fn parse_rfc3339(s: &str) -> Result<Self, String> {
        let dt = OffsetDateTime::parse(s, &Rfc3339)
            .map_err(|e| format!("expected an RFC 3339 instant such as 2026-01-31T12:00:00Z: {e}"))?;
        Ok(Millis((dt.unix_timestamp_nanos() / 1_000_000) as i64))
    }

    /// This instant plus `secs` seconds.
    pub fn plus_secs(self, secs: i64) -> Self {
        Millis(self.0 + secs * 1000)
    }
}

impl Serialize for Millis {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_rfc3339())
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Millis::parse_rfc3339(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trip_keeps_milliseconds() {
        let m = Millis(1_764_442_561_123);
        let s = m.to_rfc3339();
        assert_eq!(s, "2025-11-29T18:56:01.123Z");
        assert_eq!(Millis::parse_rfc3339(&s).unwrap(), m);
    }

    #[test]
    fn parse_rejects_non_rfc3339() {
        assert!(Millis::parse_rfc3339("yesterday").is_err());
    }
}
