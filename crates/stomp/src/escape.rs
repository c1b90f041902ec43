//! Header escaping (spec "Value Encoding"). Internal.

use crate::version::Version;

/// Why a header could not be unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadEscape(pub String);

/// Decodes escapes in a header name or value.
///
/// 1.2: `\r` `\n` `\c` `\\`; 1.1: `\n` `\c` `\\`; 1.0: none (returned unchanged).
/// Any other sequence, or a trailing lone backslash, is a fatal error (spec:
/// "Undefined escape sequences such as \t MUST be treated as a fatal protocol error").
pub(crate) fn unescape(s: &str, version: Version) -> Result<String, BadEscape> {
    if version == Version::V1_0 || !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('r') if version == Version::V1_2 => out.push('\r'),
            Some('n') => out.push('\n'),
            Some('c') => out.push(':'),
            Some('\\') => out.push('\\'),
            Some(other) => return Err(BadEscape(format!("\\{other}"))),
            None => return Err(BadEscape("\\".to_owned())),
        }
    }
    Ok(out)
}

/// Octet of a header that has no representation in this frame/version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unencodable(pub u8);

/// Appends `s` escaped for the given frame/version; `is_name` controls whether
/// a raw colon is allowed when escaping is off (it is in values, not in names).
pub(crate) fn escape_into(
    dst: &mut Vec<u8>,
    s: &str,
    escaping: Option<Version>,
    is_name: bool,
) -> Result<(), Unencodable> {
    let version = match escaping {
        Some(v) if v != Version::V1_0 => v,
        _ => {
            // No escaping: CR/LF can never appear; a colon only in values.
            if let Some(b) = s.bytes().find(|&b| b == b'\r' || b == b'\n' || (is_name && b == b':')) {
                return Err(Unencodable(b));
            }
            dst.extend_from_slice(s.as_bytes());
            return Ok(());
        }
    };
    for &b in s.as_bytes() {
        match b {
            b'\r' if version == Version::V1_2 => dst.extend_from_slice(b"\\r"),
            b'\r' => return Err(Unencodable(b)),
            b'\n' => dst.extend_from_slice(b"\\n"),
            b':' => dst.extend_from_slice(b"\\c"),
            b'\\' => dst.extend_from_slice(b"\\\\"),
            _ => dst.push(b),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_then_unescape_is_identity_in_1_2() {
        let s = "a:b\\c\r\nd\\ré";
        let mut out = Vec::new();
        escape_into(&mut out, s, Some(Version::V1_2), false).unwrap();
        assert_eq!(out, b"a\\cb\\\\c\\r\\nd\\\\r\xc3\xa9");
        let back = unescape(std::str::from_utf8(&out).unwrap(), Version::V1_2).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn carriage_return_escape_is_undefined_in_1_1() {
        assert_eq!(unescape("a\\rb", Version::V1_1), Err(BadEscape("\\r".into())));
        assert_eq!(unescape("a\\nb", Version::V1_1), Ok("a\nb".into()));
    }

    #[test]
    fn lone_trailing_backslash_is_fatal() {
        assert_eq!(unescape("abc\\", Version::V1_2), Err(BadEscape("\\".into())));
    }

    #[test]
    fn unescaped_frames_reject_line_breaks_and_colons_in_names() {
        let mut out = Vec::new();
        assert_eq!(escape_into(&mut out, "a\nb", None, false), Err(Unencodable(b'\n')));
        assert_eq!(escape_into(&mut out, "a:b", None, true), Err(Unencodable(b':')));
        assert_eq!(escape_into(&mut out, "a:b", None, false), Ok(()));
    }
}
