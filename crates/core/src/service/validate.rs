//! Input validation: each failure is a specific `DomainError::Invalid { field, reason }`
//! (field names camelCase as in the API).

use chat_domain::{ConversationSettings, DomainError, Limits, SeqWindow};

/// Maximum length of a message's client-defined type, in bytes.
pub(crate) const MAX_KIND_BYTES: usize = 64;
/// Maximum slow mode (one day), in seconds.
pub(crate) const MAX_SLOW_MODE_SECONDS: i64 = 86_400;

type R = Result<(), DomainError>;

/// Invisible characters that do not make a text non-blank: zero-width space/joiners, word
/// joiner, BOM, soft hyphen.
fn is_invisible(c: char) -> bool {
    c.is_whitespace() || matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}')
}

/// Bidirectional overrides and isolates (U+202A..U+202E, U+2066..U+2069): refused in
/// names, where they can disguise one user or channel as another.
pub(crate) fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Control characters other than line breaks and tabs (U+0000 among them, which no database
/// text column stores).
fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\n' | '\r' | '\t')
}

/// A single-line free text (client ids, topics, search prefixes): no control characters.
pub(crate) fn single_line(value: &str, field: &'static str) -> R {
    if value.chars().any(char::is_control) {
        return Err(DomainError::invalid(
            field,
            "must not contain control characters (U+0000..U+001F, U+007F..U+009F)",
        ));
    }
    Ok(())
}

/// Message text: not blank (whitespace and zero-width characters alone are blank), no
/// control characters but line breaks and tabs, at most `max_message_bytes`.
pub(crate) fn text(text: &str, limits: &Limits) -> R {
    if text.chars().all(is_invisible) {
        return Err(DomainError::invalid("text", "must not be empty or only whitespace"));
    }
    if text.chars().any(is_forbidden_control) {
        return Err(DomainError::invalid(
            "text",
            "must not contain control characters other than line breaks and tabs",
        ));
    }
    if text.len() > limits.max_message_bytes {
        return Err(DomainError::invalid(
            "text",
            format!("at most {} bytes (got {})", limits.max_message_bytes, text.len()),
        ));
    }
    Ok(())
}

/// Client message id: 1..=`max_client_msg_id_bytes`.
pub(crate) fn client_msg_id(id: Option<&str>, limits: &Limits) -> R {
    match id {
        Some("") => Err(DomainError::invalid("clientMsgId", "must not be empty")),
        Some(id) if id.len() > limits.max_client_msg_id_bytes => Err(DomainError::invalid(
            "clientMsgId",
            format!("at most {} bytes (got {})", limits.max_client_msg_id_bytes, id.len()),
        )),
        // Ids are matched exactly, but MySQL/MariaDB's collation ignores trailing spaces:
        // refusing surrounding whitespace makes every engine agree on what a retry is.
        Some(id) if id.trim() != id => {
            Err(DomainError::invalid("clientMsgId", "must not start or end with whitespace"))
        }
        Some(id) => single_line(id, "clientMsgId"),
        None => Ok(()),
    }
}

/// Client message type: 1..=64 bytes, no control characters.
pub(crate) fn kind(kind: &str) -> R {
    if kind.is_empty() || kind.len() > MAX_KIND_BYTES {
        return Err(DomainError::invalid("type", format!("1..={MAX_KIND_BYTES} bytes")));
    }
    if kind.chars().any(char::is_control) {
        return Err(DomainError::invalid("type", "must not contain control characters"));
    }
    Ok(())
}

/// Emoji: 1..=`max_emoji_bytes`; either a shortcode `:name:` (`[a-z0-9_+-]`) or emoji
/// characters: no whitespace, control, bidi or invisible-only content, and no ASCII other
/// than the digits, `#` and `*` of keycap sequences.
pub(crate) fn emoji(emoji: &str, limits: &Limits) -> R {
    if emoji.is_empty() || emoji.len() > limits.max_emoji_bytes {
        return Err(DomainError::invalid("emoji", format!("1..={} bytes", limits.max_emoji_bytes)));
    }
    let shortcode = emoji.len() > 2
        && emoji.starts_with(':')
        && emoji.ends_with(':')
        && emoji[1..emoji.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b));
    if shortcode {
        return Ok(());
    }
    if emoji.chars().any(|c| c.is_whitespace() || c.is_control() || is_bidi_control(c)) {
        return Err(DomainError::invalid("emoji", "must not contain whitespace, control or bidi characters"));
    }
    if emoji.chars().any(|c| c.is_ascii() && !(c.is_ascii_digit() || c == '#' || c == '*'))
        || emoji.chars().all(is_invisible)
    {
        return Err(DomainError::invalid("emoji", "must be an emoji or a :shortcode:"));
    }
    Ok(())
}

