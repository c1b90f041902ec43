//! STOMP frames, commands and ordered headers (spec section "STOMP Frames").

use std::fmt;
use std::str::FromStr;

use bytes::Bytes;

/// A STOMP command: the first line of a frame.
///
/// Closed set of every client command (spec "Client Frames": CONNECT, STOMP,
/// SEND, SUBSCRIBE, UNSUBSCRIBE, ACK, NACK, BEGIN, COMMIT, ABORT, DISCONNECT) and
/// server command (spec "Server Frames": CONNECTED, MESSAGE, RECEIPT, ERROR).
/// Commands are case sensitive on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// `CONNECT` (client): open a session.
    Connect,
    /// `STOMP` (client): STOMP 1.2 alias of CONNECT.
    Stomp,
    /// `SEND` (client): send a message to a destination.
    Send,
    /// `SUBSCRIBE` (client): register a subscription.
    Subscribe,
    /// `UNSUBSCRIBE` (client): remove a subscription.
    Unsubscribe,
    /// `ACK` (client): acknowledge a message.
    Ack,
    /// `NACK` (client): negatively acknowledge a message.
    Nack,
    /// `BEGIN` (client): start a transaction.
    Begin,
    /// `COMMIT` (client): commit a transaction.
    Commit,
    /// `ABORT` (client): roll back a transaction.
    Abort,
    /// `DISCONNECT` (client): graceful disconnect.
    Disconnect,
    /// `CONNECTED` (server): session established.
    Connected,
    /// `MESSAGE` (server): a message delivered to a subscription.
    Message,
    /// `RECEIPT` (server): acknowledgement of a client frame carrying `receipt`.
    Receipt,
    /// `ERROR` (server): fatal error; the server closes the connection afterwards.
    Error,
}

impl Command {
    /// Every command, client commands first.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Connected,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The wire spelling, e.g. `"SEND"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Connected => "CONNECTED",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// Parses the exact (case-sensitive) wire spelling; `None` for anything else.
    pub fn from_bytes(bytes: &[u8]) -> Option<Command> {
        Command::ALL.into_iter().find(|c| c.as_str().as_bytes() == bytes)
    }

    /// True for commands a client sends (spec "Client Frames").
    pub fn is_client(self) -> bool {
        !self.is_server()
    }

    /// True for commands a server sends (spec "Server Frames").
    pub fn is_server(self) -> bool {
        matches!(self, Command::Connected | Command::Message | Command::Receipt | Command::Error)
    }

    /// Whether header names/values of this frame use escaping (spec "Value
    /// Encoding": "CONNECT and CONNECTED frames do not escape the carriage
    /// return, line feed or colon octets").
    pub fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Connected)
    }

    /// Whether this frame may carry a body (spec "Body": "Only the SEND, MESSAGE,
    /// and ERROR frames MAY have a body. All other frames MUST NOT have a body").
    pub fn may_have_body(self) -> bool {
        matches!(self, Command::Send | Command::Message | Command::Error)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned by [`Command::from_str`] for an unknown command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown STOMP command")]
pub struct UnknownCommand;

impl FromStr for Command {
    type Err = UnknownCommand;

    /// Parses the exact wire spelling (`"SEND"`), case sensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Command::from_bytes(s.as_bytes()).ok_or(UnknownCommand)
    }
}

/// Ordered list of `(name, value)` header entries (spec "Headers").
///
/// Order is preserved exactly as received or pushed and repeated names are kept.
/// [`Headers::get`] returns the FIRST occurrence, per spec "Repeated Header
/// Entries": "only the first header entry SHOULD be used as the value of header
/// entry". Names and values are already unescaped (decoded) text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    entries: Vec<(String, String)>,
}

impl Headers {
    /// Empty header list (no allocation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Empty header list with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Self { entries: Vec::with_capacity(n) }
    }

    /// Appends an entry at the end (does not replace existing entries of the same name).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.entries.push((name.into(), value.into()));
    }

    /// Value of the FIRST entry named `name` (exact, case-sensitive match).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// Values of every entry named `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries.iter().filter(move |(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// True if at least one entry is named `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Removes every entry named `name`; returns how many were removed.
    pub fn remove_all(&mut self, name: &str) -> usize {
        let before = self.entries.len();
        self.entries.retain(|(n, _)| n != name);
        before - self.entries.len()
    }

    /// All entries in order as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Number of entries (repeats counted).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl From<Vec<(String, String)>> for Headers {
    fn from(entries: Vec<(String, String)>) -> Self {
        Self { entries }
    }
}

impl<N: Into<String>, V: Into<String>> FromIterator<(N, V)> for Headers {
    fn from_iter<T: IntoIterator<Item = (N, V)>>(iter: T) -> Self {
        Self { entries: iter.into_iter().map(|(n, v)| (n.into(), v.into())).collect() }
    }
}

impl IntoIterator for Headers {
    type Item = (String, String);
    type IntoIter = std::vec::IntoIter<(String, String)>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

/// One STOMP frame: command, ordered headers, and a (possibly binary) body
/// (spec "STOMP Frames": `COMMAND EOL *(header EOL) EOL *OCTET NULL`).
///
/// `body` is raw octets (may contain NUL when framed with `content-length`).
/// A decoded frame keeps a received `content-length` header in `headers`; the
/// encoder ignores any `content-length` in `headers` and writes the real length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command line.
    pub command: Command,
    /// Headers in wire order, unescaped.
    pub headers: Headers,
    /// Body octets (empty when absent).
    pub body: Bytes,
}

impl Frame {
    /// Frame with no headers and an empty body.
    pub fn new(command: Command) -> Self {
        Self { command, headers: Headers::new(), body: Bytes::new() }
    }

    /// Builder: appends a header entry.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(name, value);
        self
    }

    /// Builder: sets the body.
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// Shortcut for `self.headers.get(name)` (first occurrence wins).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }
}
