//! Alertmanager's UTF-8 matcher parser (`matcher/parse`): a lexer over
//! runes and a small state machine on top. Errors read as Alertmanager's,
//! with `start:end` rune columns, because users paste them into searches
//! and amtool prints the same texts.

use super::{gostr, MatchType, Matcher};

/// Unicode whitespace and the runes the grammar uses; an unquoted name or
/// value is a run of anything else.
pub(crate) fn is_reserved(c: char) -> bool {
    c.is_whitespace() || "{}!=~,\\\"'`".contains(c)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Eof,
    OpenBrace,
    CloseBrace,
    Comma,
    Equals,
    NotEquals,
    Matches,
    NotMatches,
    Quoted,
    Unquoted,
}

/// Byte offsets into the input and rune columns, as the Go lexer keeps them.
#[derive(Clone, Copy, Debug, Default)]
struct Position {
    offset_end: usize,
    column_start: usize,
    column_end: usize,
}

#[derive(Clone, Copy, Debug)]
struct Token<'a> {
    kind: Kind,
    value: &'a str,
    pos: Position,
}

impl Token<'_> {
    fn eof() -> Self {
        Token {
            kind: Kind::Eof,
            value: "",
            pos: Position::default(),
        }
    }

    fn is_one_of(&self, kinds: &[Kind]) -> bool {
        kinds.contains(&self.kind)
    }

    /// The decoded text: quoted tokens go through Go's `strconv.Unquote`
    /// and must be valid UTF-8 afterwards.
    fn unquote(&self) -> Option<String> {
        if self.kind == Kind::Quoted {
            String::from_utf8(gostr::unquote(self.value)?).ok()
        } else {
            Some(self.value.to_string())
        }
    }
}

#[derive(Clone, Debug)]
struct Lexer<'a> {
    input: &'a str,
    err: Option<String>,
    start: usize,
    pos: usize,
    width: usize,
    column: usize,
    cols: usize,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str) -> Self {
        Lexer {
            input,
            err: None,
            start: 0,
            pos: 0,
            width: 0,
            column: 0,
            cols: 0,
        }
    }

    fn position(&self) -> Position {
        Position {
            offset_end: self.pos,
            column_start: self.column,
            column_end: self.cols,
        }
    }

    fn next(&mut self) -> Option<char> {
        match self.input[self.pos..].chars().next() {
            None => {
                self.width = 0;
                None
            }
            Some(c) => {
                self.width = c.len_utf8();
                self.pos += self.width;
                self.cols += 1;
                Some(c)
            }
        }
    }

    /// Steps back over the last rune; after end of input there is none.
    fn rewind(&mut self) {
        self.pos -= self.width;
        if self.width > 0 {
            self.cols -= 1;
        }
    }

    fn skip(&mut self) {
        self.start = self.pos;
        self.column = self.cols;
    }

    fn accept(&mut self, valid: &str) -> bool {
        match self.next() {
            Some(c) if valid.contains(c) => true,
            _ => {
                self.rewind();
                false
            }
        }
    }

    fn emit(&mut self, kind: Kind) -> Token<'a> {
        let t = Token {
            kind,
            value: &self.input[self.start..self.pos],
            pos: self.position(),
        };
        self.start = self.pos;
        self.column = self.cols;
        t
    }

    fn snippet(&self) -> &'a str {
        &self.input[self.start..self.pos]
    }

    fn expected(&self, expected: &str) -> String {
        let p = self.position();
        if p.offset_end >= self.input.len() {
            format!(
                "{}:{}: unexpected end of input, expected one of '{expected}'",
                p.column_start, p.column_end
            )
        } else {
            format!(
                "{}:{}: {}: expected one of '{expected}'",
                p.column_start,
                p.column_end,
                self.snippet()
            )
        }
    }

    fn scan(&mut self) -> Result<Token<'a>, String> {
        if let Some(e) = &self.err {
            return Err(e.clone());
        }
        let r = self.scan_inner();
        if let Err(e) = &r {
            self.err = Some(e.clone());
        }
        r
    }

    fn scan_inner(&mut self) -> Result<Token<'a>, String> {
        while let Some(c) = self.next() {
            match c {
                '{' => return Ok(self.emit(Kind::OpenBrace)),
                '}' => return Ok(self.emit(Kind::CloseBrace)),
                ',' => return Ok(self.emit(Kind::Comma)),
                '=' | '!' => {
                    self.rewind();
                    return self.scan_operator();
                }
                '"' => {
                    self.rewind();
                    return self.scan_quoted();
                }
                c if !is_reserved(c) => {
                    self.rewind();
                    return Ok(self.scan_unquoted());
                }
                c if c.is_whitespace() => self.skip(),
                _ => {
                    let p = self.position();
                    return Err(format!(
                        "{}:{}: {}: invalid input",
                        p.column_start,
                        p.column_end,
                        self.snippet()
                    ));
                }
            }
        }
        Ok(Token::eof())
    }

    fn scan_operator(&mut self) -> Result<Token<'a>, String> {
        if self.accept("!") {
            if self.accept("=") {
                return Ok(self.emit(Kind::NotEquals));
            }
            if self.accept("~") {
                return Ok(self.emit(Kind::NotMatches));
            }
            return Err(self.expected("=~"));
        }
        if self.accept("=") {
            if self.accept("~") {
                return Ok(self.emit(Kind::Matches));
            }
            return Ok(self.emit(Kind::Equals));
        }
        Err(self.expected("!="))
    }

    fn scan_quoted(&mut self) -> Result<Token<'a>, String> {
        if !self.accept("\"") {
            return Err(self.expected("\""));
        }
        let mut escaped = false;
        while let Some(c) = self.next() {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                self.rewind();
                break;
            }
        }
        if !self.accept("\"") {
            let p = self.position();
            return Err(format!(
                "{}:{}: {}: missing end \"",
                p.column_start,
                p.column_end,
                self.snippet()
            ));
        }
        Ok(self.emit(Kind::Quoted))
    }

    fn scan_unquoted(&mut self) -> Token<'a> {
        while let Some(c) = self.next() {
            if is_reserved(c) {
                self.rewind();
                break;
            }
        }
        self.emit(Kind::Unquoted)
    }

    /// The next token without consuming it; a lexer error sticks, as in Go.
    fn peek(&mut self) -> Result<Token<'a>, String> {
        let saved = (self.start, self.pos, self.width, self.column, self.cols);
        let r = self.scan();
        (self.start, self.pos, self.width, self.column, self.cols) = saved;
        r
    }
}

