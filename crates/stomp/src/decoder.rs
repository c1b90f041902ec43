//! Incremental, bounded STOMP frame decoder (spec "STOMP Frames", "Value
//! Encoding", "Heart-beating", "Size Limits").

use bytes::{Bytes, BytesMut};
use memchr::memchr;

use crate::escape::unescape;
use crate::frame::{Command, Frame, Headers};
use crate::version::{Version, truncate};

/// Resource limits enforced while decoding (spec "Size Limits": a server may
/// limit frame headers count, header line length and body size).
///
/// All sizes are in octets. Exceeding a limit is a fatal [`DecodeError`] naming
/// the limit. Limits are checked before anything is buffered or allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Whole frame: command line, header lines and their EOLs, body and the
    /// terminating NUL (heart-beat EOLs between frames are not counted).
    /// Default 96 KiB.
    pub max_frame_bytes: usize,
    /// Number of header entries (repeats counted). Default 64.
    pub max_headers: usize,
    /// Length of one command or header line, escapes included, EOL excluded.
    /// Default 8 KiB.
    pub max_header_line_bytes: usize,
    /// Body length, from `content-length` or up to the NUL. Default 64 KiB.
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_frame_bytes: 96 * 1024, max_headers: 64, max_header_line_bytes: 8 * 1024, max_body_bytes: 64 * 1024 }
    }
}

/// One unit produced by the [`Decoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete frame.
    Frame(Frame),
    /// A bare EOL (LF or CRLF) between frames: a heart-beat (spec
    /// "Heart-beating"). EOLs trailing a frame's NUL (spec: "The NULL octet can be
    /// optionally followed by multiple EOLs") are reported the same way.
    HeartBeat,
}

/// Fatal decoding error. After one, the [`Decoder`] returns the same error
/// forever (until [`Decoder::reset`]); the server should send an ERROR frame whose
/// `message` header is this error's `Display` text and close the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A CR octet not followed by LF (EOL is `[CR] LF`).
    #[error("carriage return not followed by line feed")]
    BareCarriageReturn,
    /// The command line is not one of the 15 STOMP commands (value truncated).
    #[error("unknown command '{0}'")]
    UnknownCommand(String),
    /// A header line is not valid UTF-8 (spec: headers are UTF-8).
    #[error("header is not valid UTF-8")]
    InvalidUtf8,
    /// A header line has no `:` separating name and value.
    #[error("header line has no ':' separator")]
    MissingColon,
    /// A header line starts with `:` (names are `1*OCTET`).
    #[error("header name is empty")]
    EmptyHeaderName,
    /// An escape other than `\r \n \c \\` (spec: "Undefined escape sequences
    /// such as \t MUST be treated as a fatal protocol error").
    #[error("undefined escape sequence '{0}' in header")]
    InvalidEscape(String),
    /// `content-length` is not a decimal octet count (value truncated).
    #[error("content-length '{0}' is not a non-negative decimal integer")]
    InvalidContentLength(String),
    /// The octet after `content-length` body octets is not NUL: the declared
    /// length does not match the body.
    #[error("frame body is not terminated by NUL after content-length octets")]
    MissingNul,
    /// A command or header line exceeds [`Limits::max_header_line_bytes`].
    #[error("header line exceeds {limit} bytes")]
    HeaderLineTooLong {
        /// The configured limit.
        limit: usize,
    },
    /// More than [`Limits::max_headers`] header entries.
    #[error("frame has more than {limit} headers")]
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// The body (claimed or actual) exceeds [`Limits::max_body_bytes`].
    #[error("frame body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The frame exceeds [`Limits::max_frame_bytes`].
    #[error("frame exceeds {limit} bytes")]
    FrameTooLarge {
        /// The configured limit.
        limit: usize,
    },
}

/// Capacity kept by an idle decoder; anything larger is released after a frame.
const IDLE_RETAIN_BYTES: usize = 1024;
/// Smallest allocation made when the buffer first grows.
const MIN_ALLOC_BYTES: usize = 64;

#[derive(Debug)]
enum State {
    /// Between frames (heart-beats allowed).
    Idle,
    /// Between frames, after a CR.
    IdleCr,
    /// Reading the command line (`command` is None) or header lines.
    Head,
    /// Reading the body; `Some(n)` when `content-length: n` was given.
    Body(Option<usize>),
    /// A fatal error happened.
    Failed(DecodeError),
}

