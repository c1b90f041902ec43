//! Input validation: each failure is a specific `DomainError::Invalid { field, reason }`
//! (field names camelCase as in the API).

use chat_domain::{ConversationSettings, DomainError, Limits, SeqWindow};

/// Maximum length of a message's client-defined type, in bytes.
pub(crate) const MAX_KIND_BYTES: usize = 64;
/// Maximum slow mode (one day), in seconds.
pub(crate) const MAX_SLOW_MODE_SECONDS: i64 = 86_400;

type R = Result<(), DomainError>;

/// Message text: not blank, at most `max_message_bytes`.
pub(crate) fn text(text: &str, limits: &Limits) -> R {
    if text.trim().is_empty() {
        return Err(DomainError::invalid("text", "must not be empty"));
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
        _ => Ok(()),
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

/// Emoji: 1..=`max_emoji_bytes`, no whitespace or control characters.
pub(crate) fn emoji(emoji: &str, limits: &Limits) -> R {
    if emoji.is_empty() || emoji.len() > limits.max_emoji_bytes {
        return Err(DomainError::invalid("emoji", format!("1..={} bytes", limits.max_emoji_bytes)));
    }
    if emoji.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::invalid("emoji", "must not contain whitespace"));
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
    if t.chars().any(char::is_control) {
        return Err(DomainError::invalid("name", "must not contain control characters"));
    }
    Ok(t.to_string())
}

/// Topic: at most `max_topic_bytes`.
pub(crate) fn topic(topic: Option<&str>, limits: &Limits) -> R {
    match topic {
        Some(t) if t.len() > limits.max_topic_bytes => {
            Err(DomainError::invalid("topic", format!("at most {} bytes", limits.max_topic_bytes)))
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
        assert_eq!(field(kind(&"k".repeat(65))), "type");
        assert_eq!(field(emoji("a b", &l)), "emoji");
        assert_eq!(field(emoji("", &l)), "emoji");
        assert!(emoji("👍", &l).is_ok());
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
