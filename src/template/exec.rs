//! Executing parsed templates with Go `text/template` semantics: dot and
//! variables, pipelines (the previous result is the last argument), field
//! and method lookup, `if`/`with`/`range` truthiness, `break`/`continue`,
//! `template` calls, `missingkey=zero`, and calls of the function map.
//!
//! The executor knows templates only as parsed trees, values and a
//! function map handed to it: which functions exist and which templates
//! are loaded is decided above it (`funcs`, `am`, `Templates`).

use std::collections::HashMap;
use std::fmt;

use super::html::HtmlContext;
use super::parse::{Arg, Command, Node, Pipeline, Pos, Tree};
use super::value::{func_error, FuncMap, Value};

/// How deep `{{template}}` calls may nest. Go allows 100000 on 64-bit
/// platforms; Herald recurses on the native stack, so it stops far earlier
/// (no real template nests deeper than a few levels).
const MAX_TEMPLATE_DEPTH: usize = 100;
/// Bounds on one execution. Go has none, but a template that calls itself
/// twice per level runs 2^100 times within the depth limit: Herald stops
/// it with an error instead of blocking a notification forever.
const MAX_STEPS: u64 = 20_000_000;
const MAX_OUTPUT: usize = 64 << 20;

/// A template that failed while running: `template: name:line:col: ...`
/// as Go prints it, the position being the action's opening `{{`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecError {
    pub(crate) template: String,
    pub(crate) line: usize,
    pub(crate) col: usize,
    pub(crate) message: String,
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.col) {
            (0, _) => write!(f, "template: {}: {}", self.template, self.message),
            (l, 0) => write!(f, "template: {}:{l}: {}", self.template, self.message),
            (l, c) => write!(f, "template: {}:{l}:{c}: {}", self.template, self.message),
        }
    }
}

impl std::error::Error for ExecError {}

/// Templates by name, as parsing returns them.
pub(crate) type Trees = HashMap<String, Tree>;

/// Whether templates may call `name`: the function map's names, and `and`
/// and `or`, which execution evaluates itself because they are lazy.
pub(crate) fn is_func(funcs: &FuncMap, name: &str) -> bool {
    matches!(name, "and" | "or") || funcs.contains_key(name)
}

/// How text and values are written out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Mode {
    /// As Go's `text/template`: as they are.
    Text,
    /// As Go's `html/template`: escaped for the HTML context they land in
    /// (e-mail bodies).
    Html,
}

/// What one execution can reach: Go's set of associated templates and its
/// function map.
#[derive(Clone, Copy)]
pub(crate) struct Set<'a> {
    pub(crate) trees: &'a Trees,
    /// Templates defined by a one-off text, looked up before `trees` so
    /// that running the text leaves the loaded templates unchanged.
    pub(crate) extra: Option<&'a Trees>,
    pub(crate) funcs: &'a FuncMap,
}

impl<'a> Set<'a> {
    fn lookup(&self, name: &str) -> Option<&'a Tree> {
        self.extra
            .and_then(|e| e.get(name))
            .or_else(|| self.trees.get(name))
    }

    /// Executes the template `name` with `data` as dot.
    pub(crate) fn execute(self, name: &str, data: &Value, mode: Mode) -> Result<String, ExecError> {
        let tree = self.lookup(name).ok_or_else(|| ExecError {
            template: name.into(),
            line: 0,
            col: 0,
            message: format!("no such template {name:?}"),
        })?;
        let mut st = State {
            set: self,
            name: name.to_string(),
            pos: Pos::default(),
            vars: vec![("$".into(), data.clone())],
            out: String::new(),
            depth: 0,
            steps: 0,
            html: (mode == Mode::Html).then(HtmlContext::default),
        };
        st.list(&tree.root, data)?;
        Ok(st.out)
    }
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    set: Set<'a>,
    name: String,
    pos: Pos,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
    steps: u64,
    /// Set in HTML mode: the context the output has reached.
    html: Option<HtmlContext>,
}

