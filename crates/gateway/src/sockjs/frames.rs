//! SockJS frames and their per-transport framing.
//!
//! Frames: `o` (open), `h` (heartbeat), `a[...]` (an array of messages, each a JSON string),
//! `c[code,"reason"]` (close). Message strings are JSON-encoded with the SockJS escaping
//! rules (sockjs-node's `utils.quote`): besides what JSON requires, the characters some
//! browsers or proxies mangle are `\u`-escaped: U+0000–U+001F, U+200C–U+200F,
//! U+2028–U+202F, U+2060–U+206F, U+FFF0–U+FFFF, and every character outside the BMP (as its
//! UTF-16 surrogate pair, the range U+D800–U+DFFF).

use std::fmt::Write as _;

use bytes::Bytes;

/// The open frame.
pub(crate) const OPEN: &str = "o";
/// The heartbeat frame.
pub(crate) const HEARTBEAT: &str = "h";

/// `c[3000,"Go away!"]`: the server closed the session (STOMP DISCONNECT, ERROR, shutdown).
pub(crate) const GO_AWAY: (u16, &str) = (3000, "Go away!");
/// `c[2010,"Another connection still open"]`: a second receiving request on one session.
pub(crate) const ANOTHER_CONNECTION: (u16, &str) = (2010, "Another connection still open");
/// `c[1002,"Connection interrupted"]`: the session's receiving request was aborted.
pub(crate) const INTERRUPTED: (u16, &str) = (1002, "Connection interrupted");

/// Whether `c` must be `\u`-escaped inside a SockJS message string.
fn escapable(c: char) -> bool {
    matches!(c as u32, 0x00..=0x1f | 0x200c..=0x200f | 0x2028..=0x202f | 0x2060..=0x206f | 0xfff0..=0xffff)
        || (c as u32) > 0xffff
}

/// Appends `s` as a JSON string with the SockJS escaping rules (see the module docs).
pub(crate) fn quote_into(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if escapable(c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `s` as a SockJS-escaped JSON string.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    quote_into(s, &mut out);
    out
}

/// The frame `a[...]` of these messages (STOMP bytes; invalid UTF-8 is replaced, SockJS
/// carries strings only).
pub(crate) fn messages_frame(messages: &[Bytes]) -> String {
    let mut out = String::with_capacity(messages.iter().map(|m| m.len() + 3).sum::<usize>() + 3);
    out.push_str("a[");
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        quote_into(&String::from_utf8_lossy(m), &mut out);
    }
    out.push(']');
    out
}

/// The close frame `c[code,"reason"]`.
pub(crate) fn close_frame((code, reason): (u16, &str)) -> String {
    format!("c[{code},{}]", quote(reason))
}

/// A JavaScript callback name acceptable for htmlfile/jsonp: only `[A-Za-z0-9_.-]`, and at
/// most `max_len` characters when given (jsonp: 32).
pub(crate) fn valid_callback(callback: &str, max_len: Option<usize>) -> bool {
    callback.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && max_len.is_none_or(|max| callback.len() <= max)
}

/// How a receiving transport wraps each frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    /// xhr and xhr_streaming: `frame\n`.
    Xhr,
    /// eventsource: `data: frame\r\n\r\n`, with `%`, CR, LF and NUL percent-escaped
    /// (sockjs-client applies `decodeURI`).
    EventSource,
    /// htmlfile: `<script>\np("frame");\n</script>\r\n`.
    HtmlFile,
    /// jsonp: `/**/callback("frame");\r\n`.
    Jsonp(String),
}

impl Framing {
    /// `frame` wrapped for this transport.
    pub(crate) fn wrap(&self, frame: &str) -> String {
        match self {
            Framing::Xhr => {
                let mut out = String::with_capacity(frame.len() + 1);
                out.push_str(frame);
                out.push('\n');
                out
            }
            Framing::EventSource => {
                let mut out = String::with_capacity(frame.len() + 10);
                out.push_str("data: ");
                for c in frame.chars() {
                    match c {
                        '%' => out.push_str("%25"),
                        '\r' => out.push_str("%0D"),
                        '\n' => out.push_str("%0A"),
                        '\0' => out.push_str("%00"),
                        c => out.push(c),
                    }
                }
                out.push_str("\r\n\r\n");
                out
            }
            Framing::HtmlFile => format!("<script>\np({});\n</script>\r\n", json_string(frame)),
            Framing::Jsonp(callback) => format!("/**/{callback}({});\r\n", json_string(frame)),
        }
    }
}

