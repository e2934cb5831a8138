//! Label matchers: `name="v"`, `!=`, `=~`, `!~`, with regexes anchored the way
//! Alertmanager anchors them (`^(?:re)$`). Parsed once at the edge (config,
//! API filters) so the core only ever evaluates compiled matchers.
//!
//! Two syntaxes exist, as in Alertmanager: the classic one (`classic`) and
//! the UTF-8 one (`utf8`). Which one applies is process-wide
//! ([`Mode`], chosen once from `--enable-feature`), like Go's
//! `compat.InitFromFlags`, so config loading through serde and the API see
//! the same mode without threading it through every call.

mod classic;
pub(crate) mod gostr;
mod reduce;
mod utf8;

pub(crate) use reduce::{anchored_hir, prefix_literals, reduce_regex, Form, Required};

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::model::gostr::go_quote;
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
    /// The UTF-8 parser's and `compat`'s own texts, already formatted the
    /// way Alertmanager prints them (with `start:end` columns).
    #[error("{0}")]
    Syntax(String),
}

/// Which matcher parser and label-name rule apply (`compat.InitFromFlags`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The default: UTF-8 parser first, the classic one where it fails or
    /// disagrees, so every input 0.26 accepted still means the same.
    Fallback,
    /// `--enable-feature=utf8-strict-mode`.
    Utf8Strict,
    /// `--enable-feature=classic-mode`.
    Classic,
}

static MODE: AtomicU8 = AtomicU8::new(0);

impl Mode {
    /// The mode the `--enable-feature` values ask for; both flags at once is
    /// Alertmanager's start-up error.
    pub fn from_features<S: AsRef<str>>(features: &[S]) -> Result<Mode, String> {
        let has = |f: &str| features.iter().any(|x| x.as_ref() == f);
        match (has("classic-mode"), has("utf8-strict-mode")) {
            (true, true) => Err("cannot have both classic and UTF-8 modes enabled".into()),
            (true, false) => Ok(Mode::Classic),
            (false, true) => Ok(Mode::Utf8Strict),
            (false, false) => Ok(Mode::Fallback),
        }
    }

    /// Makes this the process-wide mode; called once at start-up.
    pub fn install(self) {
        let v = match self {
            Mode::Fallback => 0,
            Mode::Utf8Strict => 1,
            Mode::Classic => 2,
        };
        MODE.store(v, Ordering::Relaxed);
    }

    /// The process-wide mode.
    pub fn current() -> Mode {
        match MODE.load(Ordering::Relaxed) {
            1 => Mode::Utf8Strict,
            2 => Mode::Classic,
            _ => Mode::Fallback,
        }
    }
}

#[derive(Clone)]
pub struct Matcher {
    pub name: Arc<str>,
    pub value: Arc<str>,
    pub kind: MatchType,
    test: ValueTest,
}

