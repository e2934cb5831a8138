//! Go's template builtins (`text/template/funcs.go`), with Go's semantics:
//! comparisons by basic kind, `printf` verbs, and the escapers.

use std::sync::Arc;

use super::value::{Func, FuncMap, Value};

fn f(func: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static) -> Func {
    Arc::new(func)
}

pub(crate) fn add_builtins(m: &mut FuncMap) {
    m.insert("not", f(|a| one(a).map(|v| Value::Bool(!v.truthy()))));
    m.insert("len", f(|a| len(one(a)?).map(|n| Value::Int(n as i64))));
    m.insert("index", f(index));
    m.insert("slice", f(slice));
    m.insert("print", f(|a| Ok(Value::from(sprint(a)))));
    m.insert(
        "println",
        f(|a| {
            Ok(Value::from(format!(
                "{}\n",
                a.iter().map(Value::go_string).collect::<Vec<_>>().join(" ")
            )))
        }),
    );
    m.insert(
        "printf",
        f(|a| match a.split_first() {
            Some((Value::Str(fmt), rest)) => Ok(Value::from(sprintf(fmt, rest))),
            _ => Err("wrong type for value; expected string".into()),
        }),
    );
    m.insert(
        "eq",
        f(|a| {
            let (first, rest) = a.split_first().ok_or("missing argument for comparison")?;
            if rest.is_empty() {
                return Err("missing argument for comparison".into());
            }
            for b in rest {
                if equal(first, b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }),
    );
    m.insert(
        "ne",
        f(|a| {
            two(a)
                .and_then(|(x, y)| equal(x, y))
                .map(|e| Value::Bool(!e))
        }),
    );
    m.insert(
        "lt",
        f(|a| two(a).and_then(|(x, y)| less(x, y)).map(Value::Bool)),
    );
    m.insert(
        "le",
        f(|a| {
            two(a)
                .and_then(|(x, y)| Ok(less(x, y)? || equal(x, y)?))
                .map(Value::Bool)
        }),
    );
    m.insert(
        "gt",
        f(|a| {
            two(a)
                .and_then(|(x, y)| Ok(!less(x, y)? && !equal(x, y)?))
                .map(Value::Bool)
        }),
    );
    m.insert(
        "ge",
        f(|a| {
            two(a)
                .and_then(|(x, y)| less(x, y))
                .map(|l| Value::Bool(!l))
        }),
    );
    m.insert("html", f(|a| Ok(Value::from(html_escape(&sprint(a))))));
    m.insert("js", f(|a| Ok(Value::from(js_escape(&sprint(a))))));
    // Template data never holds functions (Alertmanager's has none), so
    // `call` can only report what Go reports for a non-function.
    m.insert(
        "call",
        f(|a| match a.first() {
            None => Err("wrong number of args for call: want at least 1 got 0".into()),
            Some(v) => Err(format!("non-function of type {}", v.type_name())),
        }),
    );
    m.insert(
        "urlquery",
        f(|a| {
            Ok(Value::from(
                url::form_urlencoded::byte_serialize(sprint(a).as_bytes()).collect::<String>(),
            ))
        }),
    );
}

fn one(a: &[Value]) -> Result<&Value, String> {
    match a {
        [v] => Ok(v),
        _ => Err(format!("wrong number of args: want 1 got {}", a.len())),
    }
}

fn two(a: &[Value]) -> Result<(&Value, &Value), String> {
    match a {
        [x, y] => Ok((x, y)),
        _ => Err(format!("wrong number of args: want 2 got {}", a.len())),
    }
}

fn len(v: &Value) -> Result<usize, String> {
    match v {
        Value::Str(s) => Ok(s.len()),
        Value::List(l) => Ok(l.len()),
        Value::Map(m) => Ok(m.len()),
        Value::Object(o) => o
            .items()
            .map(|i| i.len())
            .ok_or_else(|| format!("len of type {}", o.type_name())),
        other => Err(format!("len of type {}", other.go_string())),
    }
}

fn int_arg(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        other => Err(format!(
            "cannot index slice/array with type {}",
            other.go_string()
        )),
    }
}

fn index(a: &[Value]) -> Result<Value, String> {
    let (first, keys) = a.split_first().ok_or("index of untyped nil")?;
    let mut v = first.clone();
    for k in keys {
        v = match (&v, k) {
            (Value::List(l), k) => {
                let i = int_arg(k)?;
                l.get(usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?)
                    .cloned()
                    .ok_or(format!("error calling index: index out of range: {i}"))?
            }
            // Indexing a string gives the byte, as in Go.
            (Value::Str(s), k) => {
                let i = int_arg(k)?;
                s.as_bytes()
                    .get(usize::try_from(i).map_err(|_| format!("index out of range: {i}"))?)
                    .map(|b| Value::Int(i64::from(*b)))
                    .ok_or(format!("index out of range: {i}"))?
            }
            (Value::Map(m), Value::Str(s)) => m.get(s.as_ref()).cloned().unwrap_or(Value::Nil),
            (Value::Object(o), Value::Str(s)) => o.field(s).unwrap_or_else(|| Value::from("")),
            (Value::Object(o), k) if o.items().is_some() => {
                let i = int_arg(k)?;
                o.items()
                    .and_then(|items| items.get(i as usize).cloned())
                    .ok_or(format!("index out of range: {i}"))?
            }
            (Value::Nil, _) => return Err("index of untyped nil".into()),
            (other, _) => return Err(format!("can't index item of type {}", other.go_string())),
        };
    }
    Ok(v)
}

fn slice(a: &[Value]) -> Result<Value, String> {
    let (first, idx) = a.split_first().ok_or("slice of untyped nil")?;
    let n = len(first)?;
    let bounds: Vec<usize> = idx
        .iter()
        .map(|i| int_arg(i).map(|i| i as usize))
        .collect::<Result<_, _>>()?;
    let (lo, hi) = match bounds.as_slice() {
        [] => (0, n),
        [lo] => (*lo, n),
        [lo, hi] => (*lo, *hi),
        _ => return Err("too many slice indexes".into()),
    };
    if lo > hi || hi > n {
        return Err(format!("index out of range: {lo}:{hi}"));
    }
    match first {
        Value::Str(s) => s
            .get(lo..hi)
            .map(Value::from)
            .ok_or_else(|| "slice splits a character".to_string()),
        Value::List(l) => Ok(Value::List(Arc::new(l[lo..hi].to_vec()))),
        other => Err(format!("can't slice item of type {}", other.go_string())),
    }
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !matches!(v, Value::Str(_)) && !matches!(a[i - 1], Value::Str(_)) {
            out.push(' ');
        }
        out.push_str(&v.go_string());
    }
    out
}

