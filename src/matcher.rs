//! Label matchers: `name="v"`, `!=`, `=~`, `!~`, with regexes anchored the way
//! Alertmanager anchors them (`^(?:re)$`). Parsed once at the edge (config,
//! API filters) so the core only ever evaluates compiled matchers.

use std::fmt;
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::LabelSet;

/// Operators in the order Alertmanager's `MatchType` enumerates them, which
/// is the tie-breaker when route matchers are sorted for the route key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchType {
    Equal,
    NotEqual,
    Regexp,
    NotRegexp,
}

impl MatchType {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchType::Equal => "=",
            MatchType::NotEqual => "!=",
            MatchType::Regexp => "=~",
            MatchType::NotRegexp => "!~",
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MatcherError {
    #[error("bad matcher format: {0}")]
    BadFormat(String),
    #[error("matcher value contains unescaped double quote: {0}")]
    UnescapedQuote(String),
    #[error("invalid regular expression {value:?}: {reason}")]
    BadRegex { value: String, reason: String },
    #[error("invalid label name {0:?}")]
    BadName(String),
}

#[derive(Clone)]
pub struct Matcher {
    pub name: Arc<str>,
    pub value: Arc<str>,
    pub kind: MatchType,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.value == o.value && self.kind == o.kind
    }
}
impl Eq for Matcher {}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// The classic Prometheus label-name rule; Alertmanager's config loader
/// enforces it for `match`, `match_re`, `group_by` and `equal`.
pub fn is_valid_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Matcher {
    pub fn new(kind: MatchType, name: &str, value: &str) -> Result<Self, MatcherError> {
        let regex = match kind {
            MatchType::Regexp | MatchType::NotRegexp => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError::BadRegex {
                    value: value.to_string(),
                    reason: e.to_string(),
                })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: Arc::from(name),
            value: Arc::from(value),
            kind,
            regex,
        })
    }

    /// Whether the matcher accepts a label value (a missing label is "").
    pub fn matches(&self, v: &str) -> bool {
        match (&self.kind, &self.regex) {
            (MatchType::Equal, _) => v == &*self.value,
            (MatchType::NotEqual, _) => v != &*self.value,
            (MatchType::Regexp, Some(re)) => re.is_match(v),
            (MatchType::NotRegexp, Some(re)) => !re.is_match(v),
            // Constructed only through `new`, which always compiles regexes.
            (_, None) => false,
        }
    }

    /// Parses one matcher in Alertmanager's classic syntax
    /// (`pkg/labels/parse.go`): a label name, an operator, and a value that
    /// may be double-quoted with OpenMetrics escapes.
    pub fn parse(s: &str) -> Result<Self, MatcherError> {
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
}

/// `^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(=~|=|!=|!~)\s*((?s).*?)\s*$` without a
/// regex: returns the name, operator and the trimmed raw value.
fn split_matcher(s: &str) -> Option<(&str, MatchType, &str)> {
    let t = s.trim_start();
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
    let rest = t[name_len..].trim_start();
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
    Some((name, kind, rest.trim()))
}

impl fmt::Display for Matcher {
    /// Alertmanager's `Matcher.String()`, part of route keys and group keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.name, self.kind.as_str())?;
        for c in self.value.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                '"' => f.write_str("\\\"")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Parses a comma-separated list, optionally in braces, with commas inside
/// quotes kept (`ParseMatchers`).
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    let s = input.strip_prefix('{').unwrap_or(input);
    let s = s.strip_suffix('}').unwrap_or(s);
    let mut tokens = Vec::new();
    let mut token = String::new();
    let (mut in_quotes, mut escaped) = (false, false);
    for c in s.chars() {
        match c {
            ',' if !in_quotes => {
                tokens.push(std::mem::take(&mut token));
                continue;
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
    let last = token.trim();
    if !last.is_empty() {
        tokens.push(last.to_string());
    }
    tokens.iter().map(|t| Matcher::parse(t)).collect()
}

/// A list of matchers that all must match.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Matchers(pub Vec<Matcher>);

impl Matchers {
    pub fn matches(&self, labels: &LabelSet) -> bool {
        self.0.iter().all(|m| m.matches(labels.value(&m.name)))
    }

    /// Sorts by (name, value, type) as Alertmanager does before building
    /// route keys.
    pub fn sort(&mut self) {
        self.0.sort_by(|a, b| {
            a.name
                .cmp(&b.name)
                .then_with(|| a.value.cmp(&b.value))
                .then_with(|| a.kind.cmp(&b.kind))
        });
    }
}

impl fmt::Display for Matchers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, m) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{m}")?;
        }
        f.write_str("}")
    }
}