/// How a matcher decides a value, chosen once when it is parsed.
#[derive(Clone)]
enum ValueTest {
    /// `=` and `!=`: a comparison with `value`.
    Plain,
    /// A regex whose answer a set of values or a prefix gives exactly
    /// (`reduce.rs`): most regexes users write.
    Reduced(Arc<Form>),
    Regex(Regex),
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

/// `compat.IsValidLabelName` in the current mode: route `group_by`, inhibit
/// `equal`, silence matcher names. Outside classic mode any non-empty name
/// is valid (Rust strings are always valid UTF-8).
pub fn is_valid_label_name(n: &str) -> bool {
    is_valid_label_name_in(Mode::current(), n)
}

/// [`is_valid_label_name`] for an explicit mode.
pub fn is_valid_label_name_in(mode: Mode, n: &str) -> bool {
    match mode {
        Mode::Classic => is_valid_classic_label_name(n),
        Mode::Fallback | Mode::Utf8Strict => !n.is_empty(),
    }
}

/// The classic Prometheus label-name rule (`model.LabelNameRE`), which
/// Alertmanager keeps for `match`/`match_re` keys in every mode.
pub fn is_valid_classic_label_name(n: &str) -> bool {
    let mut chars = n.chars();
    match chars.next() {
        Some(c) if c.is_ascii_alphabetic() || c == '_' => {}
        _ => return false,
    }
    chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Matcher {
    pub fn new(kind: MatchType, name: &str, value: &str) -> Result<Self, MatcherError> {
        let test = match kind {
            MatchType::Regexp | MatchType::NotRegexp => {
                // Compiled even when reduced: the regex crate's verdict and
                // error are what decide whether the value is a valid regex.
                let re =
                    Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError::BadRegex {
                        value: value.to_string(),
                        reason: e.to_string(),
                    })?;
                match reduce_regex(value).0 {
                    Some(form) => ValueTest::Reduced(Arc::new(form)),
                    None => ValueTest::Regex(re),
                }
            }
            MatchType::Equal | MatchType::NotEqual => ValueTest::Plain,
        };
        Ok(Matcher {
            name: Arc::from(name),
            value: Arc::from(value),
            kind,
            test,
        })
    }

    /// Whether the matcher accepts a label value (a missing label is "").
    pub fn matches(&self, v: &str) -> bool {
        let hit = match &self.test {
            ValueTest::Plain => v == &*self.value,
            ValueTest::Reduced(form) => form.matches(v),
            ValueTest::Regex(re) => re.is_match(v),
        };
        hit == matches!(self.kind, MatchType::Equal | MatchType::Regexp)
    }

    /// The regex's answer as a value set or prefix, when it has one.
    pub(crate) fn reduced(&self) -> Option<&Arc<Form>> {
        match &self.test {
            ValueTest::Reduced(form) => Some(form),
            _ => None,
        }
    }

    /// Parses one matcher in Alertmanager's classic syntax
    /// (`pkg/labels/parse.go`): a label name, an operator, and a value that
    /// may be double-quoted with OpenMetrics escapes.
    pub fn parse(s: &str) -> Result<Self, MatcherError> {
        classic::parse_matcher(s)
    }
}

impl fmt::Display for Matcher {
    /// Alertmanager's `Matcher.String()`, part of route keys and group keys:
    /// a name holding a reserved rune is Go-quoted, and then so is the value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.name.chars().any(utf8::is_reserved) {
            return write!(
                f,
                "{}{}{}",
                go_quote(&self.name),
                self.kind.as_str(),
                go_quote(&self.value)
            );
        }
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

/// The text of the fallback's "incompatible input" warning, Alertmanager's
/// word for word so that log searches written for it find Herald's too.
const INCOMPATIBLE: &str = "Alertmanager is moving to a new parser for labels and matchers, and this input is incompatible. Alertmanager has instead parsed the input using the classic matchers parser as a fallback. To make this input compatible with the UTF-8 matchers parser please make sure all regular expressions and values are double-quoted and backslashes are escaped. If you are still seeing this message please open an issue.";

/// Parses a list of matchers (`compat.Matchers`) in the process-wide mode,
/// for the config (`matchers`, `source_matchers`, `target_matchers`).
pub fn parse_matchers(input: &str) -> Result<Vec<Matcher>, MatcherError> {
    parse_matchers_in(Mode::current(), input, "config")
}

/// `compat.Matchers` in an explicit mode; `origin` only labels the
/// fallback's warnings (`config`, `api`, `cli`, `web`).
pub fn parse_matchers_in(
    mode: Mode,
    input: &str,
    origin: &str,
) -> Result<Vec<Matcher>, MatcherError> {
    match mode {
        Mode::Classic => classic::parse_matchers(input),
        Mode::Utf8Strict => utf8::parse_matchers(input).map_err(MatcherError::Syntax),
        Mode::Fallback => {
            let utf8 = utf8::parse_matchers(input);
            let classic = classic::parse_matchers(input);
            match (utf8, classic) {
                (Err(_), Err(e)) => Err(e),
                (Err(err), Ok(c)) => {
                    let suggestion = c
                        .iter()
                        .map(|m| m.to_string())
                        .collect::<Vec<_>>()
                        .join(",");
                    tracing::warn!(input, origin, err, suggestion, "{INCOMPATIBLE}");
                    Ok(c)
                }
                // Go compares a nil list with an empty one here, so input
                // without matchers ("", "{}") is logged as a disagreement too.
                (Ok(u), Ok(c)) if u != c || u.is_empty() => {
                    tracing::warn!(input, origin, "Matchers input has disagreement");
                    Ok(c)
                }
                (Ok(u), _) => Ok(u),
            }
        }
    }
}

/// Parses exactly one matcher (`compat.Matcher`) in the process-wide mode:
/// the API's `filter` parameters.
pub fn parse_matcher(input: &str, origin: &str) -> Result<Matcher, MatcherError> {
    parse_matcher_in(Mode::current(), input, origin)
}

/// `compat.Matcher` in an explicit mode. Outside classic mode braces are
/// refused up front: a filter is one matcher, not a selector.
pub fn parse_matcher_in(mode: Mode, input: &str, origin: &str) -> Result<Matcher, MatcherError> {
    if mode != Mode::Classic && (input.starts_with('{') || input.ends_with('}')) {
        return Err(MatcherError::Syntax(format!(
            "unexpected open or close brace: {input}"
        )));
    }
    match mode {
        Mode::Classic => classic::parse_matcher(input),
        Mode::Utf8Strict => utf8::parse_matcher(input).map_err(MatcherError::Syntax),
        Mode::Fallback => {
            let utf8 = utf8::parse_matcher(input);
            let classic = classic::parse_matcher(input);
            match (utf8, classic) {
                (Err(_), Err(e)) => Err(e),
                (Err(err), Ok(c)) => {
                    let suggestion = c.to_string();
                    tracing::warn!(input, origin, err, suggestion, "{INCOMPATIBLE}");
                    Ok(c)
                }
                (Ok(u), Ok(c)) if u != c => {
                    tracing::warn!(input, origin, "Matchers input has disagreement");
                    Ok(c)
                }
                (Ok(u), _) => Ok(u),
            }
        }
    }
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

    fn utf8(s: &str) -> Result<String, String> {
        parse_matchers_in(Mode::Utf8Strict, s, "test")
            .map(|ms| Matchers(ms).to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn utf8_parser_accepts_alertmanagers_grammar() {
        let ok = [
            ("", "{}"),
            ("{}", "{}"),
            (" { } ", "{}"),
            ("foo=bar", r#"{foo="bar"}"#),
            (r#"{foo="bar",}"#, r#"{foo="bar"}"#),
            ("foo=bar,", r#"{foo="bar"}"#),
            (r#""service.name"="api""#, r#"{service.name="api"}"#),
            ("service.name=api", r#"{service.name="api"}"#),
            ("föö=bär", r#"{föö="bär"}"#),
            (r#""foo bar"!~"a b""#, r#"{"foo bar"!~"a b"}"#),
            ("1abc=~[a-z]+", r#"{1abc=~"[a-z]+"}"#),
            (r#"a="\u00e9\t\x41""#, r#"{a="é	A"}"#),
            (r#"a = "x" , b != y"#, r#"{a="x",b!="y"}"#),
            ("a=\"\"", r#"{a=""}"#),
            (r#"a="{,}""#, r#"{a="{,}"}"#),
        ];
        for (input, want) in ok {
            assert_eq!(utf8(input).as_deref(), Ok(want), "{input:?}");
        }
    }

    #[test]
    fn utf8_parser_errors_read_as_alertmanagers() {
        let bad = [
            (",", "0:1: unexpected ,: expected label name"),
            ("{,}", "1:2: unexpected ,: expected label name"),
            ("{", "0:1: end of input: expected close brace"),
            ("}", "0:1: }: expected opening brace"),
            ("foo=bar}", "0:8: }: expected opening brace"),
            ("{foo=bar", "0:8: end of input: expected close brace"),
            (
                r#"{foo=:"bar"}"#,
                r#"6:11: unexpected "bar": expected a comma or close brace"#,
            ),
            (r#"{foo="bar\w"}"#, r#"5:12: "bar\w": invalid input"#),
            (r#"{"foo"=~"\d+"}"#, r#"8:13: "\d+": invalid input"#),
            (
                r"{foo=bar\n}",
                r"8:9: \: invalid input: expected a comma or close brace",
            ),
            (r#"{"foo"="\xf0\x9f"}"#, r#"7:17: "\xf0\x9f": invalid input"#),
            ("foo", "end of input: expected an operator such as '=', '!=', '=~' or '!~'"),
            ("foo=", "end of input: expected label value"),
            (
                "foo!",
                "3:4: unexpected end of input, expected one of '=~': expected an operator such as '=', '!=', '=~' or '!~'",
            ),
            ("foo!x", "3:4: !: expected one of '=~': expected an operator such as '=', '!=', '=~' or '!~'"),
            (r#"foo="bar"#, r#"4:8: "bar: missing end ": expected label value"#),
            ("foo='bar'", "4:5: ': invalid input: expected label value"),
            ("{a=b}}", "5:6: }: expected end of input"),
        ];
        for (input, want) in bad {
            assert_eq!(utf8(input), Err(want.to_string()), "{input:?}");
        }
        assert!(utf8("a=~(x")
            .unwrap_err()
            .starts_with("failed to create matcher: "));
    }

    #[test]
    fn single_matcher_rules_follow_compat() {
        let one = |mode, s| parse_matcher_in(mode, s, "test").map(|m| m.to_string());
        assert_eq!(one(Mode::Utf8Strict, "a=b").as_deref(), Ok(r#"a="b""#));
        for mode in [Mode::Utf8Strict, Mode::Fallback] {
            assert_eq!(
                one(mode, "{a=b}").unwrap_err().to_string(),
                "unexpected open or close brace: {a=b}"
            );
        }
        assert_eq!(
            one(Mode::Utf8Strict, "").unwrap_err().to_string(),
            "no matchers"
        );
        assert_eq!(
            one(Mode::Utf8Strict, "a=b,c=d").unwrap_err().to_string(),
            "expected 1 matcher, found 2"
        );
        // The classic single parser keeps the rest of the line as the value.
        assert_eq!(
            one(Mode::Fallback, "a=b,c=d").as_deref(),
            Ok(r#"a="b,c=d""#)
        );
        assert_eq!(one(Mode::Classic, "a=b,c=d").as_deref(), Ok(r#"a="b,c=d""#));
        assert!(one(Mode::Classic, "{a=b}").is_err());
        assert!(one(Mode::Classic, "a.b=c").is_err());
        assert_eq!(one(Mode::Fallback, "a.b=c").as_deref(), Ok(r#"a.b="c""#));
    }

    #[test]
    fn fallback_prefers_classic_unless_only_utf8_accepts() {
        let f = |s| {
            parse_matchers_in(Mode::Fallback, s, "test")
                .map(|ms| Matchers(ms).to_string())
                .map_err(|e| e.to_string())
        };
        // Classic only: unquoted value with a space, a trailing backslash.
        assert_eq!(f("foo=bar baz").as_deref(), Ok(r#"{foo="bar baz"}"#));
        assert_eq!(f("foo=").as_deref(), Ok(r#"{foo=""}"#));
        // Both accept but disagree: the classic reading wins.
        assert_eq!(f(r#"foo="a\tb""#).as_deref(), Ok(r#"{foo="a\\tb"}"#));
        // UTF-8 only.
        assert_eq!(f(r#""a b"="c""#).as_deref(), Ok(r#"{"a b"="c"}"#));
        assert_eq!(f("k8s-ns=x").as_deref(), Ok(r#"{k8s-ns="x"}"#));
        // Both reject: the classic error.
        assert_eq!(f("=x").unwrap_err(), "bad matcher format: =x");
        assert_eq!(
            parse_matchers_in(Mode::Classic, "k8s-ns=x", "test")
                .unwrap_err()
                .to_string(),
            "bad matcher format: k8s-ns=x"
        );
    }

    #[test]
    fn names_with_reserved_runes_render_go_quoted() {
        let m = Matcher::new(MatchType::Equal, "foo bar", "a\"\tb").unwrap();
        assert_eq!(m.to_string(), r#""foo bar"="a\"\tb""#);
        let m = Matcher::new(MatchType::NotRegexp, "a=b", "x").unwrap();
        assert_eq!(m.to_string(), r#""a=b"!~"x""#);
        let m = Matcher::new(MatchType::Equal, "föö.bar", "\t").unwrap();
        assert_eq!(m.to_string(), "föö.bar=\"\t\"");
    }

    #[test]
    fn modes_come_from_feature_flags() {
        let m = |f: &[&str]| Mode::from_features(f);
        assert_eq!(m(&[]), Ok(Mode::Fallback));
        assert_eq!(m(&["classic-mode"]), Ok(Mode::Classic));
        assert_eq!(m(&["utf8-strict-mode", "x"]), Ok(Mode::Utf8Strict));
        assert_eq!(
            m(&["classic-mode", "utf8-strict-mode"]),
            Err("cannot have both classic and UTF-8 modes enabled".into())
        );
        assert!(is_valid_label_name_in(Mode::Fallback, "a.b"));
        assert!(!is_valid_label_name_in(Mode::Fallback, ""));
        assert!(!is_valid_label_name_in(Mode::Classic, "a.b"));
    }
}
