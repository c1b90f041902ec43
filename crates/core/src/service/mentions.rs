//! Mention parsing: `@username` tokens and `@channel` / `@here`.
//!
//! A mention is `@` at the start of the text or after a character that cannot be part of a
//! username (so `bob@example.com` is not a mention), followed by a username of
//! `[a-z0-9_.-]` (ASCII letters are folded to lower case), 3..=32 characters after trailing
//! `.` and `-` are trimmed (`thanks @bob.` mentions `bob`). `@channel` and `@here` set
//! [`ParsedMentions::channel`]. Usernames are resolved to user ids of the author's workspace
//! by the service; unknown names are ignored.

/// Maximum distinct usernames resolved per message (bounds store lookups).
pub const MAX_MENTIONS: usize = 50;

/// Mentions found in a text, before resolution to user ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ParsedMentions {
    /// Distinct lower-case usernames in order of first appearance (at most [`MAX_MENTIONS`]),
    /// without `channel` / `here`.
    pub usernames: Vec<String>,
    /// `@channel` or `@here` was used.
    pub channel: bool,
}

fn is_username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Parses the mentions of a message text (see the module documentation for the rules).
pub fn parse_mentions(text: &str) -> ParsedMentions {
    let mut out = ParsedMentions::default();
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let starts = c == '@' && !prev.is_some_and(|p| is_username_char(p) || p == '@');
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[i + 1..];
        let end = rest.find(|c: char| !is_username_char(c)).unwrap_or(rest.len());
        let token = rest[..end].trim_end_matches(['.', '-']).to_ascii_lowercase();
        // Skip over the consumed token so `prev` is its last character.
        while let Some(&(j, c2)) = chars.peek() {
            if j > i + end {
                break;
            }
            prev = Some(c2);
            chars.next();
        }
        match token.as_str() {
            "channel" | "here" => out.channel = true,
            t if (3..=32).contains(&t.len())
                && !out.usernames.iter().any(|u| u == t)
                && out.usernames.len() < MAX_MENTIONS =>
            {
                out.usernames.push(token);
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(t: &str) -> Vec<String> {
        parse_mentions(t).usernames
    }

    #[test]
    fn finds_usernames_and_channel() {
        let p = parse_mentions("hi @alice and @bob_2, see @channel");
        assert_eq!(p.usernames, vec!["alice", "bob_2"]);
        assert!(p.channel);
        assert!(parse_mentions("@here now").channel);
        assert!(!parse_mentions("no mentions here").channel);
    }

    #[test]
    fn handles_boundaries_and_punctuation() {
        assert_eq!(names("@alice"), vec!["alice"]);
        assert_eq!(names("thanks @bob."), vec!["bob"]);
        assert_eq!(names("(@carol)"), vec!["carol"]);
        assert_eq!(names("@dave: hi"), vec!["dave"]);
        assert_eq!(names("@d.e-f_g ok"), vec!["d.e-f_g"]);
        assert_eq!(names("@Alice"), vec!["alice"]);
        assert!(names("héllo @élan @zoë").is_empty());
    }

    #[test]
    fn ignores_emails_short_long_and_duplicates() {
        assert!(names("mail bob@example.com").is_empty());
        assert!(names("@@alice").is_empty());
        assert!(names("@ab and @").is_empty());
        assert!(names(&format!("@{}", "a".repeat(33))).is_empty());
        assert_eq!(names("@amy @amy @AMY"), vec!["amy"]);
        assert_eq!(names("@amy@bob"), vec!["amy"]);
    }

    #[test]
    fn caps_the_number_of_usernames() {
        let text: String = (0..100).map(|i| format!("@user{i:03} ")).collect();
        assert_eq!(names(&text).len(), MAX_MENTIONS);
    }
}
