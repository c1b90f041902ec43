//! [`MessageEncoder`]: the MESSAGE frames of one subscription, with every header that does not
//! change between messages escaped once (spec "MESSAGE", "Value Encoding").
//!
//! A gateway writes one MESSAGE per delivery per subscription; building a [`crate::Frame`]
//! (a `String` per header name and value) and encoding it allocates about a dozen times per
//! delivery. The encoder keeps the escaped header block of the subscription and writes each
//! frame straight into the output buffer: the bytes are exactly those of
//! [`crate::encode_for_version`] applied to [`crate::server::message`] with the same
//! arguments (property-tested in `tests/proptest_codec.rs`).

use std::io::Write;

use bytes::{BufMut, BytesMut};

use crate::encoder::EncodeError;
use crate::escape::escape_into;
use crate::frame::Command;
use crate::version::Version;

/// Encodes the MESSAGE frames of one subscription (see the module documentation).
///
/// Frame layout, in this order: `destination`, `message-id` (`{id_prefix}-{n}`),
/// `subscription`, `content-type` (if any), `ack` (= the message id, if asked: client and
/// client-individual ack modes), `content-length`. One allocation of the exact size of the
/// escaped headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEncoder {
    /// `MESSAGE\ndestination:…\nmessage-id:{id_prefix}-` (up to `head_end`), then
    /// `\nsubscription:…\n` and `content-type:…\n` when set (up to `middle_end`), then the
    /// escaped `{id_prefix}-` again, for the `ack` header.
    parts: Box<[u8]>,
    head_end: u32,
    middle_end: u32,
    /// Whether an `ack` header repeats the message id.
    ack: bool,
}

impl MessageEncoder {
    /// Escapes the fixed headers once, for frames of `version`.
    ///
    /// # Errors
    /// [`EncodeError::UnencodableHeader`] when a value cannot be represented in `version`
    /// (CR or LF with STOMP 1.0, CR with 1.1), or the headers exceed 4 GiB.
    pub fn new(
        version: Version,
        destination: &str,
        id_prefix: &str,
        subscription: &str,
        content_type: Option<&str>,
        ack: bool,
    ) -> Result<MessageEncoder, EncodeError> {
        let escaping = Some(version);
        let value = |dst: &mut Vec<u8>, name: &str, value: &str| {
            escape_into(dst, value, escaping, false).map_err(|u| EncodeError::UnencodableHeader {
                command: Command::Message,
                name: name.to_owned(),
                octet: u.0,
            })
        };
        let mut prefix = Vec::with_capacity(id_prefix.len() + 1);
        value(&mut prefix, "message-id", id_prefix)?;
        prefix.push(b'-');
        let mut parts = b"MESSAGE\ndestination:".to_vec();
        value(&mut parts, "destination", destination)?;
        parts.extend_from_slice(b"\nmessage-id:");
        parts.extend_from_slice(&prefix);
        let head_end = offset(&parts)?;
        parts.extend_from_slice(b"\nsubscription:");
        value(&mut parts, "subscription", subscription)?;
        parts.push(b'\n');
        if let Some(ct) = content_type {
            parts.extend_from_slice(b"content-type:");
            value(&mut parts, "content-type", ct)?;
            parts.push(b'\n');
        }
        let middle_end = offset(&parts)?;
        if ack {
            parts.extend_from_slice(&prefix);
        }
        Ok(MessageEncoder { parts: parts.into_boxed_slice(), head_end, middle_end, ack })
    }

    /// Appends the MESSAGE frame numbered `n` carrying `body` to `dst`.
    pub fn encode(&self, n: u64, body: &[u8], dst: &mut BytesMut) {
        let mut num = [0u8; 20];
        let num = {
            let mut cursor = &mut num[..];
            // Cannot fail: u64 has at most 20 decimal digits.
            let _ = write!(cursor, "{n}");
            let left = cursor.len();
            &num[..20 - left]
        };
        let mut len = [0u8; 20];
        let len = {
            let mut cursor = &mut len[..];
            let _ = write!(cursor, "{}", body.len());
            let left = cursor.len();
            &len[..20 - left]
        };
        let (head, rest) = self.parts.split_at(self.head_end as usize);
        let (middle, id_prefix) = rest.split_at((self.middle_end - self.head_end) as usize);
        let ack_len = if self.ack { 5 + id_prefix.len() + num.len() } else { 0 };
        dst.reserve(head.len() + num.len() + middle.len() + ack_len + 16 + len.len() + body.len() + 2);
        dst.put_slice(head);
        dst.put_slice(num);
        dst.put_slice(middle);
        if self.ack {
            dst.put_slice(b"ack:");
            dst.put_slice(id_prefix);
            dst.put_slice(num);
            dst.put_u8(b'\n');
        }
        dst.put_slice(b"content-length:");
        dst.put_slice(len);
        dst.put_slice(b"\n\n");
        dst.put_slice(body);
        dst.put_u8(0);
    }
}

/// `parts.len()` as an offset; headers of 4 GiB cannot be encoded.
fn offset(parts: &[u8]) -> Result<u32, EncodeError> {
    u32::try_from(parts.len()).map_err(|_| EncodeError::UnencodableHeader {
        command: Command::Message,
        name: "subscription".into(),
        octet: 0,
    })
}
