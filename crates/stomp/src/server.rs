//! Builders for server frames (spec "Server Frames"). Encode the result with
//! [`crate::encode`], which adds `content-length` and escapes headers.

use bytes::Bytes;

use crate::frame::{Command, Frame};
use crate::heartbeat::HeartBeat;
use crate::version::Version;

/// CONNECTED frame (spec "CONNECTED Frame"): `version` (REQUIRED),
/// `heart-beat` (the server's `sx,sy`, e.g. [`crate::NegotiatedHeartBeat::reply`]),
/// and optional `server` (`name/version`) and `session`. CONNECTED headers are
/// not escaped, so values must not contain CR or LF (encoding fails otherwise).
pub fn connected(version: Version, heart_beat: HeartBeat, server: Option<&str>, session: Option<&str>) -> Frame {
    let mut frame = Frame::new(Command::Connected)
        .with_header("version", version.as_str())
        .with_header("heart-beat", heart_beat.to_string());
    if let Some(server) = server {
        frame.headers.push("server", server);
    }
    if let Some(session) = session {
        frame.headers.push("session", session);
    }
    frame
}

/// Headers set by [`message`] itself; entries with these names in `extra` are dropped.
const MESSAGE_RESERVED: [&str; 5] = ["destination", "message-id", "subscription", "content-type", "content-length"];

/// MESSAGE frame (spec "MESSAGE"): `destination`, `message-id`, `subscription`
/// (all REQUIRED), optional `content-type`, then the `extra` headers in order
/// (e.g. `ack` for client ack modes, or a SEND's
/// [`crate::SendFrame::user_headers`]); extra entries named destination,
/// message-id, subscription, content-type or content-length are dropped so
/// they cannot shadow the real values. `body` is raw octets; the encoder adds
/// `content-length`.
pub fn message<'a>(
    destination: &str,
    message_id: &str,
    subscription: &str,
    content_type: Option<&str>,
    body: impl Into<Bytes>,
    extra: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Frame {
    let mut frame = Frame::new(Command::Message)
        .with_header("destination", destination)
        .with_header("message-id", message_id)
        .with_header("subscription", subscription)
        .with_body(body);
    if let Some(ct) = content_type {
        frame.headers.push("content-type", ct);
    }
    for (name, value) in extra {
        if !MESSAGE_RESERVED.contains(&name) {
            frame.headers.push(name, value);
        }
    }
    frame
}

/// RECEIPT frame (spec "RECEIPT"): `receipt-id` = the client's `receipt` value.
pub fn receipt(receipt_id: &str) -> Frame {
    Frame::new(Command::Receipt).with_header("receipt-id", receipt_id)
}

/// ERROR frame (spec "ERROR"): `message` (short description, e.g. a
/// [`crate::DecodeError`]'s `Display`), `receipt-id` when the offending frame
/// carried `receipt`, and an optional detail `body` (sent with
/// `content-type:text/plain` when non-empty). The server closes the connection
/// after sending it.
///
/// `message` often quotes what the client sent (an unknown command, a bad header): control
/// characters in it are replaced (CR, LF and tab by a space, the others, NUL included, by
/// U+FFFD), so the header stays one line in every version and a NUL cannot end the frame early.
pub fn error(message: &str, receipt_id: Option<&str>, body: impl Into<Bytes>) -> Frame {
    let message: String = message
        .chars()
        .map(|c| match c {
            '\r' | '\n' | '\t' => ' ',
            c if c.is_control() => '\u{FFFD}',
            c => c,
        })
        .collect();
    let mut frame = Frame::new(Command::Error).with_header("message", message).with_body(body);
    if let Some(id) = receipt_id {
        frame.headers.push("receipt-id", id);
    }
    if !frame.body.is_empty() {
        frame.headers.push("content-type", "text/plain");
    }
    frame
}

/// ERROR frame for a failed version negotiation (spec "Protocol Negotiation"):
/// `message` plus `version:1.0,1.1,1.2` listing the supported versions.
pub fn version_error(message: &str) -> Frame {
    error(message, None, Bytes::new()).with_header("version", Version::SUPPORTED_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_lose_control_characters_and_stay_one_frame() {
        let f = error("unknown command '\0\u{1}a\nb'", None, Bytes::new());
        assert_eq!(f.header("message"), Some("unknown command '\u{FFFD}\u{FFFD}a b'"));
        for v in [Version::V1_0, Version::V1_1, Version::V1_2] {
            let mut buf = bytes::BytesMut::new();
            crate::encode_for_version(&f, v, &mut buf).expect("encodable in every version");
            assert_eq!(buf.iter().filter(|&&b| b == 0).count(), 1, "only the frame's own NUL");
        }
    }

    #[test]
    fn connected_carries_version_and_heart_beat() {
        let f = connected(Version::V1_2, HeartBeat { send_ms: 1, receive_ms: 2 }, Some("chat/1"), Some("s1"));
        assert_eq!(f.header("version"), Some("1.2"));
        assert_eq!(f.header("heart-beat"), Some("1,2"));
        assert_eq!(f.header("server"), Some("chat/1"));
        assert_eq!(f.header("session"), Some("s1"));
    }

    #[test]
    fn message_extra_headers_cannot_shadow_required_ones() {
        let f = message("/q", "m1", "s1", Some("text/plain"), "hi", [("destination", "/evil"), ("ack", "a1")]);
        assert_eq!(f.headers.get_all("destination").collect::<Vec<_>>(), ["/q"]);
        assert_eq!(f.header("ack"), Some("a1"));
        assert_eq!(f.header("content-type"), Some("text/plain"));
        assert_eq!(&f.body[..], b"hi");
    }

    #[test]
    fn error_frame_has_message_receipt_id_and_body() {
        let f = error("bad: frame", Some("r7"), "details");
        assert_eq!(f.header("message"), Some("bad: frame"));
        assert_eq!(f.header("receipt-id"), Some("r7"));
        assert_eq!(f.header("content-type"), Some("text/plain"));
        assert!(error("x", None, Bytes::new()).header("content-type").is_none());
        assert_eq!(version_error("no").header("version"), Some("1.0,1.1,1.2"));
    }

    #[test]
    fn receipt_has_receipt_id() {
        assert_eq!(receipt("77").header("receipt-id"), Some("77"));
    }
}
