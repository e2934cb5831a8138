//! Executing parsed templates with Go `text/template` semantics: dot and
//! variables, pipelines (the previous result is the last argument), field
//! and method lookup, `if`/`with`/`range` truthiness, `break`/`continue`,
//! `template` calls, `missingkey=zero`, and Go's builtin functions.
//!
//! Data is a `Value`; host objects (Alertmanager's KV, Alerts, times...)
//! plug in through the `Object` trait, which gives them fields, methods
//! with arguments and their printed form, as Go's reflection does.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use super::parse::{Arg, Command, Node, Pipeline, Pos, Tree};

/// How deep `{{template}}` calls may nest. Go allows 100000 on 64-bit
/// platforms; Herald recurses on the native stack, so it stops far earlier
/// (no real template nests deeper than a few levels).
const MAX_TEMPLATE_DEPTH: usize = 100;
/// Bounds on one execution. Go has none, but a template that calls itself
/// twice per level runs 2^100 times within the depth limit: Herald stops
/// it with an error instead of blocking a notification forever.
const MAX_STEPS: u64 = 20_000_000;
const MAX_OUTPUT: usize = 64 << 20;

/// A Go value as templates see it.
#[derive(Clone)]
pub enum Value {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    List(Arc<Vec<Value>>),
    Map(Arc<BTreeMap<String, Value>>),
    Object(Arc<dyn Object>),
}

/// A host value with Go-like fields and methods.
pub trait Object: Send + Sync {
    fn type_name(&self) -> &'static str;
    /// A field or a method called without arguments (`.Labels`, `.Firing`).
    fn field(&self, name: &str) -> Option<Value>;
    /// A method called with arguments (`.Remove .GroupLabels.Names`).
    fn call(&self, name: &str, _args: &[Value]) -> Option<Result<Value, String>> {
        let _ = name;
        None
    }
    /// Go's `%v` (its `String()` method where it has one).
    fn display(&self) -> String;
    fn truthy(&self) -> bool {
        true
    }
    /// Elements for `range` and `len`, when the object is a collection.
    fn items(&self) -> Option<Vec<Value>> {
        None
    }
    /// The instant, when the object is a `time.Time`.
    fn timestamp(&self) -> Option<jiff::Timestamp> {
        None
    }
    /// The instant with its zone, when the object is a `time.Time`.
    fn zoned(&self) -> Option<jiff::ZonedDateTime> {
        self.timestamp()
            .map(|t| jiff::ZonedDateTime::new(t, jiff::tz::TimeZone::UTC))
    }
    /// The length in seconds, when the object is a `time.Duration`.
    fn seconds(&self) -> Option<f64> {
        None
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.go_string())
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(Arc::from(s))
    }
}

/// Go's shortest float formatting (`strconv.FormatFloat(f, 'g', -1, 64)`).
fn go_float(f: f64) -> String {
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f.is_nan() {
        return "NaN".into();
    }
    let exp = if f == 0.0 {
        0
    } else {
        f.abs().log10().floor() as i32
    };
    if (-4..21).contains(&exp) {
        format!("{f}")
    } else {
        let s = format!("{f:e}");
        // Rust writes 1e21, Go 1e+21; Rust 1.5e-7, Go 1.5e-07.
        let (mant, e) = s.split_once('e').unwrap_or((&s, "0"));
        let (sign, digits) = match e.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', e),
        };
        format!("{mant}e{sign}{digits:0>2}")
    }
}

impl Value {
    pub fn str(s: impl Into<Arc<str>>) -> Value {
        Value::Str(s.into())
    }

    /// Go's `%v` printing.
    pub fn go_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => go_float(*f),
            Value::Str(s) => s.to_string(),
            Value::List(l) => format!(
                "[{}]",
                l.iter().map(Value::go_string).collect::<Vec<_>>().join(" ")
            ),
            Value::Map(m) => format!(
                "map[{}]",
                m.iter()
                    .map(|(k, v)| format!("{k}:{}", v.go_string()))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            Value::Object(o) => o.display(),
        }
    }

    /// Go's `truth`: zero values and empty collections are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Object(o) => o.truthy(),
        }
    }

    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::List(_) => "slice",
            Value::Map(_) => "map",
            Value::Object(o) => o.type_name(),
        }
    }

    fn items(&self) -> Option<Vec<(Value, Value)>> {
        match self {
            Value::List(l) => Some(
                l.iter()
                    .enumerate()
                    .map(|(i, v)| (Value::Int(i as i64), v.clone()))
                    .collect(),
            ),
            Value::Map(m) => Some(
                m.iter()
                    .map(|(k, v)| (Value::from(k.as_str()), v.clone()))
                    .collect(),
            ),
            Value::Object(o) => o.items().map(|v| {
                v.into_iter()
                    .enumerate()
                    .map(|(i, v)| (Value::Int(i as i64), v))
                    .collect()
            }),
            Value::Nil => Some(Vec::new()),
            _ => None,
        }
    }
}