/// Channel name: trimmed, 1..=`max_name_bytes`; returns the trimmed name.
pub(crate) fn name(name: &str, limits: &Limits) -> Result<String, DomainError> {
    let t = name.trim();
    if t.is_empty() {
        return Err(DomainError::invalid("name", "must not be blank"));
    }
    if t.len() > limits.max_name_bytes {
        return Err(DomainError::invalid("name", format!("at most {} bytes", limits.max_name_bytes)));
    }
    if t.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        return Err(DomainError::invalid("name", "must not contain control or bidi override characters"));
    }
    Ok(t.to_string())
}

/// Topic: at most `max_topic_bytes`.
pub(crate) fn topic(topic: Option<&str>, limits: &Limits) -> R {
    match topic {
        Some(t) if t.len() > limits.max_topic_bytes => {
            Err(DomainError::invalid("topic", format!("at most {} bytes", limits.max_topic_bytes)))
        }
        Some(t) if t.chars().any(is_forbidden_control) => {
            Err(DomainError::invalid("topic", "must not contain control characters other than line breaks and tabs"))
        }
        _ => Ok(()),
    }
}

/// Settings: `slow_mode_seconds` in 0..=86,400.
pub(crate) fn settings(s: &ConversationSettings) -> R {
    if !(0..=MAX_SLOW_MODE_SECONDS).contains(&s.slow_mode_seconds) {
        return Err(DomainError::invalid("slowModeSeconds", format!("0..={MAX_SLOW_MODE_SECONDS} seconds")));
    }
    Ok(())
}

/// A page size in 1..=max.
pub(crate) fn limit(limit: i64, max: i64, field: &'static str) -> R {
    if (1..=max).contains(&limit) { Ok(()) } else { Err(DomainError::invalid(field, format!("1..={max}"))) }
}

/// A sequence number bound: not negative.
pub(crate) fn seq(seq: i64, field: &'static str) -> R {
    if seq >= 0 { Ok(()) } else { Err(DomainError::invalid(field, "must not be negative")) }
}

/// A seq window: limit 1..=`max_page`, bounds not negative.
pub(crate) fn window(w: &SeqWindow, limits: &Limits) -> R {
    limit(w.limit, limits.max_page, "limit")?;
    if let Some(a) = w.after_seq {
        seq(a, "afterSeq")?;
    }
    if let Some(b) = w.before_seq {
        seq(b, "beforeSeq")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_inputs_with_their_field() {
        let l = Limits::default();
        let field = |r: R| match r {
            Err(DomainError::Invalid { field, .. }) => field,
            other => panic!("expected Invalid, got {other:?}"),
        };
        assert_eq!(field(text("  ", &l)), "text");
        assert_eq!(field(text(&"x".repeat(l.max_message_bytes + 1), &l)), "text");
        assert!(text(&"x".repeat(l.max_message_bytes), &l).is_ok());
        assert_eq!(field(client_msg_id(Some(""), &l)), "clientMsgId");
        assert_eq!(field(client_msg_id(Some(&"c".repeat(129)), &l)), "clientMsgId");
        assert_eq!(field(client_msg_id(Some("k "), &l)), "clientMsgId");
        assert_eq!(field(client_msg_id(Some(" k"), &l)), "clientMsgId");
        assert!(client_msg_id(Some("k k"), &l).is_ok());
        assert_eq!(field(kind(&"k".repeat(65))), "type");
        assert_eq!(field(emoji("a b", &l)), "emoji");
        assert_eq!(field(emoji("", &l)), "emoji");
        assert!(emoji("👍", &l).is_ok());
        assert!(emoji("👨\u{200D}👩\u{200D}👧", &l).is_ok());
        assert!(emoji("1\u{FE0F}\u{20E3}", &l).is_ok());
        assert!(emoji(":thumbs_up:", &l).is_ok());
        assert_eq!(field(emoji("/", &l)), "emoji");
        assert_eq!(field(emoji("\u{202E}", &l)), "emoji");
        assert_eq!(field(emoji("\u{0}", &l)), "emoji");
        assert_eq!(field(text("x\u{0}", &l)), "text");
        assert_eq!(field(text("\u{200B}\u{FEFF} ", &l)), "text");
        assert!(text("line one\nline two\ttab", &l).is_ok());
        assert_eq!(field(client_msg_id(Some("a\u{0}"), &l)), "clientMsgId");
        assert_eq!(field(topic(Some("t\u{0}"), &l)), "topic");
        assert_eq!(field(name("evil\u{202E}name", &l).map(|_| ())), "name");
        assert_eq!(field(name("   ", &l).map(|_| ())), "name");
        assert_eq!(field(name(&"n".repeat(81), &l).map(|_| ())), "name");
        assert_eq!(name("  general ", &l).unwrap(), "general");
        assert_eq!(field(topic(Some(&"t".repeat(1025)), &l)), "topic");
        assert_eq!(field(limit(0, 500, "limit")), "limit");
        assert_eq!(field(limit(501, 500, "limit")), "limit");
        assert_eq!(
            field(settings(&ConversationSettings { slow_mode_seconds: -1, ..Default::default() })),
            "slowModeSeconds"
        );
    }
}