#[derive(PartialEq, PartialOrd)]
enum Basic<'a> {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Nil,
}

fn basic(v: &Value) -> Result<Basic<'_>, String> {
    Ok(match v {
        Value::Bool(b) => Basic::Bool(*b),
        Value::Int(i) => Basic::Int(*i),
        Value::Float(f) => Basic::Float(*f),
        Value::Str(s) => Basic::Str(s),
        Value::Nil => Basic::Nil,
        Value::Object(o) if o.int_value().is_some() => Basic::Int(o.int_value().unwrap_or(0)),
        other => {
            return Err(format!(
                "invalid type for comparison: {}",
                other.go_string()
            ))
        }
    })
}

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    match (basic(a)?, basic(b)?) {
        (Basic::Nil, Basic::Nil) => Ok(true),
        (x @ Basic::Bool(_), y @ Basic::Bool(_))
        | (x @ Basic::Int(_), y @ Basic::Int(_))
        | (x @ Basic::Float(_), y @ Basic::Float(_))
        | (x @ Basic::Str(_), y @ Basic::Str(_)) => Ok(x == y),
        _ => Err("incompatible types for comparison".into()),
    }
}

fn less(a: &Value, b: &Value) -> Result<bool, String> {
    match (basic(a)?, basic(b)?) {
        (Basic::Int(x), Basic::Int(y)) => Ok(x < y),
        (Basic::Float(x), Basic::Float(y)) => Ok(x < y),
        (Basic::Str(x), Basic::Str(y)) => Ok(x < y),
        (Basic::Bool(_), Basic::Bool(_)) => Err("invalid type for comparison".into()),
        _ => Err("incompatible types for comparison".into()),
    }
}

/// Go's `template.HTMLEscapeString`.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\'' => out.push_str("&#39;"),
            '"' => out.push_str("&#34;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Go's `template.JSEscapeString`.
fn js_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '"' => out.push_str("\\\""),
            '<' => out.push_str("\\u003C"),
            '>' => out.push_str("\\u003E"),
            '&' => out.push_str("\\u0026"),
            '=' => out.push_str("\\u003D"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Go's `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %x %X %f
/// %e %g %t %c %%`, flags `-+# 0`, width and precision.
fn sprintf(fmt: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut it = fmt.chars().peekable();
    let mut argi = 0;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let (mut minus, mut plus, mut zero, mut space, mut sharp) =
            (false, false, false, false, false);
        while let Some(&fl) = it.peek() {
            match fl {
                '-' => minus = true,
                '+' => plus = true,
                '0' => zero = true,
                ' ' => space = true,
                '#' => sharp = true,
                _ => break,
            }
            it.next();
        }
        let mut width: Option<usize> = None;
        while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
            width = Some(width.unwrap_or(0) * 10 + d as usize);
            it.next();
        }
        let mut prec: Option<usize> = None;
        if it.peek() == Some(&'.') {
            it.next();
            prec = Some(0);
            while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
                prec = Some(prec.unwrap_or(0) * 10 + d as usize);
                it.next();
            }
        }
        let Some(verb) = it.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(argi) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        argi += 1;
        let body = format_one(verb, arg, plus, space, sharp, prec);
        let body = match body {
            Some(b) => b,
            None => format!("%!{verb}({}={})", go_type(arg), arg.go_string()),
        };
        let n = body.chars().count();
        match width {
            Some(w) if w > n => {
                let pad = w - n;
                if minus {
                    out.push_str(&body);
                    out.push_str(&" ".repeat(pad));
                } else if zero
                    && matches!(arg, Value::Int(_) | Value::Float(_))
                    && matches!(verb, 'd' | 'f' | 'e' | 'g' | 'x' | 'X' | 'v')
                {
                    let (sign, digits) = if body.starts_with(['-', '+']) {
                        body.split_at(1)
                    } else {
                        ("", body.as_str())
                    };
                    out.push_str(sign);
                    out.push_str(&"0".repeat(pad));
                    out.push_str(digits);
                } else {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(&body);
                }
            }
            _ => out.push_str(&body),
        }
    }
    if argi < args.len() {
        out.push_str("%!(EXTRA ");
        out.push_str(
            &args[argi..]
                .iter()
                .map(|a| format!("{}={}", go_type(a), a.go_string()))
                .collect::<Vec<_>>()
                .join(", "),
        );
        out.push(')');
    }
    out
}