/// A template that failed while running: `template: name:line:col: ...`
/// as Go prints it, the position being the action's opening `{{`.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecError {
    pub template: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
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

/// A template that failed to parse or to run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Syntax(#[from] super::lex::SyntaxError),
    #[error(transparent)]
    Exec(#[from] ExecError),
}

/// A function callable from templates.
pub type Func = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// Parsed templates by name plus the function map.
#[derive(Clone, Default)]
pub struct Templates {
    pub trees: HashMap<String, Tree>,
    pub funcs: HashMap<&'static str, Func>,
}

enum Flow {
    Normal,
    Break,
    Continue,
}

struct State<'a> {
    t: &'a Templates,
    /// Templates defined by a one-off text (`execute_text`), seen before
    /// the loaded ones without changing them.
    extra: Option<&'a HashMap<String, Tree>>,
    name: String,
    pos: Pos,
    vars: Vec<(String, Value)>,
    out: String,
    depth: usize,
    steps: u64,
    /// Set in HTML mode: the context the output has reached.
    html: Option<super::html::HtmlContext>,
}

impl Templates {
    /// Go's builtins; callers add their own functions on top.
    pub fn with_builtins() -> Templates {
        let mut t = Templates::default();
        super::funcs::add_builtins(&mut t.funcs);
        t
    }

    /// Go's builtins and Alertmanager's function map.
    pub fn alertmanager() -> Templates {
        let mut t = Self::with_builtins();
        super::am::add_alertmanager_funcs(&mut t.funcs);
        t
    }

    pub fn is_func(&self, name: &str) -> bool {
        matches!(name, "and" | "or") || self.funcs.contains_key(name)
    }

    /// Parses `src` and adds its templates; later definitions replace
    /// earlier ones, as Go's `Parse` does for user files over defaults.
    pub fn add(&mut self, name: &str, src: &str) -> Result<(), super::lex::SyntaxError> {
        let trees = super::parse::parse(name, src, &|n| self.is_func(n))?;
        self.trees.extend(trees);
        Ok(())
    }

    /// Executes the template `name` with `data` as dot.
    pub fn execute(&self, name: &str, data: &Value) -> Result<String, ExecError> {
        self.run(name, data, false)
    }

    /// Executes as Go's `html/template` would: values are escaped for the
    /// HTML context they land in (e-mail bodies).
    pub fn execute_html(&self, name: &str, data: &Value) -> Result<String, ExecError> {
        self.run(name, data, true)
    }

    /// Runs `text` (a config field such as a Slack `title:`) as a template
    /// of its own, with the loaded templates callable from it, as
    /// Alertmanager's `ExecuteTextString` does. Empty text renders empty.
    pub fn execute_text(&self, text: &str, data: &Value) -> Result<String, RenderError> {
        self.run_text(text, data, false)
    }

    /// `execute_text` in HTML mode (`ExecuteHTMLString`, for e-mail bodies).
    pub fn execute_html_text(&self, text: &str, data: &Value) -> Result<String, RenderError> {
        self.run_text(text, data, true)
    }

    /// Parses `text` as `execute_text` would, without running it.
    pub fn check_text(&self, text: &str) -> Result<(), RenderError> {
        super::parse::parse("", text, &|n| self.is_func(n))?;
        Ok(())
    }

    fn run_text(&self, text: &str, data: &Value, html: bool) -> Result<String, RenderError> {
        if text.is_empty() {
            return Ok(String::new());
        }
        let trees = super::parse::parse("", text, &|n| self.is_func(n))?;
        Ok(self.run_with(&trees, "", data, html)?)
    }

    /// Loads Alertmanager's function map, Herald's default templates and
    /// then the user's template files (which override the defaults by
    /// defining the same names), as Alertmanager's `FromGlobs` does.
    pub fn load(globs: &[String]) -> Result<Templates, String> {
        let mut t = Templates::alertmanager();
        for (name, src) in super::DEFAULT_TEMPLATES {
            t.add(name, src).map_err(|e| e.to_string())?;
        }
        super::am::load_globs(&mut t, globs)?;
        Ok(t)
    }

    fn run(&self, name: &str, data: &Value, html: bool) -> Result<String, ExecError> {
        self.run_with(&HashMap::new(), name, data, html)
    }