impl State<'_> {
    fn err(&self, message: impl Into<String>) -> ExecError {
        ExecError {
            template: self.name.clone(),
            line: self.pos.line,
            col: self.pos.col,
            message: message.into(),
        }
    }

    /// A function's or method's error as Go reports it: `error calling
    /// <name>: ...` for what the callee returned, bare for its arguments.
    fn call_err(&self, name: &str, e: &str) -> ExecError {
        match func_error(e) {
            (m, true) => self.err(format!("error calling {name}: {m}")),
            (m, false) => self.err(m),
        }
    }

    fn list(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, ExecError> {
        for n in nodes {
            match self.node(n, dot)? {
                Flow::Normal => {}
                other => return Ok(other),
            }
        }
        Ok(Flow::Normal)
    }

    fn node(&mut self, n: &Node, dot: &Value) -> Result<Flow, ExecError> {
        self.steps += 1;
        if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT {
            return Err(self.err(format!(
                "template execution stopped after {MAX_STEPS} steps or {} MiB of output",
                MAX_OUTPUT >> 20
            )));
        }
        match n {
            Node::Text(s) => match &mut self.html {
                Some(ctx) => {
                    let text = ctx.feed(s);
                    self.out.push_str(&text);
                }
                None => self.out.push_str(s),
            },
            Node::Action { pos, pipe } => {
                self.pos = *pos;
                let v = self.pipeline(pipe, dot)?;
                if pipe.decl.is_empty() {
                    let text = match (&v, &self.html) {
                        // missingkey=zero on an untyped map prints "<no value>".
                        (Value::Nil, None) => "<no value>".to_string(),
                        (v, None) => v.go_string(),
                        (v, Some(ctx)) => {
                            let urlquery_last = pipe.cmds.last().is_some_and(|c| {
                                c.args.first() == Some(&Arg::Function("urlquery".into()))
                            });
                            ctx.escape(v, urlquery_last)
                        }
                    };
                    self.out.push_str(&text);
                }
            }
            Node::If {
                pos,
                pipe,
                list,
                else_list,
            }
            | Node::With {
                pos,
                pipe,
                list,
                else_list,
            } => {
                self.pos = *pos;
                let mark = self.vars.len();
                let v = self.pipeline(pipe, dot)?;
                let is_with = matches!(n, Node::With { .. });
                let flow = if v.truthy() {
                    let inner = if is_with { v } else { dot.clone() };
                    self.list(list, &inner)?
                } else if let Some(e) = else_list {
                    self.list(e, dot)?
                } else {
                    Flow::Normal
                };
                self.vars.truncate(mark);
                return Ok(flow);
            }
            Node::Range {
                pos,
                pipe,
                list,
                else_list,
            } => {
                self.pos = *pos;
                let mark = self.vars.len();
                // The declared variables take the index/key and the element.
                let decl = pipe.decl.clone();
                let undeclared = Pipeline {
                    decl: Vec::new(),
                    ..pipe.clone()
                };
                let v = self.pipeline(&undeclared, dot)?;
                let items = match &v {
                    Value::Int(n) if *n >= 0 => {
                        (0..*n).map(|i| (Value::Int(i), Value::Int(i))).collect()
                    }
                    other => other.items().ok_or_else(|| {
                        self.err(format!("range can't iterate over {}", other.go_string()))
                    })?,
                };
                if items.is_empty() {
                    if let Some(e) = else_list {
                        self.list(e, dot)?;
                    }
                } else {
                    for (k, item) in items {
                        self.vars.truncate(mark);
                        match decl.as_slice() {
                            [v1] => self.vars.push((v1.clone(), item.clone())),
                            [k1, v1] => {
                                self.vars.push((k1.clone(), k));
                                self.vars.push((v1.clone(), item.clone()));
                            }
                            _ => {}
                        }
                        if let Flow::Break = self.list(list, &item)? {
                            break;
                        }
                    }
                }
                self.vars.truncate(mark);
            }
            Node::Template { pos, name, pipe } => {
                self.pos = *pos;
                let arg = match pipe {
                    Some(p) => self.pipeline(p, dot)?,
                    None => Value::Nil,
                };
                let tree = self
                    .set
                    .lookup(name)
                    .ok_or_else(|| self.err(format!("no such template {name:?}")))?;
                if self.depth >= MAX_TEMPLATE_DEPTH {
                    return Err(self.err(format!(
                        "exceeded maximum template depth ({MAX_TEMPLATE_DEPTH})"
                    )));
                }
                let saved_vars = std::mem::replace(&mut self.vars, vec![("$".into(), arg.clone())]);
                let saved_name = std::mem::replace(&mut self.name, name.clone());
                self.depth += 1;
                let r = self.list(&tree.root, &arg);
                self.depth -= 1;
                self.vars = saved_vars;
                self.name = saved_name;
                r?;
            }
            Node::Break { .. } => return Ok(Flow::Break),
            Node::Continue { .. } => return Ok(Flow::Continue),
        }
        Ok(Flow::Normal)
    }

    fn var(&self, name: &str) -> Result<Value, ExecError> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.err(format!("undefined variable: {name}")))
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, ExecError> {
        let mut last: Option<Value> = None;
        for cmd in &p.cmds {
            last = Some(self.command(cmd, dot, last)?);
        }
        let v = last.unwrap_or(Value::Nil);
        if p.is_assign {
            for name in &p.decl {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            }
        } else {
            for name in &p.decl {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        cmd: &Command,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, ExecError> {
        let first = &cmd.args[0];
        match first {
            Arg::Function(name) => {
                // `and` and `or` evaluate lazily, as in Go 1.18+.
                if name == "and" || name == "or" {
                    let mut v = Value::Nil;
                    let n = cmd.args.len() - 1 + usize::from(piped.is_some());
                    if n == 0 {
                        return Err(self.err(format!(
                            "wrong number of args for {name}: want at least 1 got 0"
                        )));
                    }
                    for a in &cmd.args[1..] {
                        v = self.arg(a, dot)?;
                        if v.truthy() != (name == "and") {
                            return Ok(v);
                        }
                    }
                    if let Some(p) = piped {
                        v = p;
                    }
                    return Ok(v);
                }
                let mut args = Vec::with_capacity(cmd.args.len());
                for a in &cmd.args[1..] {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(piped);
                let f = self
                    .set
                    .funcs
                    .get(name.as_str())
                    .ok_or_else(|| self.err(format!("function {name:?} not defined")))?;
                f(&args).map_err(|e| self.call_err(name, &e))
            }
            // A method with arguments: `.Remove .GroupLabels.Names`.
            Arg::Field(chain) if cmd.args.len() > 1 || piped.is_some() => {
                let mut args = Vec::new();
                for a in &cmd.args[1..] {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(piped);
                let (head, last) = chain.split_at(chain.len() - 1);
                let recv = self.fields(dot.clone(), head)?;
                self.call_method(&recv, &last[0], &args)
            }
            Arg::Variable(v, chain)
                if !chain.is_empty() && (cmd.args.len() > 1 || piped.is_some()) =>
            {
                let mut args = Vec::new();
                for a in &cmd.args[1..] {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(piped);
                let (head, last) = chain.split_at(chain.len() - 1);
                let recv = self.fields(self.var(v)?, head)?;
                self.call_method(&recv, &last[0], &args)
            }
            // `(toDate "2006" "2024").Format "Jan"`.
            Arg::Pipe(p, chain) if !chain.is_empty() && (cmd.args.len() > 1 || piped.is_some()) => {
                let mut args = Vec::new();
                for a in &cmd.args[1..] {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(piped);
                let mark = self.vars.len();
                let base = self.pipeline(p, dot)?;
                self.vars.truncate(mark);
                let (head, last) = chain.split_at(chain.len() - 1);
                let recv = self.fields(base, head)?;
                self.call_method(&recv, &last[0], &args)
            }
            _ => {
                if cmd.args.len() > 1 || piped.is_some() {
                    return Err(self.err(format!(
                        "can't give argument to non-function {}",
                        describe(first)
                    )));
                }
                self.arg(first, dot)
            }
        }
    }

    fn call_method(&self, recv: &Value, name: &str, args: &[Value]) -> Result<Value, ExecError> {
        match recv {
            Value::Object(o) => match o.call(name, args) {
                Some(r) => r.map_err(|e| self.call_err(name, &e)),
                None => Err(self.err(format!("can't give argument to non-function .{name}"))),
            },
            other => Err(self.err(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            ))),
        }
    }

    fn arg(&mut self, a: &Arg, dot: &Value) -> Result<Value, ExecError> {
        Ok(match a {
            Arg::Dot => dot.clone(),
            Arg::Nil => Value::Nil,
            Arg::Bool(b) => Value::Bool(*b),
            Arg::Str(s) => Value::from(s.as_str()),
            Arg::Number(n) => {
                parse_number(n).ok_or_else(|| self.err(format!("bad number syntax: {n:?}")))?
            }
            Arg::Field(chain) => self.fields(dot.clone(), chain)?,
            Arg::Variable(v, chain) => {
                let base = self.var(v)?;
                self.fields(base, chain)?
            }
            Arg::Function(name) => {
                let f = self
                    .set
                    .funcs
                    .get(name.as_str())
                    .ok_or_else(|| self.err(format!("function {name:?} not defined")))?;
                f(&[]).map_err(|e| self.call_err(name, &e))?
            }
            Arg::Pipe(p, chain) => {
                let mark = self.vars.len();
                let v = self.pipeline(p, dot)?;
                self.vars.truncate(mark);
                self.fields(v, chain)?
            }
        })
    }

    /// Follows `.A.B.C` from `v`: map keys (missing → zero), object fields
    /// and argument-less methods.
    fn fields(&self, mut v: Value, chain: &[String]) -> Result<Value, ExecError> {
        for f in chain {
            v = match &v {
                Value::Map(m) => m.get(f).cloned().unwrap_or(Value::Nil),
                Value::Object(o) => o.field(f).ok_or_else(|| {
                    self.err(format!(
                        "can't evaluate field {f} in type {}",
                        o.type_name()
                    ))
                })?,
                Value::Nil => return Err(self.err(format!("nil pointer evaluating .{f}"))),
                other => {
                    return Err(self.err(format!(
                        "can't evaluate field {f} in type {}",
                        other.type_name()
                    )))
                }
            };
        }
        Ok(v)
    }
}

fn describe(a: &Arg) -> String {
    match a {
        Arg::Str(s) => format!("{s:?}"),
        Arg::Number(n) => n.clone(),
        Arg::Bool(b) => b.to_string(),
        Arg::Dot => ".".into(),
        Arg::Field(c) => format!(".{}", c.join(".")),
        Arg::Variable(v, c) if c.is_empty() => v.clone(),
        Arg::Variable(v, c) => format!("{v}.{}", c.join(".")),
        _ => "value".into(),
    }
}

/// Go number literals: decimal, hex/octal/binary with `_`, floats.
fn parse_number(n: &str) -> Option<Value> {
    let clean = n.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o").or_else(|| body.strip_prefix("0O")) {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = body.strip_prefix("0b").or_else(|| body.strip_prefix("0B")) {
        i64::from_str_radix(b, 2).ok()
    } else if body.len() > 1 && body.starts_with('0') && body.chars().all(|c| c.is_ascii_digit()) {
        i64::from_str_radix(&body[1..], 8).ok()
    } else {
        body.parse::<i64>().ok()
    };
    match int {
        Some(i) => Some(Value::Int(if neg { -i } else { i })),
        None => body
            .parse::<f64>()
            .ok()
            .map(|f| Value::Float(if neg { -f } else { f })),
    }
}
