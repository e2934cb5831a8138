//! The parser of Go's `text/template` (`text/template/parse/parse.go`),
//! written from the language's specification: actions, pipelines with
//! variable declaration and assignment, `if`/`else if`/`else`, `range`
//! (with `break`, `continue`, `else`), `with`/`else with`/`else`,
//! `define`, `template`, `block`, and parenthesised pipelines with field
//! chains. Undefined variables and unknown functions are parse errors, as
//! in Go.

use std::collections::HashMap;
use std::iter::Peekable;
use std::vec::IntoIter;

pub(crate) use super::lex::Pos;
use super::lex::{lex, SyntaxError, Tok, Token};

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Text(String),
    Action {
        pos: Pos,
        pipe: Pipeline,
    },
    If {
        pos: Pos,
        pipe: Pipeline,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Range {
        pos: Pos,
        pipe: Pipeline,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    With {
        pos: Pos,
        pipe: Pipeline,
        list: Vec<Node>,
        else_list: Option<Vec<Node>>,
    },
    Template {
        pos: Pos,
        name: String,
        pipe: Option<Pipeline>,
    },
    Break {
        pos: Pos,
    },
    Continue {
        pos: Pos,
    },
}

#[derive(Clone, Debug, PartialEq, Default)]
pub(crate) struct Pipeline {
    /// Variables declared (`$x :=`) or assigned (`$x =`) by the pipeline.
    pub(crate) decl: Vec<String>,
    pub(crate) is_assign: bool,
    pub(crate) cmds: Vec<Command>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Command {
    pub(crate) args: Vec<Arg>,
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Arg {
    Dot,
    Nil,
    Bool(bool),
    /// A number as written (`1`, `0x1F`, `1.5e3`, `'a'` as its code point).
    Number(String),
    Str(String),
    /// `.A.B`: fields (or methods) looked up on dot.
    Field(Vec<String>),
    /// `$x.A.B`.
    Variable(String, Vec<String>),
    /// A function name.
    Function(String),
    /// `(pipeline)`, optionally followed by fields: `(index . 0).Name`.
    Pipe(Box<Pipeline>, Vec<String>),
}

/// A parsed template and the ones it defines. `pub` only because
/// `Templates::trees` is (tests list the names a file defines); what is
/// inside stays the crate's.
#[derive(Clone, Debug, PartialEq)]
pub struct Tree {
    pub(crate) name: String,
    pub(crate) root: Vec<Node>,
}

/// Parses `src` as the template `name`. Returns every tree it holds: `name`
/// itself and each `{{define}}` or `{{block}}`. `is_func` tells whether a
/// function name exists (Go checks this while parsing).
pub(crate) fn parse(
    name: &str,
    src: &str,
    is_func: &dyn Fn(&str) -> bool,
) -> Result<HashMap<String, Tree>, SyntaxError> {
    let tokens = lex(name, src)?;
    let mut p = Parser {
        name: name.to_string(),
        toks: tokens.into_iter().peekable(),
        vars: vec!["$".to_string()],
        is_func,
        trees: HashMap::new(),
        range_depth: 0,
        line: 1,
        col: 0,
    };
    let (root, end) = p.list()?;
    if let Some(e) = end {
        return Err(p.err_at(e.line(), format!("unexpected {{{{{}}}}}", e.word())));
    }
    p.trees.insert(
        name.to_string(),
        Tree {
            name: name.to_string(),
            root,
        },
    );
    Ok(p.trees)
}

/// What ended a list of nodes.
enum ListEnd {
    End(Pos),
    Else(Pos),
    ElseIf(Pos, Pipeline),
    ElseWith(Pos, Pipeline),
}

impl ListEnd {
    fn line(&self) -> usize {
        match self {
            ListEnd::End(l)
            | ListEnd::Else(l)
            | ListEnd::ElseIf(l, _)
            | ListEnd::ElseWith(l, _) => l.line,
        }
    }

    fn word(&self) -> &'static str {
        match self {
            ListEnd::End(_) => "end",
            _ => "else",
        }
    }
}

struct Parser<'a> {
    name: String,
    toks: Peekable<IntoIter<Token>>,
    /// Variables in scope, innermost last.
    vars: Vec<String>,
    is_func: &'a dyn Fn(&str) -> bool,
    trees: HashMap<String, Tree>,
    range_depth: usize,
    line: usize,
    col: usize,
}

impl Parser<'_> {
    fn err_at(&self, line: usize, message: String) -> SyntaxError {
        SyntaxError {
            name: self.name.clone(),
            line,
            message,
        }
    }

    fn err(&self, message: impl Into<String>) -> SyntaxError {
        self.err_at(self.line, message.into())
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.next()?;
        self.line = t.line;
        self.col = t.col;
        Some(t.tok)
    }

    fn peek(&mut self) -> Option<&Tok> {
        self.toks.peek().map(|t| &t.tok)
    }

    fn skip_space(&mut self) {
        while self.peek() == Some(&Tok::Space) {
            self.next();
        }
    }

    fn expect_close(&mut self, context: &str) -> Result<(), SyntaxError> {
        self.skip_space();
        match self.next() {
            Some(Tok::RightDelim) => Ok(()),
            Some(t) => Err(self.err(format!("unexpected {t} in {context}"))),
            None => Err(self.err(format!("unexpected EOF in {context}"))),
        }
    }

    /// Nodes up to `{{end}}`, `{{else}}` or the end of input.
    fn list(&mut self) -> Result<(Vec<Node>, Option<ListEnd>), SyntaxError> {
        let mut nodes = Vec::new();
        while let Some(t) = self.next() {
            match t {
                Tok::Text(s) => nodes.push(Node::Text(s)),
                Tok::LeftDelim => {
                    if let Some(end) = self.action(&mut nodes)? {
                        return Ok((nodes, Some(end)));
                    }
                }
                other => return Err(self.err(format!("unexpected {other}"))),
            }
        }
        Ok((nodes, None))
    }

    /// One `{{...}}`; pushes its node, or returns the terminator it is.
    fn action(&mut self, nodes: &mut Vec<Node>) -> Result<Option<ListEnd>, SyntaxError> {
        self.skip_space();
        let line = Pos {
            line: self.line,
            col: self.col,
        };
        let keyword = match self.peek() {
            Some(Tok::Ident(w))
                if matches!(
                    w.as_str(),
                    "if" | "range"
                        | "with"
                        | "end"
                        | "else"
                        | "define"
                        | "template"
                        | "block"
                        | "break"
                        | "continue"
                ) =>
            {
                w.clone()
            }
            _ => {
                let pipe = self.pipeline("command", true)?;
                nodes.push(Node::Action { pos: line, pipe });
                return Ok(None);
            }
        };
        self.next();
        match keyword.as_str() {
            "end" => {
                self.expect_close("end")?;
                Ok(Some(ListEnd::End(line)))
            }
            "else" => {
                self.skip_space();
                match self.peek() {
                    Some(Tok::Ident(w)) if w == "if" || w == "with" => {
                        let is_if = w == "if";
                        self.next();
                        let pipe = self.pipeline(if is_if { "if" } else { "with" }, true)?;
                        Ok(Some(if is_if {
                            ListEnd::ElseIf(line, pipe)
                        } else {
                            ListEnd::ElseWith(line, pipe)
                        }))
                    }
                    _ => {
                        self.expect_close("else")?;
                        Ok(Some(ListEnd::Else(line)))
                    }
                }
            }
            "if" | "with" | "range" => {
                let node = self.control(&keyword, line)?;
                nodes.push(node);
                Ok(None)
            }
            "break" | "continue" => {
                if self.range_depth == 0 {
                    return Err(self.err(format!("{{{{{keyword}}}}} outside {{{{range}}}}")));
                }
                self.expect_close(&keyword)?;
                nodes.push(if keyword == "break" {
                    Node::Break { pos: line }
                } else {
                    Node::Continue { pos: line }
                });
                Ok(None)
            }
            "template" | "block" => {
                self.skip_space();
                let name = match self.next() {
                    Some(Tok::Str(s)) => s,
                    Some(t) => return Err(self.err(format!("unexpected {t} in {keyword} clause"))),
                    None => return Err(self.err(format!("unexpected EOF in {keyword} clause"))),
                };
                self.skip_space();
                let pipe = if self.peek() == Some(&Tok::RightDelim) {
                    self.next();
                    None
                } else {
                    Some(self.pipeline(&keyword, true)?)
                };
                if keyword == "block" {
                    if pipe.is_none() {
                        return Err(self.err("missing pipeline in block clause"));
                    }
                    let body = self.define_body(&name)?;
                    self.trees.insert(
                        name.clone(),
                        Tree {
                            name: name.clone(),
                            root: body,
                        },
                    );
                }
                nodes.push(Node::Template {
                    pos: line,
                    name,
                    pipe,
                });
                Ok(None)
            }
            "define" => {
                self.skip_space();
                let name = match self.next() {
                    Some(Tok::Str(s)) => s,
                    _ => return Err(self.err("define clause needs a quoted name")),
                };
                self.expect_close("define clause")?;
                let body = self.define_body(&name)?;
                self.trees.insert(name.clone(), Tree { name, root: body });
                Ok(None)
            }
            _ => unreachable!("keyword list above"),
        }
    }

    /// The body of a `define` or `block`, with its own variable scope.
    fn define_body(&mut self, name: &str) -> Result<Vec<Node>, SyntaxError> {
        let saved = std::mem::replace(&mut self.vars, vec!["$".to_string()]);
        let depth = std::mem::replace(&mut self.range_depth, 0);
        let (body, end) = self.list()?;
        self.vars = saved;
        self.range_depth = depth;
        match end {
            Some(ListEnd::End(_)) => Ok(body),
            Some(e) => Err(self.err_at(
                e.line(),
                format!("unexpected {{{{{}}}}} in define of {name:?}", e.word()),
            )),
            None => Err(self.err(format!("unexpected EOF in define of {name:?}"))),
        }
    }

    /// `if`, `with` and `range` with their `else` branches.
    fn control(&mut self, keyword: &str, line: Pos) -> Result<Node, SyntaxError> {
        let scope = self.vars.len();
        let pipe = self.pipeline(keyword, true)?;
        if keyword == "range" {
            self.range_depth += 1;
        }
        let (list, end) = self.list()?;
        if keyword == "range" {
            self.range_depth -= 1;
        }
        let else_list = self.else_branch(keyword, end)?;
        self.vars.truncate(scope);
        Ok(match keyword {
            "if" => Node::If {
                pos: line,
                pipe,
                list,
                else_list,
            },
            "with" => Node::With {
                pos: line,
                pipe,
                list,
                else_list,
            },
            _ => Node::Range {
                pos: line,
                pipe,
                list,
                else_list,
            },
        })
    }

    /// What follows a branch: nothing (`{{end}}`), an `{{else}}` list, or
    /// an `{{else if}}`/`{{else with}}` chain, which is an `if`/`with` node
    /// of its own that shares the closing `{{end}}`.
    fn else_branch(
        &mut self,
        keyword: &str,
        end: Option<ListEnd>,
    ) -> Result<Option<Vec<Node>>, SyntaxError> {
        match end {
            Some(ListEnd::End(_)) => Ok(None),
            Some(ListEnd::Else(_)) => {
                let (l, e) = self.list()?;
                match e {
                    Some(ListEnd::End(_)) => Ok(Some(l)),
                    Some(e) => Err(self.err_at(
                        e.line(),
                        format!("expected end; found {{{{{}}}}}", e.word()),
                    )),
                    None => Err(self.err(format!("unexpected EOF in {keyword}"))),
                }
            }
            Some(ListEnd::ElseIf(l, p)) if keyword == "if" => {
                Ok(Some(vec![self.chained("if", l, p)?]))
            }
            Some(ListEnd::ElseWith(l, p)) if keyword == "with" => {
                Ok(Some(vec![self.chained("with", l, p)?]))
            }
            Some(e) => Err(self.err_at(e.line(), format!("unexpected else chain in {keyword}"))),
            None => Err(self.err(format!("unexpected EOF in {keyword}"))),
        }
    }

    /// The rest of an `else if`/`else with` chain, whose pipeline was parsed.
    fn chained(&mut self, keyword: &str, line: Pos, pipe: Pipeline) -> Result<Node, SyntaxError> {
        let (list, end) = self.list()?;
        let else_list = self.else_branch(keyword, end)?;
        Ok(if keyword == "if" {
            Node::If {
                pos: line,
                pipe,
                list,
                else_list,
            }
        } else {
            Node::With {
                pos: line,
                pipe,
                list,
                else_list,
            }
        })
    }

    /// A pipeline up to `}}` (or `)` when `in_action` is false).
    fn pipeline(&mut self, context: &str, in_action: bool) -> Result<Pipeline, SyntaxError> {
        let mut pipe = Pipeline::default();
        self.skip_space();
        // Declarations: `$x :=`, `$x =`, `$i, $v :=` (range only).
        let mut look: Vec<Token> = Vec::new();
        if let Some(Tok::Variable(_)) = self.peek() {
            // Collect a possible declaration prefix without consuming it for good.
            while let Some(t) = self.toks.peek().cloned() {
                if matches!(
                    t.tok,
                    Tok::Variable(_) | Tok::Space | Tok::Comma | Tok::Declare | Tok::Assign
                ) {
                    look.push(t);
                    self.toks.next();
                    if matches!(
                        look.last().map(|t| &t.tok),
                        Some(Tok::Declare | Tok::Assign)
                    ) {
                        break;
                    }
                } else {
                    break;
                }
            }
            let op = look
                .iter()
                .position(|t| matches!(t.tok, Tok::Declare | Tok::Assign));
            match op {
                Some(i) => {
                    let names: Vec<String> = look[..i]
                        .iter()
                        .filter_map(|t| {
                            if let Tok::Variable(v) = &t.tok {
                                Some(v.clone())
                            } else {
                                None
                            }
                        })
                        .collect();
                    let commas = look[..i].iter().filter(|t| t.tok == Tok::Comma).count();
                    if names.len() > 2
                        || commas + 1 != names.len()
                        || (names.len() == 2 && context != "range")
                    {
                        return Err(self.err(format!("too many declarations in {context}")));
                    }
                    pipe.is_assign = look[i].tok == Tok::Assign;
                    if pipe.is_assign {
                        for n in &names {
                            if !self.vars.contains(n) {
                                return Err(self.err(format!("undefined variable {n:?}")));
                            }
                        }
                    }
                    pipe.decl = names;
                }
                None => {
                    // Not a declaration: put the tokens back.
                    let rest: Vec<Token> = look.into_iter().chain(self.toks.by_ref()).collect();
                    self.toks = rest.into_iter().peekable();
                }
            }
        }
        loop {
            self.skip_space();
            match self.peek() {
                Some(Tok::RightDelim) if in_action => {
                    self.next();
                    break;
                }
                Some(Tok::RightParen) if !in_action => {
                    self.next();
                    break;
                }
                None => return Err(self.err(format!("unclosed action in {context}"))),
                _ => {}
            }
            let cmd = self.command()?;
            pipe.cmds.push(cmd);
            self.skip_space();
            match self.peek() {
                Some(Tok::Pipe) => {
                    self.next();
                }
                Some(Tok::RightDelim) if in_action => {}
                Some(Tok::RightParen) if !in_action => {}
                Some(t) => {
                    let t = t.clone();
                    return Err(self.err(format!("unexpected {t} in operand")));
                }
                None => return Err(self.err(format!("unclosed action in {context}"))),
            }
        }
        if pipe.cmds.is_empty() {
            return Err(self.err(format!("missing value for {context}")));
        }
        for (i, c) in pipe.cmds.iter().enumerate() {
            if i > 0
                && matches!(
                    c.args.first(),
                    Some(Arg::Bool(_) | Arg::Number(_) | Arg::Str(_) | Arg::Nil | Arg::Dot)
                )
                && c.args.len() == 1
            {
                return Err(self.err(format!(
                    "non executable command in pipeline stage {}",
                    i + 1
                )));
            }
        }
        if !pipe.is_assign {
            self.vars.extend(pipe.decl.iter().cloned());
        }
        Ok(pipe)
    }

    /// Operands separated by spaces, up to `|`, `}}` or `)`.
    fn command(&mut self) -> Result<Command, SyntaxError> {
        let mut args = Vec::new();
        loop {
            self.skip_space();
            match self.peek() {
                None | Some(Tok::Pipe | Tok::RightDelim | Tok::RightParen) => break,
                _ => {}
            }
            args.push(self.operand()?);
            match self.peek() {
                Some(Tok::Space) | None | Some(Tok::Pipe | Tok::RightDelim | Tok::RightParen) => {}
                Some(t) => {
                    let t = t.clone();
                    return Err(self.err(format!("unexpected {t} in operand")));
                }
            }
        }
        if args.is_empty() {
            return Err(self.err("empty command"));
        }
        if args[0] == Arg::Nil {
            return Err(self.err("nil is not a command"));
        }
        Ok(Command { args })
    }

    fn fields(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(Tok::Field(f)) = self.peek() {
            out.push(f.clone());
            self.next();
        }
        out
    }

    fn operand(&mut self) -> Result<Arg, SyntaxError> {
        let t = self.next().ok_or_else(|| self.err("unexpected EOF"))?;
        Ok(match t {
            Tok::Dot => {
                if let Some(Tok::Field(_)) = self.peek() {
                    return Err(self.err("unexpected . after term \".\""));
                }
                Arg::Dot
            }
            Tok::Nil => Arg::Nil,
            Tok::Bool(b) => Arg::Bool(b),
            Tok::Number(n) => Arg::Number(n),
            Tok::Char(c) => Arg::Number((c as u32).to_string()),
            Tok::Str(s) => Arg::Str(s),
            Tok::Field(f) => {
                let mut chain = vec![f];
                chain.extend(self.fields());
                Arg::Field(chain)
            }
            Tok::Variable(v) => {
                if !self.vars.contains(&v) {
                    return Err(self.err(format!("undefined variable {v:?}")));
                }
                Arg::Variable(v, self.fields())
            }
            Tok::Ident(name) => {
                if !(self.is_func)(&name) {
                    return Err(self.err(format!("function {name:?} not defined")));
                }
                Arg::Function(name)
            }
            Tok::LeftParen => {
                let pipe = self.pipeline("parenthesized pipeline", false)?;
                Arg::Pipe(Box::new(pipe), self.fields())
            }
            other => return Err(self.err(format!("unexpected {other} in operand"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funcs(n: &str) -> bool {
        matches!(
            n,
            "printf" | "len" | "index" | "toUpper" | "join" | "eq" | "and" | "not"
        )
    }

    fn main(src: &str) -> Vec<Node> {
        parse("t", src, &funcs).unwrap().remove("t").unwrap().root
    }

    fn err(src: &str) -> String {
        parse("t", src, &funcs).unwrap_err().to_string()
    }

    #[test]
    fn actions_and_pipelines() {
        let n = main("{{ .Labels.severity | toUpper | printf \"%s!\" }}");
        let Node::Action { pipe, .. } = &n[0] else {
            panic!("{n:?}")
        };
        assert_eq!(pipe.cmds.len(), 3);
        assert_eq!(
            pipe.cmds[0].args,
            vec![Arg::Field(vec!["Labels".into(), "severity".into()])]
        );
        assert_eq!(
            pipe.cmds[2].args,
            vec![Arg::Function("printf".into()), Arg::Str("%s!".into())]
        );
        let n = main("{{ (index .Alerts 0).Labels.alertname }}");
        let Node::Action { pipe, .. } = &n[0] else {
            panic!()
        };
        assert!(
            matches!(&pipe.cmds[0].args[0], Arg::Pipe(_, f) if f == &vec!["Labels".to_string(), "alertname".to_string()])
        );
    }

    #[test]
    fn variables_scope_and_assignment() {
        let n = main(
            "{{ $p := \"low\" }}{{ if eq .Status \"firing\" }}{{ $p = \"high\" }}{{ end }}{{ $p }}",
        );
        assert!(
            matches!(&n[0], Node::Action { pipe, .. } if pipe.decl == vec!["$p".to_string()] && !pipe.is_assign)
        );
        let Node::If { list, .. } = &n[1] else {
            panic!()
        };
        assert!(matches!(&list[0], Node::Action { pipe, .. } if pipe.is_assign));
        assert!(err("{{ $x }}").contains("undefined variable \"$x\""));
        assert!(
            err("{{ range $i, $a := .Alerts }}{{ end }}{{ $a }}").contains("undefined variable"),
            "range variables end with the range"
        );
        main("{{ range $i, $a := .Alerts }}{{ $i }}{{ $a.Labels }}{{ $ }}{{ end }}");
        assert!(err("{{ $a, $b := 1 }}").contains("too many declarations"));
    }

    #[test]
    fn control_structures() {
        let n = main("{{ if .A }}a{{ else if .B }}b{{ else }}c{{ end }}");
        let Node::If {
            else_list: Some(e), ..
        } = &n[0]
        else {
            panic!("{n:?}")
        };
        assert!(matches!(
            &e[0],
            Node::If {
                else_list: Some(_),
                ..
            }
        ));
        let n = main("{{ range .Alerts }}{{ if .X }}{{ break }}{{ end }}{{ continue }}{{ else }}none{{ end }}");
        assert!(matches!(
            &n[0],
            Node::Range {
                else_list: Some(_),
                ..
            }
        ));
        main("{{ with .A }}{{ . }}{{ else with .B }}b{{ else }}c{{ end }}");
        assert!(err("{{ break }}").contains("outside {{range}}"));
        assert!(err("{{ if .A }}x").contains("unexpected EOF"));
        assert!(err("{{ end }}").contains("unexpected {{end}}"));
    }

    #[test]
    fn define_template_block() {
        let trees = parse("t", "{{ define \"x\" }}X{{ .Y }}{{ end }}{{ template \"x\" . }}{{ block \"b\" . }}default{{ end }}", &funcs).unwrap();
        assert_eq!(trees["x"].root.len(), 2);
        assert_eq!(trees["b"].root, vec![Node::Text("default".into())]);
        let main = &trees["t"].root;
        assert!(matches!(&main[0], Node::Template { name, pipe: Some(_), .. } if name == "x"));
        assert!(matches!(&main[1], Node::Template { name, .. } if name == "b"));
    }

    #[test]
    fn errors_name_template_and_line() {
        let e = err("ok\n{{ nosuchfunc . }}");
        assert_eq!(e, "template: t:2: function \"nosuchfunc\" not defined");
        assert!(err("{{ }}").contains("missing value"));
        assert!(err("{{ nil }}").contains("nil is not a command"));
        assert!(err("{{ .A | \"x\" }}").contains("non executable command"));
    }
}

// Needs Alertmanager's Go sources: the system test tier only.
#[cfg(all(test, feature = "system-tests"))]
mod alertmanager_templates {
    use super::*;

    /// Alertmanager's function map (`template/template.go`) plus Go's builtins.
    fn am_funcs(n: &str) -> bool {
        matches!(
            n,
            "and"
                | "or"
                | "not"
                | "len"
                | "index"
                | "slice"
                | "print"
                | "printf"
                | "println"
                | "eq"
                | "ne"
                | "lt"
                | "le"
                | "gt"
                | "ge"
                | "html"
                | "js"
                | "urlquery"
                | "call"
                | "toUpper"
                | "toLower"
                | "title"
                | "trimSpace"
                | "join"
                | "match"
                | "safeHtml"
                | "safeUrl"
                | "urlUnescape"
                | "reReplaceAll"
                | "stringSlice"
                | "date"
                | "tz"
                | "since"
                | "humanizeDuration"
                | "toDate"
                | "toJson"
                | "list"
                | "append"
                | "dict"
                | "now"
        )
    }

    /// The default templates of Debian's Alertmanager source package parse
    /// (read from the installed package at test time, not copied here).
    #[test]
    fn parses_alertmanagers_default_templates() {
        let dir = "/usr/share/gocode/src/github.com/prometheus/alertmanager/template";
        for file in ["default.tmpl", "email.tmpl"] {
            let path = format!("{dir}/{file}");
            let src = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}; scripts/test.sh installs golang-github-prometheus-alertmanager-dev"));
            let trees = parse(file, &src, &am_funcs).unwrap_or_else(|e| panic!("{file}: {e}"));
            if file == "default.tmpl" {
                for name in [
                    "__subject",
                    "__alertmanagerURL",
                    "slack.default.title",
                    "slack.default.text",
                    "pagerduty.default.description",
                ] {
                    assert!(trees.contains_key(name), "{name} missing from {file}");
                }
            } else {
                assert!(
                    trees.contains_key("email.default.html")
                        && trees.contains_key("email.default.subject")
                );
            }
        }
    }
}

#[cfg(test)]
mod robustness {
    use super::*;

    /// Mutated templates (bytes cut, repeated, swapped for delimiters) give
    /// a result or a syntax error, never a panic: the parser faces users'
    /// files and API input.
    #[test]
    fn mutated_templates_never_panic() {
        let base = "{{ define \"x\" }}{{ range $i, $a := .Alerts.Firing }}{{ if and $a.Labels (eq $i 0) }}{{ $a.Labels.alertname | printf \"%q\" }}{{ else if .X }}y{{ else }}{{ break }}{{ end }}{{ end }}{{ end }}{{- template \"x\" . -}}{{/* c */}}`raw` 'c' 1.5e3 (len .).A";
        let pieces = [
            "{{", "}}", "(", ")", "|", "$", ".", "\"", "`", "'", "-", ":=", "=", ",", "{{end}}",
            "{{else}}", " ",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut rnd = move |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let funcs = |n: &str| matches!(n, "and" | "eq" | "printf" | "len");
        for _ in 0..3000 {
            let mut s: Vec<char> = base.chars().collect();
            for _ in 0..1 + rnd(4) {
                let at = rnd(s.len() + 1);
                match rnd(3) {
                    0 if at < s.len() => {
                        let len = (1 + rnd(6)).min(s.len() - at);
                        s.drain(at..at + len);
                    }
                    _ => {
                        let p = pieces[rnd(pieces.len())];
                        for (k, c) in p.chars().enumerate() {
                            s.insert(at + k, c);
                        }
                    }
                }
            }
            let src: String = s.into_iter().collect();
            let _ = parse("fuzz", &src, &funcs);
        }
    }
}