/// Incremental STOMP decoder fed with arbitrary byte chunks.
///
/// A frame may be split across any number of chunks at any octet (including
/// inside a UTF-8 sequence or a CRLF) and one chunk may hold several frames.
///
/// Memory: only the bytes of the frame in progress that could not be consumed
/// straight from the input are buffered (a partial header line, or a partial
/// body). The buffer starts unallocated, grows as data actually arrives (never
/// from a claimed `content-length`), is never larger than the limit of what it
/// holds (`max_header_line_bytes + 1` or `max_body_bytes`, both bounded by
/// `max_frame_bytes`), and is released after a frame when it exceeds 1 KiB. A
/// frame delivered whole in one chunk is decoded without touching the buffer.
///
/// Escapes follow the [`Version`] set with [`Decoder::set_version`] (default
/// 1.2); CONNECT and CONNECTED frames are never unescaped.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    version: Version,
    state: State,
    buf: BytesMut,
    command: Option<Command>,
    headers: Headers,
    frame_bytes: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl Decoder {
    /// New idle decoder with the given limits, decoding STOMP 1.2 escapes.
    /// Allocates nothing.
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            version: Version::V1_2,
            state: State::Idle,
            buf: BytesMut::new(),
            command: None,
            headers: Headers::new(),
            frame_bytes: 0,
        }
    }

    /// Sets the negotiated version, which selects the escape rules of later
    /// frames (1.0: none, 1.1: `\n \c \\`, 1.2: `\r \n \c \\`).
    pub fn set_version(&mut self, version: Version) {
        self.version = version;
    }

    /// The version whose escape rules apply.
    pub fn version(&self) -> Version {
        self.version
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Allocated capacity of the internal reassembly buffer, in octets.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// True when no partial frame (or pending CR) is held: closing the
    /// connection now would not truncate a frame.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// True after a fatal error (until [`Decoder::reset`]).
    pub fn is_failed(&self) -> bool {
        matches!(self.state, State::Failed(_))
    }

    /// Drops any partial frame or error and releases the buffer.
    pub fn reset(&mut self) {
        self.state = State::Idle;
        self.clear_frame();
    }

    /// Decodes the next item from `input`, advancing `input` past every octet
    /// consumed.
    ///
    /// Returns `Ok(Some(item))` for each complete item, `Ok(None)` once `input`
    /// is exhausted (its bytes are consumed and buffered as needed; feed the next
    /// chunk). Typical use:
    /// `let mut rest = &payload[..]; while let Some(item) = dec.decode_next(&mut rest)? { .. }`.
    ///
    /// # Errors
    /// A [`DecodeError`] is fatal: the decoder stays failed and returns it again
    /// on every later call.
    pub fn decode_next(&mut self, input: &mut &[u8]) -> Result<Option<Item>, DecodeError> {
        if let State::Failed(e) = &self.state {
            return Err(e.clone());
        }
        match self.step(input) {
            Ok(item) => Ok(item),
            Err(e) => {
                self.clear_frame();
                self.state = State::Failed(e.clone());
                Err(e)
            }
        }
    }

    /// Decodes every item of `chunk`, appending them to `out`.
    ///
    /// # Errors
    /// Stops at the first fatal [`DecodeError`]; items decoded before it are
    /// already in `out`.
    pub fn decode_all(&mut self, chunk: &[u8], out: &mut Vec<Item>) -> Result<(), DecodeError> {
        let mut rest = chunk;
        while let Some(item) = self.decode_next(&mut rest)? {
            out.push(item);
        }
        Ok(())
    }

    fn clear_frame(&mut self) {
        self.buf = BytesMut::new();
        self.command = None;
        self.headers = Headers::new();
        self.frame_bytes = 0;
    }

    fn step(&mut self, input: &mut &[u8]) -> Result<Option<Item>, DecodeError> {
        loop {
            match self.state {
                State::Failed(ref e) => return Err(e.clone()),
                State::Idle => {
                    let Some(&b) = input.first() else { return Ok(None) };
                    match b {
                        b'\n' => {
                            *input = &input[1..];
                            return Ok(Some(Item::HeartBeat));
                        }
                        b'\r' => {
                            *input = &input[1..];
                            self.state = State::IdleCr;
                        }
                        _ => {
                            self.frame_bytes = 0;
                            self.state = State::Head;
                        }
                    }
                }
                State::IdleCr => {
                    let Some(&b) = input.first() else { return Ok(None) };
                    if b != b'\n' {
                        return Err(DecodeError::BareCarriageReturn);
                    }
                    *input = &input[1..];
                    self.state = State::Idle;
                    return Ok(Some(Item::HeartBeat));
                }
                State::Head => {
                    if !self.head_step(input)? {
                        return Ok(None);
                    }
                }
                State::Body(Some(len)) => return self.body_with_length(input, len),
                State::Body(None) => return self.body_until_nul(input),
            }
        }
    }

    /// Consumes at most one header-section line. `Ok(false)`: input exhausted.
    fn head_step(&mut self, input: &mut &[u8]) -> Result<bool, DecodeError> {
        let limits = self.limits;
        let lf = memchr(b'\n', input);
        let n = lf.unwrap_or(input.len());
        // Octet positions at which each limit is first exceeded (a line may
        // hold one extra octet: the CR of a CRLF).
        let line_room = limits.max_header_line_bytes.saturating_add(1).saturating_sub(self.buf.len());
        let frame_room = limits.max_frame_bytes.saturating_sub(self.frame_bytes);
        if line_room.min(frame_room) < n {
            return Err(if line_room <= frame_room {
                DecodeError::HeaderLineTooLong { limit: limits.max_header_line_bytes }
            } else {
                DecodeError::FrameTooLarge { limit: limits.max_frame_bytes }
            });
        }
        if lf.is_none() {
            self.append(&input[..n], limits.max_header_line_bytes.saturating_add(1));
            self.frame_bytes += n;
            *input = &input[n..];
            return Ok(false);
        }
        if frame_room < n + 1 {
            return Err(DecodeError::FrameTooLarge { limit: limits.max_frame_bytes });
        }
        self.frame_bytes += n + 1;
        let line = &input[..n];
        *input = &input[n + 1..];
        if self.buf.is_empty() {
            self.process_line(line)?;
        } else {
            self.append(line, limits.max_header_line_bytes.saturating_add(1));
            let mut buf = std::mem::take(&mut self.buf);
            let result = self.process_line(&buf);
            buf.clear();
            self.buf = buf;
            result?;
        }
        Ok(true)
    }

    /// Handles one complete line (without its LF).
    fn process_line(&mut self, line: &[u8]) -> Result<(), DecodeError> {
        let content = line.strip_suffix(b"\r").unwrap_or(line);
        if content.len() > self.limits.max_header_line_bytes {
            return Err(DecodeError::HeaderLineTooLong { limit: self.limits.max_header_line_bytes });
        }
        if content.contains(&b'\r') {
            return Err(DecodeError::BareCarriageReturn);
        }
        let Some(command) = self.command else {
            let command = Command::from_bytes(content)
                .ok_or_else(|| DecodeError::UnknownCommand(truncate(&String::from_utf8_lossy(content), 32)))?;
            self.command = Some(command);
            return Ok(());
        };
        if content.is_empty() {
            return self.end_of_headers();
        }
        if self.headers.len() >= self.limits.max_headers {
            return Err(DecodeError::TooManyHeaders { limit: self.limits.max_headers });
        }
        let text = std::str::from_utf8(content).map_err(|_| DecodeError::InvalidUtf8)?;
        let (name, value) = text.split_once(':').ok_or(DecodeError::MissingColon)?;
        if name.is_empty() {
            return Err(DecodeError::EmptyHeaderName);
        }
        if command.escapes_headers() {
            let bad = |e: crate::escape::BadEscape| DecodeError::InvalidEscape(e.0);
            let name = unescape(name, self.version).map_err(bad)?;
            let value = unescape(value, self.version).map_err(bad)?;
            self.headers.push(name, value);
        } else {
            self.headers.push(name, value);
        }
        Ok(())
    }

    /// Blank line seen: validate `content-length` and switch to the body.
    fn end_of_headers(&mut self) -> Result<(), DecodeError> {
        let length = match self.headers.get("content-length") {
            None => None,
            Some(v) => Some(parse_content_length(v)?),
        };
        if let Some(len) = length {
            if len > self.limits.max_body_bytes {
                return Err(DecodeError::BodyTooLarge { limit: self.limits.max_body_bytes });
            }
            // `len <= max_body_bytes`, so this cannot overflow in practice.
            if self.frame_bytes.saturating_add(len).saturating_add(1) > self.limits.max_frame_bytes {
                return Err(DecodeError::FrameTooLarge { limit: self.limits.max_frame_bytes });
            }
        }
        self.state = State::Body(length);
        Ok(())
    }

    /// Body framed by `content-length: len`, then a required NUL.
    fn body_with_length(&mut self, input: &mut &[u8], len: usize) -> Result<Option<Item>, DecodeError> {
        let have = self.buf.len();
        if have == 0 && input.len() > len {
            // Whole body and its NUL are in the input: no buffering.
            if input[len] != 0 {
                return Err(DecodeError::MissingNul);
            }
            let body = Bytes::copy_from_slice(&input[..len]);
            *input = &input[len + 1..];
            return Ok(Some(self.finish(body)));
        }
        if have < len {
            let take = (len - have).min(input.len());
            self.append(&input[..take], len);
            self.frame_bytes += take;
            *input = &input[take..];
            if have + take < len {
                return Ok(None);
            }
        }
        let Some(&b) = input.first() else { return Ok(None) };
        if b != 0 {
            return Err(DecodeError::MissingNul);
        }
        *input = &input[1..];
        let body = self.take_body();
        Ok(Some(self.finish(body)))
    }

    /// Body without `content-length`: ends at the first NUL.
    fn body_until_nul(&mut self, input: &mut &[u8]) -> Result<Option<Item>, DecodeError> {
        let limits = self.limits;
        let nul = memchr(0, input);
        let n = nul.unwrap_or(input.len());
        let body_room = limits.max_body_bytes.saturating_sub(self.buf.len());
        let frame_room = limits.max_frame_bytes.saturating_sub(self.frame_bytes);
        if body_room.min(frame_room) < n {
            return Err(if body_room <= frame_room {
                DecodeError::BodyTooLarge { limit: limits.max_body_bytes }
            } else {
                DecodeError::FrameTooLarge { limit: limits.max_frame_bytes }
            });
        }
        if nul.is_none() {
            self.append(input, limits.max_body_bytes);
            self.frame_bytes += n;
            *input = &[];
            return Ok(None);
        }
        if frame_room < n + 1 {
            return Err(DecodeError::FrameTooLarge { limit: limits.max_frame_bytes });
        }
        let body = if self.buf.is_empty() {
            Bytes::copy_from_slice(&input[..n])
        } else {
            self.append(&input[..n], limits.max_body_bytes);
            self.take_body()
        };
        *input = &input[n + 1..];
        Ok(Some(self.finish(body)))
    }

    /// Appends `data` to the buffer, growing it geometrically but never past
    /// `bound` (nor `max_frame_bytes`) octets of capacity (the limit checks
    /// guarantee `len + data.len()` is within both).
    fn append(&mut self, data: &[u8], bound: usize) {
        let bound = bound.min(self.limits.max_frame_bytes);
        let needed = self.buf.len() + data.len();
        if needed > self.buf.capacity() {
            let target = (self.buf.capacity() * 2).max(MIN_ALLOC_BYTES).min(bound).max(needed);
            let mut grown = BytesMut::with_capacity(target);
            grown.extend_from_slice(&self.buf);
            self.buf = grown;
        }
        self.buf.extend_from_slice(data);
    }

    /// Moves the buffered body out, sharing the allocation only when the body
    /// fills most of it (so a small body never pins a large allocation). A
    /// shared allocation is never kept by the decoder (it would pin the body).
    fn take_body(&mut self) -> Bytes {
        if self.buf.len() * 2 >= self.buf.capacity() {
            std::mem::take(&mut self.buf).freeze()
        } else {
            let body = Bytes::copy_from_slice(&self.buf);
            self.buf.clear();
            body
        }
    }

    fn finish(&mut self, body: Bytes) -> Item {
        let command = self.command.take().expect("a frame in progress has a command");
        let headers = std::mem::take(&mut self.headers);
        self.state = State::Idle;
        self.frame_bytes = 0;
        if self.buf.capacity() > IDLE_RETAIN_BYTES {
            self.buf = BytesMut::new();
        }
        Item::Frame(Frame { command, headers, body })
    }
}

/// Parses a `content-length` value: one or more ASCII digits (octets, spec
/// "Standard Headers"). Values too large for `usize` saturate, and are then
/// rejected by the body limit.
fn parse_content_length(v: &str) -> Result<usize, DecodeError> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DecodeError::InvalidContentLength(truncate(v, 32)));
    }
    Ok(v.parse::<usize>().unwrap_or(usize::MAX))
}