/// The `matchers:` list of routes and inhibit rules: each entry is a string
/// that may itself hold several comma-separated matchers.
impl<'de> Deserialize<'de> for Matchers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let lines = Vec::<String>::deserialize(d)?;
        let mut out = Vec::new();
        for l in lines {
            out.extend(parse_matchers(&l).map_err(serde::de::Error::custom)?);
        }
        Ok(Matchers(out))
    }
}

impl Serialize for Matchers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|m| m.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ls(p: &[(&str, &str)]) -> LabelSet {
        LabelSet::from_strs(p.iter().copied())
    }

    #[test]
    fn parses_classic_syntax() {
        let ms = parse_matchers(r#"{foo = "bar", dings != "bums", }"#).unwrap();
        assert_eq!(ms.len(), 2);
        assert_eq!(ms[0].to_string(), r#"foo="bar""#);
        assert_eq!(ms[1].kind, MatchType::NotEqual);
        let ms = parse_matchers(r#"quote="She said: \"Hi, ladies!\"",statuscode=~"5..""#).unwrap();
        assert_eq!(&*ms[0].value, "She said: \"Hi, ladies!\"");
        assert_eq!(ms[1].kind, MatchType::Regexp);
        let m = Matcher::parse("foo=bar").unwrap();
        assert_eq!(&*m.value, "bar");
        let m = Matcher::parse(r#"a="x\ny\\z\q""#).unwrap();
        assert_eq!(&*m.value, "x\ny\\z\\q");
        assert_eq!(Matcher::parse("foo=").unwrap().value.as_ref(), "");
    }

    #[test]
    fn refuses_bad_matchers() {
        assert!(matches!(
            Matcher::parse("=bar"),
            Err(MatcherError::BadFormat(_))
        ));
        assert!(matches!(
            Matcher::parse("foo bar"),
            Err(MatcherError::BadFormat(_))
        ));
        assert!(matches!(
            Matcher::parse("1foo=bar"),
            Err(MatcherError::BadFormat(_))
        ));
        assert!(matches!(
            Matcher::parse(r#"foo="bar"#),
            Err(MatcherError::UnescapedQuote(_))
        ));
        assert!(matches!(
            Matcher::parse(r#"foo="b"ar""#),
            Err(MatcherError::UnescapedQuote(_))
        ));
        assert!(matches!(
            Matcher::parse("foo=~(a"),
            Err(MatcherError::BadRegex { .. })
        ));
    }

    #[test]
    fn regexes_are_anchored() {
        let m = Matcher::parse(r#"severity=~"crit|warn""#).unwrap();
        assert!(m.matches("crit"));
        assert!(m.matches("warn"));
        assert!(!m.matches("critical"));
        assert!(!m.matches("xcrit"));
        let n = Matcher::parse("env!~prod.*").unwrap();
        assert!(n.matches("dev"));
        assert!(!n.matches("production"));
    }

    #[test]
    fn missing_label_is_empty_string() {
        let ms = Matchers(parse_matchers(r#"team="""#).unwrap());
        assert!(ms.matches(&ls(&[("a", "b")])));
        assert!(!ms.matches(&ls(&[("team", "x")])));
    }

    #[test]
    fn sorted_string_form_matches_route_keys() {
        let mut ms = Matchers(parse_matchers(r#"b="2",a=~"x|y",a="x""#).unwrap());
        ms.sort();
        assert_eq!(ms.to_string(), r#"{a="x",a=~"x|y",b="2"}"#);
        let m = Matcher::new(MatchType::Equal, "a", "q\"\\\n").unwrap();
        assert_eq!(m.to_string(), r#"a="q\"\\\n""#);
    }
}
