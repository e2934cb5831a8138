//! The values templates compute with: Go's basic kinds, slices and maps,
//! and host objects (Alertmanager's KV, Alerts, times...) that plug in
//! through the `Object` trait, which gives them fields, methods with
//! arguments and their printed form, as Go's reflection does.
//!
//! This is the bottom of the engine: it knows neither the parser nor the
//! executor, so the builtins, the HTML escaper and Alertmanager's objects
//! can all be written against it alone.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

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
    /// Key/element pairs for `range $k, $v`, when the object is a Go map:
    /// ranging over a map gives its keys in sorted order, not indices.
    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        None
    }
    /// The object as `encoding/json` marshals it (`toJson`), as JSON text
    /// so that struct fields keep their declared order.
    fn to_json(&self) -> Result<String, String> {
        Ok(json_string(&self.display()))
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
    /// The length in nanoseconds, when the object is a `time.Duration`.
    fn nanos(&self) -> Option<i64> {
        None
    }
    /// The number, when the object is of a Go integer kind (`time.Month`,
    /// `time.Weekday`, `time.Duration`): what `%d` prints and `eq` compares.
    fn int_value(&self) -> Option<i64> {
        None
    }
    /// The zone, when the object is a `*time.Location`.
    fn zone(&self) -> Option<jiff::tz::TimeZone> {
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
    // strconv's 'g' with the shortest precision switches to an exponent
    // from 1e6 on (the 1e21 limit is encoding/json's, not fmt's).
    if (-4..6).contains(&exp) {
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
    /// Go's `%v` printing.
    pub(crate) fn go_string(&self) -> String {
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
    pub(crate) fn truthy(&self) -> bool {
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

    pub(crate) fn type_name(&self) -> &'static str {
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

    /// Key/element pairs for `range`: indices for lists and collection
    /// objects, sorted keys for maps, nothing for nil.
    pub(crate) fn items(&self) -> Option<Vec<(Value, Value)>> {
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
            Value::Object(o) => o.entries().or_else(|| {
                o.items().map(|v| {
                    v.into_iter()
                        .enumerate()
                        .map(|(i, v)| (Value::Int(i as i64), v))
                        .collect()
                })
            }),
            Value::Nil => Some(Vec::new()),
            _ => None,
        }
    }
}

/// A string as `encoding/json` writes it: HTML-safe, so `<`, `>` and `&`
/// become `\u003c`, `\u003e` and `\u0026`.
pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value as `encoding/json` marshals it: map keys sorted, floats in
/// Go's shortest form, NaN and infinities refused.
pub(crate) fn json_value(v: &Value) -> Result<String, String> {
    Ok(match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => {
            if !f.is_finite() {
                return Err(format!(
                    "json: unsupported value: {}",
                    Value::Float(*f).go_string()
                ));
            }
            let a = f.abs();
            if a == 0.0 || (1e-6..1e21).contains(&a) {
                format!("{f}")
            } else {
                let s = format!("{f:e}");
                match s.split_once('e') {
                    Some((m, e)) if !e.starts_with('-') => format!("{m}e+{e}"),
                    _ => s,
                }
            }
        }
        Value::Str(s) => json_string(s),
        Value::List(l) => {
            let items: Result<Vec<String>, String> = l.iter().map(json_value).collect();
            format!("[{}]", items?.join(","))
        }
        Value::Map(m) => {
            let mut parts = Vec::with_capacity(m.len());
            for (k, v) in m.iter() {
                parts.push(format!("{}:{}", json_string(k), json_value(v)?));
            }
            format!("{{{}}}", parts.join(","))
        }
        Value::Object(o) => o.to_json()?,
    })
}

/// Marks a function's error as one Go's executor raises while converting
/// the arguments (wrong count or type), which it reports without the
/// `error calling <name>:` prefix of errors the function itself returns.
const ARG_ERROR: char = '\u{1}';

pub(crate) fn arg_error(msg: impl Into<String>) -> String {
    format!("{ARG_ERROR}{}", msg.into())
}

/// The message of a function's error, and whether it came from the
/// function itself (not from converting its arguments).
pub(crate) fn func_error(msg: &str) -> (&str, bool) {
    match msg.strip_prefix(ARG_ERROR) {
        Some(m) => (m, false),
        None => (msg, true),
    }
}

/// A function callable from templates.
pub(crate) type Func = Arc<dyn Fn(&[Value]) -> Result<Value, String> + Send + Sync>;

/// Functions by the name templates call them with (Go's `FuncMap`).
pub(crate) type FuncMap = HashMap<&'static str, Func>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_printing_matches_go() {
        for (f, s) in [
            (1.5, "1.5"),
            (1e21, "1e+21"),
            (1e20, "1e+20"),
            (123456.5, "123456.5"),
            (1234567.0, "1.234567e+06"),
            (-153722867.28091294, "-1.5372286728091294e+08"),
            (0.000012, "1.2e-05"),
            (0.0001, "0.0001"),
            (3.0, "3"),
        ] {
            assert_eq!(Value::Float(f).go_string(), s);
        }
    }
}
