//! HTML mode: the contextual escaping Go's `html/template` applies, for the
//! contexts Alertmanager's e-mail template uses — element text, `<title>`,
//! quoted attribute values, and URL attributes (`href`, `src`, ...), where
//! a value at the start of the URL is filtered and normalised and a value
//! in the query or fragment is query-escaped.
//!
//! The context is followed from the template text already written, so a
//! `{{template}}` call is escaped in the context it is called from, as Go
//! does. Values marked safe with `safeHtml` are written as they are.

use super::value::{Object, Value};

#[derive(Clone, Copy, Debug, PartialEq)]
enum UrlPart {
    Start,
    Path,
    QueryOrFragment,
}

#[derive(Clone, Debug, PartialEq)]
enum State {
    Text,
    /// Inside `<title>` or `<textarea>`: text, escaped the same way.
    RcData(String),
    /// Inside `<script>` or `<style>`: raw text Herald does not interpret.
    Raw(String),
    /// Inside a start tag, between attributes.
    Tag,
    AttrName(String),
    /// After `name=`, before the value starts.
    AfterEq(String),
    AttrValue {
        quote: char,
        url: Option<UrlPart>,
    },
    Comment,
}

/// Where in an HTML document the next value goes.
#[derive(Clone, Debug)]
pub(crate) struct HtmlContext {
    state: State,
    /// Text of the tag name or attribute name being read.
    word: String,
}

impl Default for HtmlContext {
    fn default() -> Self {
        HtmlContext {
            state: State::Text,
            word: String::new(),
        }
    }
}

fn is_url_attr(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "href"
            | "src"
            | "action"
            | "formaction"
            | "cite"
            | "background"
            | "poster"
            | "codebase"
            | "longdesc"
            | "usemap"
            | "manifest"
            | "icon"
    )
}

impl HtmlContext {
    /// Advances the context over template text and returns the text to
    /// write: HTML comments are left out, as `html/template` does.
    pub(crate) fn feed(&mut self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut chars = text.chars().peekable();
        // The tag name read ahead after a '<'.
        let mut pending = String::new();
        while let Some(c) = chars.next() {
            self.state = match std::mem::replace(&mut self.state, State::Text) {
                State::Text => {
                    if c == '<' {
                        let rest: String = chars.clone().take(3).collect();
                        if rest == "!--" {
                            for _ in 0..3 {
                                chars.next();
                            }
                            // The comment's opening is not written.
                            self.state = State::Comment;
                            continue;
                        } else if chars.peek().is_some_and(|n| n.is_ascii_alphabetic()) {
                            self.word.clear();
                            while let Some(&n) = chars.peek() {
                                if n.is_ascii_alphanumeric() {
                                    self.word.push(n.to_ascii_lowercase());
                                    chars.next();
                                    // Written after the '<' below.
                                    pending.push(n);
                                } else {
                                    break;
                                }
                            }
                            State::Tag
                        } else {
                            State::Text
                        }
                    } else {
                        State::Text
                    }
                }
                State::Comment => {
                    if c == '-' && chars.clone().take(2).collect::<String>() == "->" {
                        chars.next();
                        chars.next();
                    } else {
                        self.state = State::Comment;
                    }
                    continue;
                }
                State::RcData(tag) | State::Raw(tag)
                    if c == '<'
                        && chars
                            .clone()
                            .take(tag.len() + 1)
                            .collect::<String>()
                            .to_ascii_lowercase()
                            == format!("/{tag}") =>
                {
                    self.word.clear();
                    State::Tag
                }
                s @ (State::RcData(_) | State::Raw(_)) => s,
                State::Tag => match c {
                    '>' => self.after_tag(),
                    c if c.is_whitespace() || c == '/' => State::Tag,
                    c => State::AttrName(c.to_ascii_lowercase().to_string()),
                },
                State::AttrName(mut name) => match c {
                    '=' => State::AfterEq(name),
                    '>' => self.after_tag(),
                    c if c.is_whitespace() => State::Tag,
                    c => {
                        name.push(c.to_ascii_lowercase());
                        State::AttrName(name)
                    }
                },
                State::AfterEq(name) => match c {
                    '"' | '\'' => State::AttrValue {
                        quote: c,
                        url: is_url_attr(&name).then_some(UrlPart::Start),
                    },
                    c if c.is_whitespace() => State::AfterEq(name),
                    // Unquoted values are not used by Alertmanager's templates;
                    // treat them as quoted by a space.
                    _ => State::AttrValue {
                        quote: ' ',
                        url: is_url_attr(&name).then_some(UrlPart::Path),
                    },
                },
                State::AttrValue { quote, url } => {
                    if c == quote || (quote == ' ' && c == '>') {
                        if c == '>' {
                            self.after_tag()
                        } else {
                            State::Tag
                        }
                    } else {
                        let url = url.map(|p| match (p, c) {
                            (_, '?' | '#') | (UrlPart::QueryOrFragment, _) => {
                                UrlPart::QueryOrFragment
                            }
                            _ => UrlPart::Path,
                        });
                        State::AttrValue { quote, url }
                    }
                }
            };
            out.push(c);
            out.push_str(&pending);
            pending.clear();
        }
        out
    }

    fn after_tag(&mut self) -> State {
        match self.word.as_str() {
            "title" | "textarea" => State::RcData(self.word.clone()),
            "script" | "style" => State::Raw(self.word.clone()),
            _ => State::Text,
        }
    }