    fn run_with(
        &self,
        extra: &HashMap<String, Tree>,
        name: &str,
        data: &Value,
        html: bool,
    ) -> Result<String, ExecError> {
        let tree = extra
            .get(name)
            .or_else(|| self.trees.get(name))
            .ok_or_else(|| ExecError {
                template: name.into(),
                line: 0,
                col: 0,
                message: format!("no such template {name:?}"),
            })?;
        let mut st = State {
            t: self,
            extra: (!extra.is_empty()).then_some(extra),
            name: name.to_string(),
            pos: Pos::default(),
            vars: vec![("$".into(), data.clone())],
            out: String::new(),
            depth: 0,
            steps: 0,
            html: html.then(super::html::HtmlContext::default),
        };
        st.list(&tree.root, data)?;
        Ok(st.out)
    }
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
                    .extra
                    .and_then(|e| e.get(name))
                    .or_else(|| self.t.trees.get(name))
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
                    .t
                    .funcs
                    .get(name.as_str())
                    .ok_or_else(|| self.err(format!("function {name:?} not defined")))?;
                f(&args).map_err(|e| self.err(format!("error calling {name}: {e}")))
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
                Some(r) => r.map_err(|e| self.err(format!("error calling {name}: {e}"))),
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
                    .t
                    .funcs
                    .get(name.as_str())
                    .ok_or_else(|| self.err(format!("function {name:?} not defined")))?;
                f(&[]).map_err(|e| self.err(format!("error calling {name}: {e}")))?
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal host object: a string map with a method taking arguments.
    struct Kv(BTreeMap<String, String>);

