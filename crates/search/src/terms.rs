//! Query words and snippets.
//!
//! A word is a maximal run of Unicode letters and digits (`char::is_alphanumeric`), lower-cased;
//! everything else separates words. This is how the tantivy index tokenizes text
//! (`SimpleTokenizer` + `LowerCaser`), and close to the databases' tokenizers: PostgreSQL's
//! `simple` parser (which also keeps e-mail addresses and URLs whole), SQLite's `unicode61`
//! (which also removes diacritics) and InnoDB's (which ignores words shorter than 3 characters
//! and its stopwords). Queries of plain words behave the same on every engine.

/// Longest query accepted, in bytes (UTF-8).
pub const MAX_QUERY_BYTES: usize = 512;
/// Most distinct words in a query.
pub const MAX_TERMS: usize = 16;
/// Longest word indexed or searched, in bytes; longer words are dropped (as tantivy's
/// `RemoveLongFilter` does).
pub(crate) const MAX_TERM_BYTES: usize = 64;

/// Why a query string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TermsError {
    /// Blank, or no letters or digits in it.
    #[error("the query has no words to search for (letters or digits)")]
    Empty,
    /// Longer than [`MAX_QUERY_BYTES`].
    #[error("the query is longer than {MAX_QUERY_BYTES} bytes")]
    TooLong,
    /// More than [`MAX_TERMS`] distinct words.
    #[error("the query has more than {MAX_TERMS} distinct words")]
    TooManyWords,
}

/// Splits `text` into lower-case words, in order (with repeats).
pub(crate) fn words(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut start: Option<usize> = None;
    let mut out = Vec::new();
    for (i, c) in text.char_indices() {
        match (c.is_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, &text[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, &text[s..]));
    }
    out.into_iter()
}

/// The distinct lower-case words of a user's query, in order of first appearance; words
/// longer than 64 bytes are dropped.
///
/// # Errors
/// [`TermsError::TooLong`] beyond [`MAX_QUERY_BYTES`], [`TermsError::Empty`] without any word,
/// [`TermsError::TooManyWords`] beyond [`MAX_TERMS`].
pub fn terms(query: &str) -> Result<Vec<String>, TermsError> {
    if query.len() > MAX_QUERY_BYTES {
        return Err(TermsError::TooLong);
    }
    let mut out: Vec<String> = Vec::new();
    for (_, w) in words(query) {
        let w = w.to_lowercase();
        if w.len() > MAX_TERM_BYTES || out.contains(&w) {
            continue;
        }
        if out.len() == MAX_TERMS {
            return Err(TermsError::TooManyWords);
        }
        out.push(w);
    }
    if out.is_empty() { Err(TermsError::Empty) } else { Ok(out) }
}

/// A piece of a snippet: text, and whether it is a matched word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnippetPart {
    /// The text of this piece.
    pub text: String,
    /// It is one of the query's words.
    pub matched: bool,
}

/// Characters of context kept before the first match.
const CONTEXT_BEFORE: usize = 40;

/// An excerpt of `text` of at most `max_chars` characters (plus `…` marks where cut), split
/// into pieces with the words of `terms` marked: it starts a little before the first match
/// (at the start when no word matches). Pure and cheap (one pass over the text).
pub fn snippet(text: &str, terms: &[String], max_chars: usize) -> Vec<SnippetPart> {
    let matches: Vec<(usize, usize)> = words(text)
        .filter(|(_, w)| terms.iter().any(|t| *t == w.to_lowercase()))
        .map(|(s, w)| (s, s + w.len()))
        .collect();
    // Window start: CONTEXT_BEFORE characters before the first match, on a char boundary.
    let first = matches.first().map_or(0, |m| m.0);
    let start = text[..first].char_indices().rev().nth(CONTEXT_BEFORE.saturating_sub(1)).map_or(0, |(i, _)| i);
    let end = text[start..].char_indices().nth(max_chars).map_or(text.len(), |(i, _)| start + i);
    let mut parts = Vec::new();
    let mut push = |t: &str, matched: bool| {
        if !t.is_empty() {
            parts.push(SnippetPart { text: t.to_owned(), matched });
        }
    };
    if start > 0 {
        push("…", false);
    }
    let mut at = start;
    for &(s, e) in matches.iter().filter(|(s, e)| *s >= start && *e <= end) {
        push(&text[at..s], false);
        push(&text[s..e], true);
        at = e;
    }
    push(&text[at..end], false);
    if end < text.len() {
        push("…", false);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_lowercase_distinct_words() {
        assert_eq!(terms("Hello, WORLD! hello-world 42").unwrap(), vec!["hello", "world", "42"]);
        assert_eq!(terms("Zoë café").unwrap(), vec!["zoë", "café"]);
        assert_eq!(terms("  !!! "), Err(TermsError::Empty));
        assert_eq!(terms(""), Err(TermsError::Empty));
        assert_eq!(terms(&"a".repeat(MAX_QUERY_BYTES + 1)), Err(TermsError::TooLong));
        let many: String = (0..=MAX_TERMS).map(|i| format!("w{i} ")).collect();
        assert_eq!(terms(&many), Err(TermsError::TooManyWords));
        assert_eq!(terms(&format!("{} ok", "x".repeat(65))).unwrap(), vec!["ok"]);
    }

    fn render(parts: &[SnippetPart]) -> String {
        parts.iter().map(|p| if p.matched { format!("[{}]", p.text) } else { p.text.clone() }).collect()
    }

    #[test]
    fn snippet_marks_matches_and_cuts_around_the_first() {
        let t = vec!["budget".to_owned()];
        assert_eq!(
            render(&snippet("The Budget is due; budgets differ", &t, 100)),
            "The [Budget] is due; budgets differ"
        );
        let long = format!("{} budget {}", "x ".repeat(100), "y ".repeat(100));
        let r = render(&snippet(&long, &t, 60));
        assert!(r.starts_with('…') && r.ends_with('…'), "{r}");
        assert!(r.contains("[budget]"), "{r}");
        assert_eq!(r.chars().filter(|c| *c != '…' && *c != '[' && *c != ']').count(), 60);
        assert_eq!(render(&snippet("nothing here", &t, 5)), "nothi…");
        assert_eq!(render(&snippet("ünïcödé budget", &t, 100)), "ünïcödé [budget]");
    }
}
