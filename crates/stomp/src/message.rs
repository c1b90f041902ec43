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
/// client-individual ack modes), `content-length`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageEncoder {
    /// `MESSAGE\ndestination:…\nmessage-id:{id_prefix}-`
    head: Vec<u8>,
    /// `\nsubscription:…\n` and `content-type:…\n` when set.
    middle: Vec<u8>,
    /// Whether an `ack` header repeats the message id.
    ack: bool,
    /// The escaped `{id_prefix}-`, for the `ack` header.
    id_prefix: Vec<u8>,
}

impl MessageEncoder {
    /// Escapes the fixed headers once, for frames of `version`.
    ///
    /// # Errors
    /// [`EncodeError::UnencodableHeader`] when a value cannot be represented in `version`
    /// (CR or LF with STOMP 1.0, CR with 1.1).
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
        let mut head = b"MESSAGE\ndestination:".to_vec();
        value(&mut head, "destination", destination)?;
        head.extend_from_slice(b"\nmessage-id:");
        let mut prefix = Vec::with_capacity(id_prefix.len() + 1);
        value(&mut prefix, "message-id", id_prefix)?;
        prefix.push(b'-');
        head.extend_from_slice(&prefix);
        let mut middle = b"\nsubscription:".to_vec();
        value(&mut middle, "subscription", subscription)?;
        middle.push(b'\n');
        if let Some(ct) = content_type {
            middle.extend_from_slice(b"content-type:");
            value(&mut middle, "content-type", ct)?;
            middle.push(b'\n');
        }
        Ok(MessageEncoder { head, middle, ack, id_prefix: prefix })
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
        let ack_len = if self.ack { 5 + self.id_prefix.len() + num.len() } else { 0 };
        dst.reserve(self.head.len() + num.len() + self.middle.len() + ack_len + 16 + len.len() + body.len() + 2);
        dst.put_slice(&self.head);
        dst.put_slice(num);
        dst.put_slice(&self.middle);
        if self.ack {
            dst.put_slice(b"ack:");
            dst.put_slice(&self.id_prefix);
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
