//! Frame encoding (spec "STOMP Frames", "Value Encoding", "Heart-beating").

use bytes::{BufMut, Bytes, BytesMut};

use crate::escape::{Unencodable, escape_into};
use crate::frame::{Command, Frame};
use crate::version::Version;

/// Why a frame could not be encoded. Nothing is written when encoding fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A header has an empty name (names are `1*OCTET`).
    #[error("header name is empty")]
    EmptyHeaderName,
    /// A header name or value holds an octet with no representation in this
    /// frame: CR/LF (and `:` in names) in CONNECT/CONNECTED frames or with STOMP
    /// 1.0, or CR with STOMP 1.1. The header name is included (truncated).
    #[error("header '{name}' contains octet 0x{octet:02x} that cannot be encoded in a {command} frame")]
    UnencodableHeader {
        /// Frame command.
        command: Command,
        /// Offending header name (truncated to 32 bytes).
        name: String,
        /// Offending octet.
        octet: u8,
    },
}

/// Appends `frame` encoded for STOMP 1.2 to `dst` (see [`encode_for_version`]).
///
/// # Errors
/// [`EncodeError`] if a header cannot be represented; `dst` is then unchanged.
pub fn encode(frame: &Frame, dst: &mut BytesMut) -> Result<(), EncodeError> {
    encode_for_version(frame, Version::V1_2, dst)
}

/// Appends `frame` to `dst` using the escape rules of `version`.
///
/// Layout: `COMMAND LF`, then each header as `name:value LF` in order with
/// names and values escaped (spec "Value Encoding"; 1.2: CR→`\r`, LF→`\n`,
/// `:`→`\c`, `\`→`\\`), except in CONNECT and CONNECTED frames which are never
/// escaped. Any `content-length` entry in `frame.headers` is ignored; the
/// encoder writes `content-length:<body octets>` itself whenever the body is
/// non-empty or the command is SEND, MESSAGE or ERROR (so bodies containing NUL
/// are always framed correctly). Then `LF`, the body, and the NUL octet. Several
/// frames may be appended to the same `dst` (e.g. to coalesce deliveries into
/// one WebSocket message).
///
/// # Errors
/// [`EncodeError`] if a header cannot be represented; `dst` is then unchanged.
pub fn encode_for_version(frame: &Frame, version: Version, dst: &mut BytesMut) -> Result<(), EncodeError> {
    let escaping = frame.command.escapes_headers().then_some(version);
    let command = frame.command.as_str();
    let header_bytes: usize = frame.headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(command.len() + header_bytes + 24 + frame.body.len() + 2);
    out.extend_from_slice(command.as_bytes());
    out.push(b'\n');
    for (name, value) in frame.headers.iter() {
        if name == "content-length" {
            continue;
        }
        if name.is_empty() {
            return Err(EncodeError::EmptyHeaderName);
        }
        let fail = |Unencodable(octet)| EncodeError::UnencodableHeader {
            command: frame.command,
            name: crate::version::truncate(name, 32),
            octet,
        };
        escape_into(&mut out, name, escaping, true).map_err(fail)?;
        out.push(b':');
        escape_into(&mut out, value, escaping, false).map_err(fail)?;
        out.push(b'\n');
    }
    if !frame.body.is_empty() || frame.command.may_have_body() {
        out.extend_from_slice(b"content-length:");
        out.extend_from_slice(frame.body.len().to_string().as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    dst.reserve(out.len() + frame.body.len() + 1);
    dst.put_slice(&out);
    dst.put_slice(&frame.body);
    dst.put_u8(0);
    Ok(())
}

/// Encodes one frame for STOMP 1.2 into a fresh buffer.
///
/// # Errors
/// As [`encode`].
pub fn encode_to_bytes(frame: &Frame) -> Result<Bytes, EncodeError> {
    let mut dst = BytesMut::new();
    encode(frame, &mut dst)?;
    Ok(dst.freeze())
}

/// Appends one heart-beat (a single LF, spec "Heart-beating") to `dst`.
pub fn encode_heartbeat(dst: &mut BytesMut) {
    dst.put_u8(b'\n');
}