/// Why `expect`/`accept` did not get their token: end of input is told
/// apart because most states treat it as "go and check the braces".
enum Miss {
    Eof,
    Other(String),
}

impl Miss {
    fn text(&self) -> &str {
        match self {
            Miss::Eof => "end of input",
            Miss::Other(s) => s,
        }
    }

    fn wrap(self, context: &str) -> String {
        format!("{}: {context}", self.text())
    }
}

const NO_CLOSE_BRACE: &str = "expected close brace";
const NO_OPEN_BRACE: &str = "expected opening brace";
const EXPECTED_EOF: &str = "expected end of input";

#[derive(Clone, Copy)]
enum State {
    OpenBrace,
    CloseBrace,
    Matcher,
    EndOfMatcher,
    Comma,
    Eof,
    Done,
}

struct Parser<'a> {
    lexer: Lexer<'a>,
    has_open_brace: bool,
    matchers: Vec<Matcher>,
}

impl<'a> Parser<'a> {
    fn expect_peek(&mut self, kinds: &[Kind]) -> Result<Token<'a>, Miss> {
        let t = self.lexer.peek().map_err(Miss::Other)?;
        if t.kind == Kind::Eof {
            return Err(Miss::Eof);
        }
        if !t.is_one_of(kinds) {
            return Err(Miss::Other(format!(
                "{}:{}: unexpected {}",
                t.pos.column_start, t.pos.column_end, t.value
            )));
        }
        Ok(t)
    }

    fn expect(&mut self, kinds: &[Kind]) -> Result<Token<'a>, Miss> {
        let t = self.expect_peek(kinds)?;
        // The peek succeeded, so scanning the same token again cannot fail.
        let _ = self.lexer.scan();
        Ok(t)
    }

    fn accept_peek(&mut self, kinds: &[Kind]) -> Result<bool, Miss> {
        let t = self.lexer.peek().map_err(Miss::Other)?;
        if t.kind == Kind::Eof {
            return Err(Miss::Eof);
        }
        Ok(t.is_one_of(kinds))
    }

    fn step(&mut self, state: State) -> Result<State, String> {
        match state {
            State::OpenBrace => {
                match self.accept_peek(&[Kind::OpenBrace]) {
                    Ok(true) => {
                        let _ = self.lexer.scan();
                        self.has_open_brace = true;
                    }
                    Ok(false) => {}
                    Err(Miss::Eof) => return Ok(State::Eof),
                    Err(Miss::Other(e)) => return Err(e),
                }
                match self.accept_peek(&[Kind::CloseBrace]) {
                    Ok(true) | Err(Miss::Eof) => Ok(State::CloseBrace),
                    Ok(false) => Ok(State::Matcher),
                    Err(Miss::Other(e)) => Err(e),
                }
            }
            State::CloseBrace => {
                let r = self.expect(&[Kind::CloseBrace]);
                let end = self.lexer.position().column_end;
                match (self.has_open_brace, r) {
                    (true, Err(m)) => Err(format!("0:{end}: {}: {NO_CLOSE_BRACE}", m.text())),
                    (false, Ok(_)) => Err(format!("0:{end}: }}: {NO_OPEN_BRACE}")),
                    _ => Ok(State::Eof),
                }
            }
            State::Matcher => self.parse_matcher(),
            State::EndOfMatcher => match self.expect_peek(&[Kind::Comma, Kind::CloseBrace]) {
                Ok(t) if t.kind == Kind::Comma => Ok(State::Comma),
                Ok(_) | Err(Miss::Eof) => Ok(State::CloseBrace),
                Err(m) => Err(m.wrap("expected a comma or close brace")),
            },
            State::Comma => {
                self.expect(&[Kind::Comma])
                    .map_err(|m| m.wrap("expected a comma"))?;
                match self.expect_peek(&[Kind::CloseBrace, Kind::Unquoted, Kind::Quoted]) {
                    Ok(t) if t.kind == Kind::CloseBrace => Ok(State::CloseBrace),
                    Ok(_) => Ok(State::Matcher),
                    Err(Miss::Eof) => Ok(State::CloseBrace),
                    Err(m) => Err(m.wrap("expected a matcher or close brace after comma")),
                }
            }
            State::Eof => {
                let t = self
                    .lexer
                    .scan()
                    .map_err(|e| format!("{e}: {EXPECTED_EOF}"))?;
                if t.kind != Kind::Eof {
                    return Err(format!(
                        "{}:{}: {}: {EXPECTED_EOF}",
                        t.pos.column_start, t.pos.column_end, t.value
                    ));
                }
                Ok(State::Done)
            }
            State::Done => Ok(State::Done),
        }
    }

    fn parse_matcher(&mut self) -> Result<State, String> {
        let invalid = |t: &Token<'_>| {
            format!(
                "{}:{}: {}: invalid input",
                t.pos.column_start, t.pos.column_end, t.value
            )
        };
        let t = self
            .expect(&[Kind::Quoted, Kind::Unquoted])
            .map_err(|m| m.wrap("expected label name"))?;
        let name = t.unquote().ok_or_else(|| invalid(&t))?;
        let t = self
            .expect(&[
                Kind::Equals,
                Kind::NotEquals,
                Kind::Matches,
                Kind::NotMatches,
            ])
            .map_err(|m| m.wrap("expected an operator such as '=', '!=', '=~' or '!~'"))?;
        let kind = match t.kind {
            Kind::NotEquals => MatchType::NotEqual,
            Kind::Matches => MatchType::Regexp,
            Kind::NotMatches => MatchType::NotRegexp,
            _ => MatchType::Equal,
        };
        let t = self
            .expect(&[Kind::Unquoted, Kind::Quoted])
            .map_err(|m| m.wrap("expected label value"))?;
        let value = t.unquote().ok_or_else(|| invalid(&t))?;
        let m = Matcher::new(kind, &name, &value)
            .map_err(|e| format!("failed to create matcher: {e}"))?;
        self.matchers.push(m);
        Ok(State::EndOfMatcher)
    }
}

/// `parse.Matchers`: the whole input, braces optional, trailing comma
/// allowed; empty input and `{}` give no matchers.
pub(crate) fn parse_matchers(input: &str) -> Result<Vec<Matcher>, String> {
    let mut p = Parser {
        lexer: Lexer::new(input),
        has_open_brace: false,
        matchers: Vec::new(),
    };
    let mut state = State::OpenBrace;
    loop {
        state = p.step(state)?;
        if matches!(state, State::Done) {
            return Ok(p.matchers);
        }
    }
}

/// `parse.Matcher`: exactly one matcher.
pub(crate) fn parse_matcher(input: &str) -> Result<Matcher, String> {
    let mut ms = parse_matchers(input)?;
    match ms.len() {
        1 => Ok(ms.remove(0)),
        0 => Err("no matchers".into()),
        n => Err(format!("expected 1 matcher, found {n}")),
    }
}
