//! The marker every benchmark message body carries, so that any receiver, whatever the
//! protocol, knows the conversation, the sending stream, the message's number in that
//! stream, and when it was *scheduled* to be sent:
//!
//! `B|<conversation>|<stream>|<n>|<scheduled ns>|` then `x` padding up to the body size.
//!
//! Only ASCII without quotes or backslashes, so it survives JSON string escaping unchanged
//! and can be found in a JSON body with a byte search instead of a parse.

/// One message's identity and schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Marker {
    /// Conversation (channel, topic) index in the run.
    pub conversation: u32,
    /// Sending stream (one per sender connection) index in the run.
    pub stream: u32,
    /// Number of the message in its stream, from 0.
    pub n: u64,
    /// Scheduled send time, nanoseconds since the run's epoch.
    pub scheduled_ns: u64,
}

const PREFIX: &[u8] = b"B|";

impl Marker {
    /// Appends the marker, padded with `x` to at least `body_bytes` bytes in total.
    pub fn write(&self, body_bytes: usize, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(PREFIX);
        for v in [self.conversation as u64, self.stream as u64, self.n, self.scheduled_ns] {
            out.extend_from_slice(v.to_string().as_bytes());
            out.push(b'|');
        }
        let written = out.len() - start;
        out.resize(start + written.max(body_bytes), b'x');
    }

    /// Finds and parses the first marker in `body` (a raw body or a JSON document holding it).
    pub fn find(body: &[u8]) -> Option<Marker> {
        let at = memchr::memmem::find(body, PREFIX)?;
        let mut fields = body[at + PREFIX.len()..].split(|b| *b == b'|');
        let mut next = || -> Option<u64> { std::str::from_utf8(fields.next()?).ok()?.parse().ok() };
        Some(Marker {
            conversation: u32::try_from(next()?).ok()?,
            stream: u32::try_from(next()?).ok()?,
            n: next()?,
            scheduled_ns: next()?,
        })
    }
}

/// Reads the integer after `"key":` in a JSON document (e.g. `seq`), without parsing it all.
pub fn json_int_field(body: &[u8], key: &str) -> Option<i64> {
    let pat = format!("\"{key}\":");
    let at = memchr::memmem::find(body, pat.as_bytes())? + pat.len();
    let rest = &body[at..];
    let rest = &rest[rest.iter().take_while(|b| b.is_ascii_whitespace()).count()..];
    let len = rest.iter().enumerate().take_while(|(i, b)| b.is_ascii_digit() || (*i == 0 && **b == b'-')).count();
    std::str::from_utf8(&rest[..len]).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_pads() {
        let m = Marker { conversation: 7, stream: 123, n: 99, scheduled_ns: 1_234_567 };
        let mut out = Vec::new();
        m.write(100, &mut out);
        assert_eq!(out.len(), 100);
        assert_eq!(Marker::find(&out), Some(m));
        let json = format!("{{\"seq\":42,\"text\":\"{}\"}}", String::from_utf8(out).unwrap());
        assert_eq!(Marker::find(json.as_bytes()), Some(m));
        assert_eq!(json_int_field(json.as_bytes(), "seq"), Some(42));
    }

    #[test]
    fn longer_than_body_size_is_kept_whole() {
        let m = Marker { conversation: 1, stream: 2, n: 3, scheduled_ns: 4 };
        let mut out = Vec::new();
        m.write(4, &mut out);
        assert_eq!(Marker::find(&out), Some(m));
    }

    #[test]
    fn absent_or_broken_marker_is_none() {
        assert_eq!(Marker::find(b"{\"eventType\":\"USER_JOINED\"}"), None);
        assert_eq!(Marker::find(b"B|1|2|"), None);
        assert_eq!(json_int_field(b"{\"seq\":}", "seq"), None);
    }
}
