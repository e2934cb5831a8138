//! The lexer of Go's `text/template` (`text/template/parse/lex.go`),
//! written from the language's specification: text, `{{`/`}}` actions with
//! `{{- ` / ` -}}` trimming, comments, and the tokens inside actions.

use std::fmt;

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Plain text outside actions (already trimmed where markers ask).
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    /// `.Name`, one element of a field chain.
    Field(String),
    /// `$name` (or `$` alone).
    Variable(String),
    /// A bare word: function name or keyword.
    Ident(String),
    Dot,
    Str(String),
    /// A number as written; converted by the parser.
    Number(String),
    Char(char),
    Bool(bool),
    Nil,
    Pipe,
    LeftParen,
    RightParen,
    Declare,
    Assign,
    Comma,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) line: usize,
    /// Column (1-based, in bytes as Go counts) of the `{{` of the action
    /// the token is in; 0 for text.
    pub(crate) col: usize,
}

/// Where a node's action starts, for execution errors.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub(crate) struct Pos {
    pub(crate) line: usize,
    pub(crate) col: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("template: {name}:{line}: {message}")]
pub struct SyntaxError {
    pub(crate) name: String,
    pub(crate) line: usize,
    pub(crate) message: String,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Text(t) => write!(f, "{t:?}"),
            Tok::LeftDelim => f.write_str("{{"),
            Tok::RightDelim => f.write_str("}}"),
            Tok::Space => f.write_str("space"),
            Tok::Field(n) => write!(f, ".{n}"),
            Tok::Variable(n) => f.write_str(n),
            Tok::Ident(n) => f.write_str(n),
            Tok::Dot => f.write_str("."),
            Tok::Str(s) => write!(f, "{s:?}"),
            Tok::Number(n) => f.write_str(n),
            Tok::Char(c) => write!(f, "{c:?}"),
            Tok::Bool(b) => write!(f, "{b}"),
            Tok::Nil => f.write_str("nil"),
            Tok::Pipe => f.write_str("|"),
            Tok::LeftParen => f.write_str("("),
            Tok::RightParen => f.write_str(")"),
            Tok::Declare => f.write_str(":="),
            Tok::Assign => f.write_str("="),
            Tok::Comma => f.write_str(","),
        }
    }
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Splits `src` into tokens. `name` is only used in error messages.
pub(crate) fn lex(name: &str, src: &str) -> Result<Vec<Token>, SyntaxError> {
    let err = |line: usize, message: String| SyntaxError {
        name: name.to_string(),
        line,
        message,
    };
    let mut out: Vec<Token> = Vec::new();
    let mut rest = src;
    let mut line = 1;
    // Text before an action whose opening delimiter has a trim marker loses
    // its trailing white space; text after a closing trim marker loses its
    // leading white space.
    let mut trim_next_text = false;
    while !rest.is_empty() {
        let (text, after) = match rest.find("{{") {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let left_trim = after.is_some_and(|a| {
            a.starts_with("{{- ")
                || a.starts_with("{{-\t")
                || a.starts_with("{{-\n")
                || a.starts_with("{{-\r")
        });
        let mut t = text;
        if trim_next_text {
            t = t.trim_start_matches([' ', '\t', '\r', '\n']);
        }
        if left_trim {
            t = t.trim_end_matches([' ', '\t', '\r', '\n']);
        }
        if !t.is_empty() {
            out.push(Token {
                tok: Tok::Text(t.to_string()),
                line,
                col: 0,
            });
        }
        line += text.matches('\n').count();
        let Some(action) = after else { break };
        // Inside the action.
        let mut s = &action[2..];
        if left_trim {
            s = &s[2..];
        }
        let trimmed = s.trim_start_matches([' ', '\t', '\r', '\n']);
        if trimmed.starts_with("/*") {
            // A comment: `{{/* ... */}}`, trim markers allowed around it.
            let end = trimmed
                .find("*/")
                .ok_or_else(|| err(line, "unclosed comment".into()))?;
            let after_comment = &trimmed[end + 2..];
            let (right_trim, tail) = if let Some(t) = after_comment.strip_prefix(" -}}") {
                (true, t)
            } else if let Some(t) = after_comment.strip_prefix("}}") {
                (false, t)
            } else {
                return Err(err(line, "comment ends before closing delimiter".into()));
            };
            line += trimmed[..end].matches('\n').count();
            trim_next_text = right_trim;
            rest = tail;
            continue;
        }
        let offset = src.len() - action.len();
        let col = offset - src[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
        out.push(Token {
            tok: Tok::LeftDelim,
            line,
            col,
        });
        let (mut toks, consumed, right_trim, lines) =
            lex_action(s, line).map_err(|(l, m)| err(l, m))?;
        toks.iter_mut().for_each(|t| t.col = col);
        out.extend(toks);
        out.push(Token {
            tok: Tok::RightDelim,
            line: line + lines,
            col,
        });
        line += lines;
        trim_next_text = right_trim;
        rest = &s[consumed..];
    }
    Ok(out)
}

/// One lexed action: its tokens, the bytes consumed (including the
/// delimiter), whether it ended with ` -}}`, and the newlines crossed.
type Action = (Vec<Token>, usize, bool, usize);

/// Lexes from inside `{{` to the matching `}}`. An error is the line it is
/// on and its message.
fn lex_action(s: &str, line: usize) -> Result<Action, (usize, String)> {
    let mut toks = Vec::new();
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    let mut lines = 0;
    let mut parens = 0i32;
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let byte = |i: usize| chars.get(i).map(|c| c.0).unwrap_or(s.len());
    loop {
        let Some(c) = at(i) else {
            return Err((line + lines, "unclosed action".into()));
        };
        let here = line + lines;
        let push = |toks: &mut Vec<Token>, tok: Tok| {
            toks.push(Token {
                tok,
                line: here,
                col: 0,
            })
        };
        // Closing delimiter, with or without trim marker.
        if s[byte(i)..].starts_with("}}") {
            if parens > 0 {
                return Err((here, "unclosed left paren".into()));
            }
            return Ok((toks, byte(i) + 2, false, lines));
        }
        if c.is_whitespace() {
            let start = i;
            while at(i).is_some_and(char::is_whitespace) {
                if at(i) == Some('\n') {
                    lines += 1;
                }
                i += 1;
            }
            // ` -}}` closes the action with a trim marker.
            if s[byte(i)..].starts_with("-}}") {
                if parens > 0 {
                    return Err((here, "unclosed left paren".into()));
                }
                return Ok((toks, byte(i) + 3, true, lines));
            }
            let _ = start;
            push(&mut toks, Tok::Space);
            continue;
        }
        match c {
            '|' => {
                push(&mut toks, Tok::Pipe);
                i += 1;
            }
            '(' => {
                parens += 1;
                push(&mut toks, Tok::LeftParen);
                i += 1;
            }
            ')' => {
                parens -= 1;
                if parens < 0 {
                    return Err((here, "unexpected right paren".into()));
                }
                push(&mut toks, Tok::RightParen);
                i += 1;
            }
            ',' => {
                push(&mut toks, Tok::Comma);
                i += 1;
            }
            ':' => {
                if at(i + 1) != Some('=') {
                    return Err((here, "expected :=".into()));
                }
                push(&mut toks, Tok::Declare);
                i += 2;
            }
            '=' => {
                push(&mut toks, Tok::Assign);
                i += 1;
            }
            '"' => {
                let start = i;
                i += 1;
                loop {
                    match at(i) {
                        None | Some('\n') => {
                            return Err((here, "unterminated quoted string".into()))
                        }
                        Some('\\') => i += 2,
                        Some('"') => break,
                        _ => i += 1,
                    }
                }
                i += 1;
                let raw = &s[byte(start)..byte(i)];
                push(&mut toks, Tok::Str(unquote(raw).map_err(|m| (here, m))?));
            }
            '`' => {
                let start = i + 1;
                i += 1;
                while at(i).is_some_and(|c| c != '`') {
                    if at(i) == Some('\n') {
                        lines += 1;
                    }
                    i += 1;
                }
                if at(i).is_none() {
                    return Err((here, "unterminated raw quoted string".into()));
                }
                push(&mut toks, Tok::Str(s[byte(start)..byte(i)].to_string()));
                i += 1;
            }
            '\'' => {
                let start = i;
                i += 1;
                loop {
                    match at(i) {
                        None | Some('\n') => {
                            return Err((here, "unterminated character constant".into()))
                        }
                        Some('\\') => i += 2,
                        Some('\'') => break,
                        _ => i += 1,
                    }
                }
                i += 1;
                let raw = &s[byte(start)..byte(i)];
                let inner = unquote(&format!(
                    "\"{}\"",
                    &raw[1..raw.len() - 1].replace('"', "\\\"")
                ))
                .map_err(|m| (here, m))?;
                let mut it = inner.chars();
                match (it.next(), it.next()) {
                    (Some(ch), None) => push(&mut toks, Tok::Char(ch)),
                    _ => return Err((here, format!("malformed character constant: {raw}"))),
                }
            }
            '$' => {
                let start = i;
                i += 1;
                while at(i).is_some_and(is_alnum) {
                    i += 1;
                }
                push(
                    &mut toks,
                    Tok::Variable(s[byte(start)..byte(i)].to_string()),
                );
            }
            '.' => {
                // A field, a lone dot, or a number like .5.
                if at(i + 1).is_some_and(|c| c.is_ascii_digit())
                    && !matches!(
                        toks.last().map(|t: &Token| &t.tok),
                        Some(
                            Tok::Field(_)
                                | Tok::Variable(_)
                                | Tok::RightParen
                                | Tok::Ident(_)
                                | Tok::Dot
                        )
                    )
                {
                    let start = i;
                    i += 1;
                    while at(i).is_some_and(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_') {
                        i += 1;
                    }
                    push(&mut toks, Tok::Number(s[byte(start)..byte(i)].to_string()));
                } else if at(i + 1).is_some_and(is_alnum) {
                    let start = i + 1;
                    i += 1;
                    while at(i).is_some_and(is_alnum) {
                        i += 1;
                    }
                    push(&mut toks, Tok::Field(s[byte(start)..byte(i)].to_string()));
                } else {
                    push(&mut toks, Tok::Dot);
                    i += 1;
                }
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && at(i + 1).is_some_and(|d| d.is_ascii_digit() || d == '.')) =>
            {
                let start = i;
                i += 1;
                while at(i).is_some_and(|c| {
                    c.is_ascii_alphanumeric()
                        || c == '.'
                        || c == '_'
                        || ((c == '-' || c == '+')
                            && matches!(at(i - 1), Some('e' | 'E' | 'p' | 'P')))
                }) {
                    i += 1;
                }
                push(&mut toks, Tok::Number(s[byte(start)..byte(i)].to_string()));
            }
            c if is_alnum(c) => {
                let start = i;
                while at(i).is_some_and(is_alnum) {
                    i += 1;
                }
                let word = &s[byte(start)..byte(i)];
                push(
                    &mut toks,
                    match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => Tok::Ident(w.to_string()),
                    },
                );
            }
            other => return Err((here, format!("unrecognized character in action: {other:?}"))),
        }
    }
}

/// Go's `strconv.Unquote` for double-quoted strings.
fn unquote(raw: &str) -> Result<String, String> {
    let bad = || format!("invalid syntax: {raw}");
    let body = raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .ok_or_else(bad)?;
    let mut out = String::with_capacity(body.len());
    let mut it = body.chars().peekable();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next().ok_or_else(bad)?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\u{7}'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'v' => out.push('\u{b}'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            '\'' => out.push('\''),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let hex: String = (0..n).filter_map(|_| it.next()).collect();
                let v = u32::from_str_radix(&hex, 16).map_err(|_| bad())?;
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            d @ '0'..='7' => {
                let mut v = d.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    v = v * 8 + it.next().and_then(|c| c.to_digit(8)).ok_or_else(bad)?;
                }
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(src: &str) -> Vec<Tok> {
        lex("t", src).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn text_actions_and_fields() {
        assert_eq!(
            toks("a {{ .Labels.severity | toUpper }} b"),
            vec![
                Tok::Text("a ".into()),
                Tok::LeftDelim,
                Tok::Space,
                Tok::Field("Labels".into()),
                Tok::Field("severity".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Ident("toUpper".into()),
                Tok::Space,
                Tok::RightDelim,
                Tok::Text(" b".into()),
            ]
        );
    }

    #[test]
    fn trim_markers_and_comments() {
        // The trim marker takes its space with it, as in Go.
        assert_eq!(
            toks("a  \n {{- 1 -}} \n b"),
            vec![
                Tok::Text("a".into()),
                Tok::LeftDelim,
                Tok::Number("1".into()),
                Tok::RightDelim,
                Tok::Text("b".into())
            ]
        );
        assert_eq!(
            toks("x {{/* note */}} y"),
            vec![Tok::Text("x ".into()), Tok::Text(" y".into())]
        );
        assert_eq!(
            toks("x {{- /* note */ -}} y"),
            vec![Tok::Text("x".into()), Tok::Text("y".into())]
        );
        // `{{-3}}` is the number -3, not a trim marker.
        assert_eq!(
            toks("{{-3}}"),
            vec![Tok::LeftDelim, Tok::Number("-3".into()), Tok::RightDelim]
        );
    }

    #[test]
    fn literals_variables_and_operators() {
        assert_eq!(
            toks(r#"{{$x := "a\tb" | printf `%s-%d` 'c' 1.5 true nil (len .)}}"#),
            vec![
                Tok::LeftDelim,
                Tok::Variable("$x".into()),
                Tok::Space,
                Tok::Declare,
                Tok::Space,
                Tok::Str("a\tb".into()),
                Tok::Space,
                Tok::Pipe,
                Tok::Space,
                Tok::Ident("printf".into()),
                Tok::Space,
                Tok::Str("%s-%d".into()),
                Tok::Space,
                Tok::Char('c'),
                Tok::Space,
                Tok::Number("1.5".into()),
                Tok::Space,
                Tok::Bool(true),
                Tok::Space,
                Tok::Nil,
                Tok::Space,
                Tok::LeftParen,
                Tok::Ident("len".into()),
                Tok::Space,
                Tok::Dot,
                Tok::RightParen,
                Tok::RightDelim,
            ]
        );
    }

    #[test]
    fn errors_carry_the_line() {
        let e = lex("mytmpl", "line1\nline2 {{ \"open }}").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.to_string().starts_with("template: mytmpl:2:"), "{e}");
        assert!(lex("t", "{{ .A ").is_err());
        assert!(lex("t", "{{ (1 }}").is_err());
        assert!(lex("t", "{{ # }}").is_err());
    }
}
