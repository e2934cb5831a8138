//! The classic matcher parser (`pkg/labels/parse.go`), Alertmanager's only
//! parser before 0.27 and still the one `classic-mode` and the fallback
//! answer with.

use super::{MatchType, Matcher, MatcherError};

/// Go regexp's `\s` is ASCII only (`[\t\n\f\r ]`), unlike Rust's `trim`.
fn is_go_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
}

/// Parses one matcher: a classic label name, an operator, and a value that
/// may be double-quoted with OpenMetrics escapes (`labels.ParseMatcher`).
pub(crate) fn parse_matcher(s: &str) -> Result<Matcher, MatcherError> {
    let (name, kind, raw) =
        split_matcher(s).ok_or_else(|| MatcherError::BadFormat(s.to_string()))?;
    let (body, mut expect_quote) = match raw.strip_prefix('"') {
        Some(b) => (b, true),
        None => (raw, false),
    };
    let mut value = String::with_capacity(body.len());
    let mut escaped = false;
    let chars: Vec<(usize, char)> = body.char_indices().collect();
    for (pos, &(i, c)) in chars.iter().enumerate() {
        let is_last = pos + 1 == chars.len();
        if escaped {
            escaped = false;
            match c {
                'n' => value.push('\n'),
                '"' | '\\' => value.push(c),
                _ => {
                    value.push('\\');
                    value.push(c);
                }
            }
            continue;
        }
        match c {
            '\\' if !is_last => escaped = true,
            '\\' => value.push('\\'),
            '"' => {
                if !expect_quote || i + 1 < body.len() {
                    return Err(MatcherError::UnescapedQuote(raw.to_string()));
                }
                expect_quote = false;
            }
            _ => value.push(c),
        }
    }
    if expect_quote {
        return Err(MatcherError::UnescapedQuote(raw.to_string()));
    }
    Matcher::new(kind, name, &value)
}

/// `^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*((?s).*?)\s*$` without a
/// regex: returns the name, operator and the trimmed raw value.
fn split_matcher(s: &str) -> Option<(&str, MatchType, &str)> {
    let t = s.trim_start_matches(is_go_space);
    let name_len = t
        .char_indices()
        .take_while(|(i, c)| {
            c.is_ascii_alphabetic() || *c == '_' || *c == ':' || (*i > 0 && c.is_ascii_digit())
        })
        .count();
    if name_len == 0 {
        return None;
    }
    let name = &t[..name_len];
    let rest = t[name_len..].trim_start_matches(is_go_space);
    let (kind, rest) = if let Some(r) = rest.strip_prefix("=~") {
        (MatchType::Regexp, r)
    } else if let Some(r) = rest.strip_prefix('=') {
        (MatchType::Equal, r)
    } else if let Some(r) = rest.strip_prefix("!=") {
        (MatchType::NotEqual, r)
    } else if let Some(r) = rest.strip_prefix("!~") {
        (MatchType::NotRegexp, r)
    } else {
        return None;
    };
    Some((name, kind, rest.trim_matches(is_go_space)))
}

/// Parses a comma-separated list, optionally in braces, with commas inside
/// quotes kept (`labels.ParseMatchers`).
pub(crate) fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = input.strip_prefix('{').unwrap_or(input);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut in_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            // A comma inside quotes leaves a pending escape pending, as in Go.
            ',' => {
                if !in_quotes {
                    tokens.push(std::mem::take(&mut token));
                    continue;
                }
            }
            '"' => {
                if !escaped {
                    in_quotes = !in_quotes;
                } else {
                    escaped = false;
                }
            }
            '\\' => escaped = !escaped,
            _ => escaped = false,
        }
        token.push(c);
    }
    // Only the last token is trimmed (Go's `strings.TrimSpace`, Unicode).
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|t| parse_matcher(t)).collect()
}