    impl Object for Kv {
        fn type_name(&self) -> &'static str {
            "template.KV"
        }
        fn field(&self, name: &str) -> Option<Value> {
            match name {
                "Names" => Some(Value::List(Arc::new(
                    self.0.keys().map(|k| Value::from(k.as_str())).collect(),
                ))),
                // A map[string]string: a missing key is "".
                n => Some(Value::from(self.0.get(n).map(String::as_str).unwrap_or(""))),
            }
        }
        fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
            (name == "Remove").then(|| {
                let drop: Vec<String> = match args {
                    [Value::List(l)] => l.iter().map(Value::go_string).collect(),
                    _ => return Err("Remove takes a list".into()),
                };
                let kept = self
                    .0
                    .iter()
                    .filter(|(k, _)| !drop.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Ok(Value::Object(Arc::new(Kv(kept))))
            })
        }
        fn display(&self) -> String {
            self.0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        }
        fn items(&self) -> Option<Vec<Value>> {
            Some(self.0.values().map(|v| Value::from(v.as_str())).collect())
        }
    }

    fn render(src: &str, data: Value) -> Result<String, String> {
        let mut t = Templates::with_builtins();
        t.add("t", src).map_err(|e| e.to_string())?;
        t.execute("t", &data).map_err(|e| e.to_string())
    }

    fn data() -> Value {
        let kv = |p: &[(&str, &str)]| {
            Value::Object(Arc::new(Kv(p
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect())))
        };
        let mut m = BTreeMap::new();
        m.insert("Status".to_string(), Value::from("firing"));
        m.insert(
            "Labels".to_string(),
            kv(&[("alertname", "Disk"), ("instance", "a"), ("job", "node")]),
        );
        m.insert("Group".to_string(), kv(&[("alertname", "Disk")]));
        m.insert(
            "Items".to_string(),
            Value::List(Arc::new(vec![
                Value::Int(1),
                Value::Int(2),
                Value::Int(3),
                Value::Int(4),
            ])),
        );
        Value::Map(Arc::new(m))
    }

    #[test]
    fn fields_methods_and_missing_keys() {
        assert_eq!(
            render(
                "{{ .Labels.alertname }}|{{ .Labels.missing }}|{{ .Nope }}",
                data()
            )
            .unwrap(),
            "Disk||<no value>"
        );
        assert_eq!(
            render("{{ .Labels }}", data()).unwrap(),
            "alertname=Disk, instance=a, job=node"
        );
        assert_eq!(
            render("{{ (.Labels.Remove .Group.Names) }}", data()).unwrap(),
            "instance=a, job=node"
        );
        assert_eq!(
            render("{{ .Group.Names | .Labels.Remove }}", data()).unwrap(),
            "instance=a, job=node",
            "a piped value is the last argument"
        );
        assert_eq!(
            render("{{ len .Labels }} {{ index .Labels \"job\" }}", data()).unwrap(),
            "3 node"
        );
        assert!(render("{{ .Status.Foo }}", data())
            .unwrap_err()
            .contains("can't evaluate field Foo in type string"));
    }

    #[test]
    fn range_break_continue_and_variables() {
        let src = "{{ range $i, $v := .Items }}{{ if eq $v 2 }}{{ continue }}{{ end }}{{ if gt $v 3 }}{{ break }}{{ end }}{{ $i }}:{{ $v }};{{ end }}";
        assert_eq!(render(src, data()).unwrap(), "0:1;2:3;");
        assert_eq!(
            render("{{ range .Labels }}[{{ . }}]{{ end }}", data()).unwrap(),
            "[Disk][a][node]"
        );
        assert_eq!(
            render("{{ range .Empty }}x{{ else }}none{{ end }}", data()).unwrap(),
            "none"
        );
        assert_eq!(
            render(
                "{{ $s := .Status }}{{ range .Items }}{{ $s }}{{ $.Status }}{{ end }}",
                data()
            )
            .unwrap(),
            "firingfiring".repeat(4)
        );
    }

    #[test]
    fn templates_get_their_own_dot_and_recursion_is_bounded() {
        assert_eq!(
            render(
                "{{ define \"a\" }}<{{ .alertname }}>{{ end }}{{ template \"a\" .Labels }}",
                data()
            )
            .unwrap(),
            "<Disk>"
        );
        let e = render(
            "{{ define \"loop\" }}{{ template \"loop\" . }}{{ end }}{{ template \"loop\" . }}",
            data(),
        )
        .unwrap_err();
        assert!(e.contains("maximum template depth"), "{e}");
    }

    #[test]
    fn float_printing_matches_go() {
        for (f, s) in [
            (1.5, "1.5"),
            (1e21, "1e+21"),
            (1e20, "100000000000000000000"),
            (0.000012, "1.2e-05"),
            (0.0001, "0.0001"),
            (3.0, "3"),
        ] {
            assert_eq!(Value::Float(f).go_string(), s);
        }
    }

    #[test]
    fn errors_name_template_line_and_column() {
        let t = Templates::alertmanager();
        let e = t
            .execute_text("ab\n  x {{ 1 }} {{ index 1 2 }}", &Value::Nil)
            .unwrap_err();
        assert!(e.to_string().starts_with("template: :2:13: "), "{e}");
    }

    #[test]
    fn runaway_templates_stop_with_an_error() {
        let t = Templates::alertmanager();
        let nested = format!(
            "{{{{ $l := list 1 2 3 4 5 6 7 8 9 10 }}}}{}x{}",
            "{{ range $l }}".repeat(9),
            "{{ end }}".repeat(9)
        );
        let e = t.execute_text(&nested, &Value::Nil).unwrap_err();
        assert!(e.to_string().contains("stopped after"), "{e}");
    }

    /// A stable stand-in for the fuzz target (fuzz/): random soups of
    /// template fragments must parse or fail with an error, and run or
    /// fail with an error, never panic.
    #[test]
    fn random_templates_never_panic() {
        const BITS: &[&str] = &[
            "{{",
            "}}",
            "{{-",
            "-}}",
            " ",
            ".",
            ".Alerts",
            ".Labels",
            ".Status",
            "$x",
            ":=",
            "=",
            "|",
            "(",
            ")",
            "if",
            "else",
            "end",
            "range",
            "with",
            "define",
            "template",
            "block",
            "break",
            "continue",
            "\"a\"",
            "`r`",
            "'c'",
            "1",
            "-2.5e3",
            "0x1F",
            "nil",
            "true",
            "printf",
            "\"%v %d %5.2f %q\"",
            "len",
            "index",
            "slice",
            "eq",
            "and",
            "or",
            "not",
            "toUpper",
            "join",
            "reReplaceAll",
            "\"(\"",
            "safeHtml",
            "html",
            "urlquery",
            "/*",
            "*/",
            "<a href=\"",
            "\">",
            "<script>",
            "</script>",
            "<style>",
            "\n",
            "\u{e9}",
            "date",
            "tz",
            "toDate",
            "humanizeDuration",
            ".StartsAt",
            ".Format",
            "list",
            "dict",
        ];
        let dot = super::super::am::example_data(jiff::Timestamp::UNIX_EPOCH);
        let t = Templates::alertmanager();
        let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let n = (next() % 24) as usize;
            let text: String = (0..n)
                .map(|_| BITS[(next() % BITS.len() as u64) as usize])
                .collect();
            let _ = t.execute_text(&text, &dot);
            let _ = t.execute_html_text(&text, &dot);
        }
    }
}