    /// Escapes a value for the current context. `urlquery_last` says the
    /// action's pipeline already ended with `urlquery`, which Go counts as
    /// the URL escaper (so it is not applied twice).
    pub(crate) fn escape(&self, v: &Value, urlquery_last: bool) -> String {
        let safe = matches!(v, Value::Object(o) if o.type_name() == "template.HTML");
        let s = v.go_string();
        match &self.state {
            State::Text
            | State::RcData(_)
            | State::Tag
            | State::AttrName(_)
            | State::AfterEq(_)
            | State::Comment
                if safe =>
            {
                s
            }
            // Herald does not follow JavaScript or CSS syntax, so a value
            // there gets the form that is inert anywhere inside it: a quoted
            // JS string with markup characters escaped, or a CSS value made
            // only of harmless characters ("ZgotmplZ" otherwise, as Go).
            State::Raw(tag) if tag == "script" => js_string_literal(&s),
            State::Raw(_) => {
                if s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || " #%.,-".contains(c))
                {
                    s
                } else {
                    "ZgotmplZ".into()
                }
            }
            State::AttrValue {
                url: Some(part), ..
            } => {
                let url = match part {
                    _ if urlquery_last => s,
                    UrlPart::Start => url_normalize(&url_filter(&s)),
                    UrlPart::Path => url_normalize(&s),
                    UrlPart::QueryOrFragment => url_escape(&s),
                };
                html_escape(&url)
            }
            _ => html_escape(&s),
        }
    }
}

/// A JSON string literal safe to place inside a `<script>` element.
fn js_string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\u0022"),
            '\\' => out.push_str("\\\\"),
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\'' => out.push_str("\\u0027"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `html/template`'s HTML escaper (it also escapes `+`).
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Only http, https and mailto URLs (or relative ones) may start an URL
/// attribute; anything else becomes Go's `#ZgotmplZ`.
fn url_filter(s: &str) -> String {
    if let Some(colon) = s.find(':') {
        if !s[..colon].contains('/') {
            let scheme = s[..colon].to_ascii_lowercase();
            if !matches!(scheme.as_str(), "http" | "https" | "mailto") {
                return "#ZgotmplZ".into();
            }
        }
    }
    s.to_string()
}

fn url_process(s: &str, normalize: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (normalize
                && matches!(
                    b,
                    b'!' | b'#'
                        | b'$'
                        | b'&'
                        | b'*'
                        | b'+'
                        | b','
                        | b'/'
                        | b':'
                        | b';'
                        | b'='
                        | b'?'
                        | b'@'
                        | b'['
                        | b']'
                        | b'%'
                ));
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// Percent-encodes what may not appear in a URL, keeping its structure.
fn url_normalize(s: &str) -> String {
    url_process(s, true)
}

/// Percent-encodes everything but unreserved characters (query values).
fn url_escape(s: &str) -> String {
    url_process(s, false)
}

/// A value `safeHtml` marked as trusted HTML.
pub(crate) struct SafeHtml(pub(crate) String);

impl Object for SafeHtml {
    fn type_name(&self) -> &'static str {
        "template.HTML"
    }
    fn field(&self, _: &str) -> Option<Value> {
        None
    }
    fn display(&self) -> String {
        self.0.clone()
    }
    fn truthy(&self) -> bool {
        !self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(text: &str) -> HtmlContext {
        let mut c = HtmlContext::default();
        c.feed(text);
        c
    }

    #[test]
    fn comments_are_left_out() {
        let mut c = HtmlContext::default();
        assert_eq!(c.feed("a<!-- secret <b> -->b<p>"), "ab<p>");
        assert_eq!(c.escape(&Value::from("<"), false), "&lt;");
    }

    #[test]
    fn escapes_by_context() {
        let v = Value::from("a<b> & \"c\" 'd' +");
        assert_eq!(
            ctx("<p>").escape(&v, false),
            "a&lt;b&gt; &amp; &#34;c&#34; &#39;d&#39; &#43;"
        );
        assert_eq!(
            ctx("<title>").escape(&v, false),
            "a&lt;b&gt; &amp; &#34;c&#34; &#39;d&#39; &#43;"
        );
        let url = Value::from("http://prom/graph?g0.expr=up{job=\"x\"}&tab=1");
        assert_eq!(
            ctx("<a href=\"").escape(&url, false),
            "http://prom/graph?g0.expr=up%7bjob=%22x%22%7d&amp;tab=1"
        );
        assert_eq!(
            ctx("<a href=\"").escape(&Value::from("javascript:alert(1)"), false),
            "#ZgotmplZ"
        );
        assert_eq!(
            ctx("<a href=\"http://x/?r=").escape(&Value::from("a b&c"), false),
            "a%20b%26c"
        );
        assert_eq!(
            ctx("<a class=\"").escape(&Value::from("x\"y"), false),
            "x&#34;y"
        );
        assert_eq!(
            ctx("<a href=\"x\" class=\"y\">").escape(&Value::from("<"), false),
            "&lt;"
        );
        assert_eq!(
            ctx("<p>").escape(
                &Value::Object(std::sync::Arc::new(SafeHtml("<b>".into()))),
                false
            ),
            "<b>"
        );
    }
}