pub(crate) fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Nil => "<nil>",
        Value::Bool(_) => "bool",
        Value::Int(_) => "int",
        Value::Float(_) => "float64",
        Value::Str(_) => "string",
        Value::List(_) => "[]interface {}",
        Value::Map(_) => "map[string]interface {}",
        Value::Object(o) => o.type_name(),
    }
}

fn sign(s: String, plus: bool, space: bool) -> String {
    if s.starts_with('-') {
        s
    } else if plus {
        format!("+{s}")
    } else if space {
        format!(" {s}")
    } else {
        s
    }
}

fn format_one(
    verb: char,
    arg: &Value,
    plus: bool,
    space: bool,
    sharp: bool,
    prec: Option<usize>,
) -> Option<String> {
    Some(match (verb, arg) {
        ('T', v) => go_type(v).to_string(),
        ('v', v) => match (v, prec) {
            (Value::Float(x), Some(p)) => format!("{x:.p$}"),
            _ => v.go_string(),
        },
        ('s', Value::Int(_) | Value::Float(_) | Value::Bool(_)) => return None,
        ('s', v) => {
            let s = v.go_string();
            match prec {
                Some(p) => s.chars().take(p).collect(),
                None => s,
            }
        }
        ('q', Value::Str(s)) => {
            if sharp && !s.contains('`') {
                format!("`{s}`")
            } else {
                crate::model::gostr::go_quote(s)
            }
        }
        ('q', Value::Int(i)) => format!("'{}'", char::from_u32(*i as u32)?),
        ('d', Value::Int(i)) => sign(i.to_string(), plus, space),
        ('d', Value::Object(o)) => sign(o.int_value()?.to_string(), plus, space),
        ('x', Value::Int(i)) => format!("{}{:x}", if sharp { "0x" } else { "" }, i),
        ('X', Value::Int(i)) => format!("{}{:X}", if sharp { "0X" } else { "" }, i),
        ('x', Value::Str(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
        ('X', Value::Str(s)) => s.bytes().map(|b| format!("{b:02X}")).collect(),
        ('c', Value::Int(i)) => char::from_u32(*i as u32)?.to_string(),
        ('t', Value::Bool(b)) => b.to_string(),
        ('f' | 'F', Value::Float(x)) => sign(format!("{:.*}", prec.unwrap_or(6), x), plus, space),
        ('e', Value::Float(x)) => sign(go_exp(*x, prec.unwrap_or(6)), plus, space),
        ('g', Value::Float(x)) => sign(
            match prec {
                Some(p) => go_g(*x, p),
                None => Value::Float(*x).go_string(),
            },
            plus,
            space,
        ),
        _ => return None,
    })
}

/// Go's `%.{prec}g`: `prec` significant digits, exponent form when the
/// exponent is below -4 or not below the precision, trailing zeros dropped.
pub(crate) fn go_g(x: f64, prec: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return Value::Float(x).go_string();
    }
    let p = prec.max(1);
    // Round to p significant digits first; the exponent is the rounded one's.
    let e = format!("{:.*e}", p - 1, x);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let trim = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if exp < -4 || exp >= p as i32 {
        let (sgn, digits) = if exp < 0 { ('-', -exp) } else { ('+', exp) };
        format!("{}e{sgn}{digits:02}", trim(mant))
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim(&format!("{x:.decimals$}"))
    }
}

/// `%e`: Rust writes `1.5e3`, Go `1.500000e+03`.
fn go_exp(x: f64, prec: usize) -> String {
    let s = format!("{x:.prec$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let (sgn, d) = match e.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', e),
    };
    format!("{m}e{sgn}{d:0>2}")
}

#[cfg(test)]
mod tests {
    use super::go_g;

    #[test]
    fn g_with_precision_like_go() {
        for (x, p, want) in [
            (1234.5678, 4, "1235"),
            (0.000012, 4, "1.2e-05"),
            (12345678.0, 4, "1.235e+07"),
            (3.0, 4, "3"),
            (0.5, 4, "0.5"),
            (59.999, 4, "60"),
            (123.456, 2, "1.2e+02"),
        ] {
            assert_eq!(go_g(x, p), want, "{x} %.{p}g");
        }
    }
}