/// `s` as a plain JSON string (JavaScript's `JSON.stringify`).
fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// The htmlfile prelude for `callback` (sockjs-node's template, padded past 1 KiB so that
/// browsers start parsing at once).
pub(crate) fn htmlfile_prelude(callback: &str) -> String {
    const TEMPLATE: &str = r#"
<!doctype html>
<html><head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
</head><body><h2>Don't panic!</h2>
  <script>
    document.domain = document.domain;
    var c = parent.{{ callback }};
    c.start();
    function p(d) {c.message(d);};
    window.onload = function() {c.stop();};
  </script>
"#;
    let mut page = String::from(TEMPLATE);
    // sockjs-node: template + Array(1024 - template.length + 14).join(' ') + '\r\n\r\n'.
    let pad = (1024 + 14usize).saturating_sub(TEMPLATE.len() + 1);
    page.extend(std::iter::repeat_n(' ', pad));
    page.push_str("\r\n\r\n");
    page.replace("{{ callback }}", callback)
}

/// The iframe page that loads sockjs-client from `client_url` (iframe-based transports).
pub(crate) fn iframe_page(client_url: &str) -> String {
    let url = client_url.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
    format!(
        r#"<!DOCTYPE html>
<html>
<head>
  <meta http-equiv="X-UA-Compatible" content="IE=edge" />
  <meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
  <script src="{url}"></script>
  <script>
    document.domain = document.domain;
    SockJS.bootstrap_iframe();
  </script>
</head>
<body>
  <h2>Don't panic!</h2>
  <p>This is a SockJS hidden iframe. It's used for cross domain magic.</p>
</body>
</html>"#
    )
}

/// The messages of a client payload: a JSON array of strings (xhr_send, jsonp_send and the
/// websocket transport), or, when `single_allowed`, one JSON string (websocket).
pub(crate) fn parse_messages(json: &[u8], single_allowed: bool) -> Result<Vec<Bytes>, PayloadError> {
    let value: serde_json::Value = serde_json::from_slice(json).map_err(|_| PayloadError::BrokenJson)?;
    match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|item| match item {
                serde_json::Value::String(s) => Ok(Bytes::from(s)),
                _ => Err(PayloadError::Expected),
            })
            .collect(),
        serde_json::Value::String(s) if single_allowed => Ok(vec![Bytes::from(s)]),
        _ => Err(PayloadError::Expected),
    }
}

/// Why a client payload was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PayloadError {
    /// Empty, or not an array of strings: `Payload expected.`
    Expected,
    /// Not JSON: `Broken JSON encoding.`
    BrokenJson,
}

impl PayloadError {
    /// The error text sockjs-node answers with (HTTP 500).
    pub(crate) fn message(self) -> &'static str {
        match self {
            PayloadError::Expected => "Payload expected.",
            PayloadError::BrokenJson => "Broken JSON encoding.",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_escapes_like_sockjs_node() {
        assert_eq!(quote("a\"b\\c\n\u{0}\u{1f}"), r#""a\"b\\c\n\u0000\u001f""#);
        assert_eq!(
            quote("\u{200c}\u{2028}\u{2029}\u{2060}\u{fff0}\u{ffff}"),
            r#""\u200c\u2028\u2029\u2060\ufff0\uffff""#
        );
        assert_eq!(quote("😀"), r#""\ud83d\ude00""#);
        assert_eq!(quote("é€\u{7f}/"), "\"é€\u{7f}/\"");
        assert_eq!(messages_frame(&[Bytes::from_static(b"x"), Bytes::from_static(b"y\0")]), r#"a["x","y\u0000"]"#);
        assert_eq!(close_frame(GO_AWAY), r#"c[3000,"Go away!"]"#);
    }

    #[test]
    fn framings() {
        assert_eq!(Framing::Xhr.wrap("o"), "o\n");
        assert_eq!(Framing::EventSource.wrap("a[\"100%\"]"), "data: a[\"100%25\"]\r\n\r\n");
        assert_eq!(Framing::Jsonp("cb".into()).wrap("a[\"x\"]"), "/**/cb(\"a[\\\"x\\\"]\");\r\n");
        assert_eq!(Framing::HtmlFile.wrap("o"), "<script>\np(\"o\");\n</script>\r\n");
        let prelude = htmlfile_prelude("cb");
        assert!(prelude.len() > 1024 && prelude.contains("var c = parent.cb;"), "{}", prelude.len());
    }

    #[test]
    fn callbacks_and_payloads() {
        assert!(valid_callback("a_b.c-1", Some(32)));
        assert!(!valid_callback("a(b)", None));
        assert!(!valid_callback(&"x".repeat(33), Some(32)));
        assert_eq!(parse_messages(br#"["a","b"]"#, false).unwrap(), vec![Bytes::from("a"), Bytes::from("b")]);
        assert_eq!(parse_messages(br#""a""#, false), Err(PayloadError::Expected));
        assert_eq!(parse_messages(br#""a""#, true).unwrap(), vec![Bytes::from("a")]);
        assert_eq!(parse_messages(b"[\"x", false), Err(PayloadError::BrokenJson));
        assert_eq!(parse_messages(b"[1]", false), Err(PayloadError::Expected));
    }
}
