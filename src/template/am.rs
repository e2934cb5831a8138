//! Alertmanager's template data as template values (`template/template.go`):
//! `KV` with `SortedPairs`, `Names`, `Values`, `Remove`; `Pairs`; `Alerts`
//! with `Firing` and `Resolved`; times; and Alertmanager's function map.

use std::sync::Arc;

use jiff::Timestamp;
use regex::Regex;

use super::data::Data;
use super::funcs::go_g;
use super::html::SafeHtml;
use super::value::{Func, FuncMap, Object, Value};

/// A `map[string]string`; kept sorted by key, as Go iterates and prints it.
struct Kv(Vec<(String, String)>);

impl Kv {
    fn new(mut pairs: Vec<(String, String)>) -> Kv {
        pairs.sort();
        pairs.dedup_by(|a, b| a.0 == b.0);
        Kv(pairs)
    }

    /// `SortedPairs`: `alertname` first, then by name.
    fn sorted_pairs(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .0
            .iter()
            .filter(|(k, _)| k == "alertname")
            .cloned()
            .collect();
        out.extend(self.0.iter().filter(|(k, _)| k != "alertname").cloned());
        out
    }
}

fn strings(v: impl IntoIterator<Item = String>) -> Value {
    Value::List(Arc::new(v.into_iter().map(Value::from).collect()))
}

impl Object for Kv {
    fn type_name(&self) -> &'static str {
        "template.KV"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "SortedPairs" => Value::Object(Arc::new(Pairs(self.sorted_pairs()))),
            "Names" => strings(self.sorted_pairs().into_iter().map(|p| p.0)),
            "Values" => strings(self.sorted_pairs().into_iter().map(|p| p.1)),
            // A missing key of a map[string]string is "" (missingkey=zero).
            key => Value::from(
                self.0
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.as_str())
                    .unwrap_or(""),
            ),
        })
    }

    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        if name == super::route_labels::KV_GET {
            let key = args.first().map(Value::go_string).unwrap_or_default();
            let v = self.0.iter().find(|(k, _)| *k == key);
            return Some(Ok(Value::from(v.map(|(_, v)| v.as_str()).unwrap_or(""))));
        }
        (name == "Remove").then(|| {
            let drop: Vec<String> = match args {
                [Value::List(l)] => l.iter().map(Value::go_string).collect(),
                [Value::Nil] => Vec::new(),
                _ => return Err("wrong type for value; expected []string".into()),
            };
            Ok(Value::Object(Arc::new(Kv(self
                .0
                .iter()
                .filter(|(k, _)| !drop.contains(k))
                .cloned()
                .collect()))))
        })
    }

    /// Go prints a map as `map[k:v k2:v2]` (Alertmanager 0.25).
    fn display(&self) -> String {
        format!(
            "map[{}]",
            self.0
                .iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }

    fn truthy(&self) -> bool {
        !self.0.is_empty()
    }

    fn items(&self) -> Option<Vec<Value>> {
        Some(
            self.0
                .iter()
                .map(|(_, v)| Value::from(v.as_str()))
                .collect(),
        )
    }
}

/// `template.Pairs`.
struct Pairs(Vec<(String, String)>);

impl Object for Pairs {
    fn type_name(&self) -> &'static str {
        "template.Pairs"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Names" => Some(strings(self.0.iter().map(|p| p.0.clone()))),
            "Values" => Some(strings(self.0.iter().map(|p| p.1.clone()))),
            _ => None,
        }
    }

    fn display(&self) -> String {
        format!(
            "[{}]",
            self.0
                .iter()
                .map(|(k, v)| format!("{{{k} {v}}}"))
                .collect::<Vec<_>>()
                .join(" ")
        )
    }

    fn truthy(&self) -> bool {
        !self.0.is_empty()
    }

    fn items(&self) -> Option<Vec<Value>> {
        Some(
            self.0
                .iter()
                .map(|(k, v)| Value::Object(Arc::new(Pair(k.clone(), v.clone()))))
                .collect(),
        )
    }
}

struct Pair(String, String);

impl Object for Pair {
    fn type_name(&self) -> &'static str {
        "template.Pair"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Name" => Some(Value::from(self.0.as_str())),
            "Value" => Some(Value::from(self.1.as_str())),
            _ => None,
        }
    }

    fn display(&self) -> String {
        format!("{{{} {}}}", self.0, self.1)
    }
}

/// One alert of the template data.
struct AlertObj {
    status: String,
    labels: Value,
    annotations: Value,
    starts_at: Timestamp,
    ends_at: Timestamp,
    generator_url: String,
    fingerprint: String,
}

impl Object for AlertObj {
    fn type_name(&self) -> &'static str {
        "template.Alert"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Status" => Value::from(self.status.as_str()),
            "Labels" => self.labels.clone(),
            "Annotations" => self.annotations.clone(),
            "StartsAt" => Value::Object(Arc::new(Time::utc(self.starts_at))),
            "EndsAt" => Value::Object(Arc::new(Time::utc(self.ends_at))),
            "GeneratorURL" => Value::from(self.generator_url.as_str()),
            "Fingerprint" => Value::from(self.fingerprint.as_str()),
            _ => return None,
        })
    }

    fn display(&self) -> String {
        format!(
            "{{{} {} {} {} {} {} {}}}",
            self.status,
            self.labels.go_string(),
            self.annotations.go_string(),
            Time::utc(self.starts_at).display(),
            Time::utc(self.ends_at).display(),
            self.generator_url,
            self.fingerprint
        )
    }
}

/// `template.Alerts` (and the `[]Alert` its methods return).
struct Alerts(Vec<Value>);

impl Alerts {
    fn with_status(&self, status: &str) -> Value {
        let keep = self.0.iter().filter(|a| matches!(a, Value::Object(o) if o.field("Status").is_some_and(|s| s.go_string() == status))).cloned().collect();
        Value::Object(Arc::new(Alerts(keep)))
    }
}

impl Object for Alerts {
    fn type_name(&self) -> &'static str {
        "template.Alerts"
    }

    fn field(&self, name: &str) -> Option<Value> {
        match name {
            "Firing" => Some(self.with_status("firing")),
            "Resolved" => Some(self.with_status("resolved")),
            _ => None,
        }
    }

    fn display(&self) -> String {
        format!(
            "[{}]",
            self.0
                .iter()
                .map(Value::go_string)
                .collect::<Vec<_>>()
                .join(" ")
        )
    }

    fn truthy(&self) -> bool {
        !self.0.is_empty()
    }

    fn items(&self) -> Option<Vec<Value>> {
        Some(self.0.clone())
    }
}

/// A `time.Time`: an instant and the zone it prints in (UTC unless `tz`
/// moved it).
struct Time(jiff::ZonedDateTime);

impl Time {
    fn utc(t: Timestamp) -> Time {
        Time(jiff::ZonedDateTime::new(t, jiff::tz::TimeZone::UTC))
    }
}

impl Object for Time {
    fn type_name(&self) -> &'static str {
        "time.Time"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Unix" => Value::Int(self.0.timestamp().as_second()),
            "UnixMilli" => Value::Int(self.0.timestamp().as_millisecond()),
            // Herald runs in UTC as Alertmanager's container image does.
            "UTC" | "Local" => Value::Object(Arc::new(Time::utc(self.0.timestamp()))),
            "IsZero" => Value::Bool(self.0.timestamp() == crate::model::GO_ZERO_TIME),
            "String" => Value::from(self.display()),
            _ => return None,
        })
    }

    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        (name == "Format").then(|| match args {
            [Value::Str(layout)] => Ok(Value::from(go_format(&self.0, layout))),
            _ => Err("Format takes a layout string".into()),
        })
    }

    /// Go's `Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`.
    fn display(&self) -> String {
        go_format(&self.0, "2006-01-02 15:04:05.999999999 -0700 MST")
    }

    fn timestamp(&self) -> Option<Timestamp> {
        Some(self.0.timestamp())
    }

    fn zoned(&self) -> Option<jiff::ZonedDateTime> {
        Some(self.0.clone())
    }
}

/// A `time.Duration` (what `since` returns).
struct GoDuration(std::time::Duration);

impl Object for GoDuration {
    fn type_name(&self) -> &'static str {
        "time.Duration"
    }

    fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "Seconds" => Value::Float(self.0.as_secs_f64()),
            "Minutes" => Value::Float(self.0.as_secs_f64() / 60.0),
            "Hours" => Value::Float(self.0.as_secs_f64() / 3600.0),
            "String" => Value::from(self.display()),
            _ => return None,
        })
    }

    fn display(&self) -> String {
        crate::duration::format_go_duration(self.0)
    }

    fn seconds(&self) -> Option<f64> {
        Some(self.0.as_secs_f64())
    }
}

/// Prometheus' `humanizeDuration`, which Alertmanager adopted: seconds as
/// `1d 2h 3m 4s`, or with an SI prefix below one second.
fn humanize_duration(v: f64) -> String {
    if v.is_nan() || v.is_infinite() {
        return Value::Float(v).go_string();
    }
    if v == 0.0 {
        return "0s".into();
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let v = v.abs();
        let d = v as i64;
        let (days, hours, minutes, seconds) = (d / 86_400, (d / 3600) % 24, (d / 60) % 60, d % 60);
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", go_g(v, 4))
        };
    }
    let mut v = v;
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", go_g(v, 4))
}

/// Formats a time with a Go layout string (the reference time
/// `Mon Jan 2 15:04:05 MST 2006`), for the tokens templates use.
fn go_format(t: &jiff::ZonedDateTime, layout: &str) -> String {
    let dt = t.datetime();
    let offset = t.offset().seconds();
    let (sign, abs) = if offset < 0 {
        ('-', -offset)
    } else {
        ('+', offset)
    };
    let (oh, om) = (abs / 3600, (abs / 60) % 60);
    let colon = format!("{sign}{oh:02}:{om:02}");
    let plain = format!("{sign}{oh:02}{om:02}");
    let zulu = |s: &str| {
        if offset == 0 {
            "Z".to_string()
        } else {
            s.to_string()
        }
    };
    let abbrev = t
        .time_zone()
        .to_offset_info(t.timestamp())
        .abbreviation()
        .to_string();
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let month = MONTHS[dt.month() as usize - 1];
    let day = DAYS[dt.weekday().to_sunday_zero_offset() as usize];
    let nanos = dt.subsec_nanosecond();
    let tokens: [(&str, String); 24] = [
        ("January", month.to_string()),
        ("Monday", day.to_string()),
        ("2006", format!("{:04}", dt.year())),
        ("-07:00", colon.clone()),
        ("Z07:00", zulu(&colon)),
        ("-0700", plain.clone()),
        ("Z0700", zulu(&plain)),
        ("Jan", month[..3].to_string()),
        ("Mon", day[..3].to_string()),
        ("MST", abbrev),
        (".000000000", format!(".{nanos:09}")),
        (".999999999", trimmed_frac(nanos, 9)),
        (".000000", format!(".{:06}", nanos / 1000)),
        (".999999", trimmed_frac(nanos / 1000, 6)),
        (".000", format!(".{:03}", nanos / 1_000_000)),
        (".999", trimmed_frac(nanos / 1_000_000, 3)),
        ("01", format!("{:02}", dt.month())),
        ("02", format!("{:02}", dt.day())),
        ("15", format!("{:02}", dt.hour())),
        ("03", format!("{:02}", (dt.hour() + 11) % 12 + 1)),
        ("04", format!("{:02}", dt.minute())),
        ("05", format!("{:02}", dt.second())),
        ("06", format!("{:02}", dt.year() % 100)),
        (
            "PM",
            if dt.hour() >= 12 {
                "PM".into()
            } else {
                "AM".into()
            },
        ),
    ];
    let mut out = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        for (tok, val) in &tokens {
            if let Some(r) = rest.strip_prefix(tok) {
                out.push_str(val);
                rest = r;
                continue 'outer;
            }
        }
        // Single-digit forms: "1" month, "2" day, "3" hour, "4" minute, "5" second.
        let c = rest.chars().next().unwrap_or(' ');
        let single = match c {
            '1' => Some(dt.month().to_string()),
            '2' => Some(dt.day().to_string()),
            '3' => Some(((dt.hour() + 11) % 12 + 1).to_string()),
            '4' => Some(dt.minute().to_string()),
            '5' => Some(dt.second().to_string()),
            _ => None,
        };
        out.push_str(&single.unwrap_or_else(|| c.to_string()));
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Parses a time written in a Go layout (`toDate`), by translating the
/// layout's tokens to strftime directives. A time without an offset is UTC,
/// as Go's `time.Parse` reads it.
fn go_parse(layout: &str, value: &str) -> Result<jiff::ZonedDateTime, String> {
    const TOKENS: [(&str, &str); 27] = [
        ("January", "%B"),
        ("Monday", "%A"),
        ("2006", "%Y"),
        ("Z07:00", "%:z"),
        ("-07:00", "%:z"),
        ("Z0700", "%z"),
        ("-0700", "%z"),
        ("Jan", "%b"),
        ("Mon", "%a"),
        ("MST", "%Z"),
        (".000000000", "%.f"),
        (".999999999", "%.f"),
        (".000000", "%.f"),
        (".999999", "%.f"),
        (".000", "%.f"),
        (".999", "%.f"),
        ("01", "%m"),
        ("02", "%d"),
        ("_2", "%e"),
        ("15", "%H"),
        ("03", "%I"),
        ("04", "%M"),
        ("05", "%S"),
        ("06", "%y"),
        ("PM", "%p"),
        ("pm", "%P"),
        ("%", "%%"),
    ];
    let mut fmt = String::new();
    let mut rest = layout;
    'outer: while let Some(c) = rest.chars().next() {
        for (tok, directive) in TOKENS {
            if let Some(r) = rest.strip_prefix(tok) {
                fmt.push_str(directive);
                rest = r;
                continue 'outer;
            }
        }
        match c {
            '1' => fmt.push_str("%-m"),
            '2' => fmt.push_str("%-d"),
            '3' => fmt.push_str("%-I"),
            '4' => fmt.push_str("%-M"),
            '5' => fmt.push_str("%-S"),
            _ => fmt.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    // Go writes UTC as "Z" where the layout says Z07:00.
    let (fmt, value) = if layout.contains("Z07") && value.ends_with('Z') {
        (
            fmt.replace("%:z", "").replace("%z", ""),
            value.trim_end_matches('Z'),
        )
    } else {
        (fmt, value)
    };
    let tm = jiff::fmt::strtime::parse(&fmt, value)
        .map_err(|e| format!("parsing time {value:?} as {layout:?}: {e}"))?;
    if tm.offset().is_some() {
        let ts = tm.to_timestamp().map_err(|e| e.to_string())?;
        let offset = tm.offset().unwrap_or(jiff::tz::Offset::UTC);
        return Ok(jiff::ZonedDateTime::new(
            ts,
            jiff::tz::TimeZone::fixed(offset),
        ));
    }
    let dt = tm
        .to_datetime()
        .map_err(|e| format!("parsing time {value:?}: {e}"))?;
    dt.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map_err(|e| e.to_string())
}

fn trimmed_frac(v: i32, digits: usize) -> String {
    if v == 0 {
        return String::new();
    }
    let s = format!("{v:0digits$}");
    format!(".{}", s.trim_end_matches('0'))
}

fn kv(pairs: &crate::model::LabelSet) -> Value {
    Value::Object(Arc::new(Kv::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )))
}

impl Data {
    /// The template data as a template value (dot).
    pub(crate) fn to_value(&self) -> Value {
        let alerts: Vec<Value> = self
            .alerts
            .iter()
            .map(|a| {
                Value::Object(Arc::new(AlertObj {
                    status: a.status.to_string(),
                    labels: kv(&a.labels),
                    annotations: kv(&a.annotations),
                    starts_at: a.starts_at,
                    ends_at: a.ends_at,
                    generator_url: a.generator_url.to_string(),
                    fingerprint: a.fingerprint.clone(),
                }))
            })
            .collect();
        let mut m = std::collections::BTreeMap::new();
        m.insert("Receiver".to_string(), Value::from(self.receiver.as_str()));
        m.insert("Status".to_string(), Value::from(self.status));
        m.insert(
            "Alerts".to_string(),
            Value::Object(Arc::new(Alerts(alerts))),
        );
        m.insert("GroupLabels".to_string(), kv(&self.group_labels));
        m.insert("CommonLabels".to_string(), kv(&self.common_labels));
        m.insert(
            "CommonAnnotations".to_string(),
            kv(&self.common_annotations),
        );
        m.insert("RouteLabels".to_string(), kv(&self.route_labels));
        m.insert(
            "NotificationReason".to_string(),
            Value::from(
                self.notification_reason
                    .unwrap_or(super::data::REASON_UNKNOWN),
            ),
        );
        m.insert(
            "ExternalURL".to_string(),
            Value::from(self.external_url.as_str()),
        );
        Value::Object(Arc::new(DataObj(m)))
    }
}

/// The `template.Data` struct: unknown fields are errors, as for a Go struct.
struct DataObj(std::collections::BTreeMap<String, Value>);

impl Object for DataObj {
    fn type_name(&self) -> &'static str {
        "*template.Data"
    }

    fn field(&self, name: &str) -> Option<Value> {
        self.0.get(name).cloned()
    }

    fn display(&self) -> String {
        format!(
            "{{{}}}",
            self.0
                .values()
                .map(Value::go_string)
                .collect::<Vec<_>>()
                .join(" ")
        )
    }
}

fn str_arg(v: &Value) -> Result<String, String> {
    match v {
        Value::Str(s) => Ok(s.to_string()),
        other => Err(format!(
            "wrong type for value; expected string; got {}",
            other.go_string()
        )),
    }
}

fn f(func: impl Fn(&[Value]) -> Result<Value, String> + Send + Sync + 'static) -> Func {
    Arc::new(func)
}

/// `cases.Title(language.AmericanEnglish)`: each word's first letter upper
/// case, the rest lower case.
fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphanumeric() || c == '\'' {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}

/// Alertmanager's function map (`template.DefaultFuncs`).
pub(crate) fn add_alertmanager_funcs(m: &mut FuncMap) {
    m.insert(
        super::route_labels::FUNC,
        super::route_labels::placeholder(),
    );
    m.insert(
        "toUpper",
        f(|a| {
            Ok(Value::from(
                str_arg(a.first().unwrap_or(&Value::Nil))?.to_uppercase(),
            ))
        }),
    );
    m.insert(
        "toLower",
        f(|a| {
            Ok(Value::from(
                str_arg(a.first().unwrap_or(&Value::Nil))?.to_lowercase(),
            ))
        }),
    );
    m.insert(
        "title",
        f(|a| {
            Ok(Value::from(title(&str_arg(
                a.first().unwrap_or(&Value::Nil),
            )?)))
        }),
    );
    m.insert(
        "trimSpace",
        f(|a| {
            Ok(Value::from(
                str_arg(a.first().unwrap_or(&Value::Nil))?
                    .trim()
                    .to_string(),
            ))
        }),
    );
    m.insert(
        "join",
        f(|a| match a {
            [sep, Value::List(l)] => Ok(Value::from(
                l.iter()
                    .map(Value::go_string)
                    .collect::<Vec<_>>()
                    .join(&str_arg(sep)?),
            )),
            _ => Err("join takes a separator and a list of strings".into()),
        }),
    );
    m.insert(
        "match",
        f(|a| match a {
            [p, t] => Regex::new(&str_arg(p)?)
                .map(|re| Value::Bool(re.is_match(&t.go_string())))
                .map_err(|e| e.to_string()),
            _ => Err("match takes a pattern and a string".into()),
        }),
    );
    m.insert(
        "reReplaceAll",
        f(|a| match a {
            [p, r, t] => {
                let re = Regex::new(&str_arg(p)?).map_err(|e| e.to_string())?;
                Ok(Value::from(
                    re.replace_all(&str_arg(t)?, str_arg(r)?.as_str())
                        .into_owned(),
                ))
            }
            _ => Err("reReplaceAll takes a pattern, a replacement and a string".into()),
        }),
    );
    m.insert(
        "safeHtml",
        f(|a| {
            Ok(Value::Object(Arc::new(SafeHtml(
                a.first().map(Value::go_string).unwrap_or_default(),
            ))))
        }),
    );
    m.insert(
        "safeUrl",
        f(|a| Ok(a.first().cloned().unwrap_or(Value::Nil))),
    );
    m.insert(
        "urlUnescape",
        f(|a| {
            let s = str_arg(a.first().unwrap_or(&Value::Nil))?;
            Ok(Value::from(
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default(),
            ))
        }),
    );
    m.insert(
        "now",
        f(|_| Ok(Value::Object(Arc::new(Time::utc(Timestamp::now()))))),
    );
    m.insert(
        "since",
        f(|a| match a {
            [Value::Object(o)] => o
                .timestamp()
                .map(|t| {
                    let d = Timestamp::now().duration_since(t);
                    Value::Object(Arc::new(GoDuration(
                        std::time::Duration::try_from(d).unwrap_or_default(),
                    )))
                })
                .ok_or_else(|| "since takes a time".to_string()),
            _ => Err("since takes a time".into()),
        }),
    );
    m.insert(
        "date",
        f(|a| match a {
            [layout, Value::Object(o)] => o
                .zoned()
                .map(|t| Value::from(go_format(&t, &layout.go_string())))
                .ok_or_else(|| "date takes a layout and a time".to_string()),
            _ => Err("date takes a layout and a time".into()),
        }),
    );
    m.insert(
        "tz",
        f(|a| match a {
            [Value::Str(name), Value::Object(o)] => {
                let t = o
                    .timestamp()
                    .ok_or_else(|| "tz takes a zone name and a time".to_string())?;
                let zone = match name.as_ref() {
                    "" | "UTC" | "Local" => jiff::tz::TimeZone::UTC,
                    n => {
                        jiff::tz::TimeZone::get(n).map_err(|_| format!("unknown time zone {n}"))?
                    }
                };
                Ok(Value::Object(Arc::new(Time(jiff::ZonedDateTime::new(
                    t, zone,
                )))))
            }
            _ => Err("tz takes a zone name and a time".into()),
        }),
    );
    m.insert(
        "toDate",
        f(|a| match a {
            [Value::Str(layout), Value::Str(value)] => {
                go_parse(layout, value).map(|t| Value::Object(Arc::new(Time(t))))
            }
            _ => Err("toDate takes a layout and a string".into()),
        }),
    );
    m.insert(
        "humanizeDuration",
        f(|a| {
            let secs = match a {
                [Value::Int(i)] => *i as f64,
                [Value::Float(x)] => *x,
                [Value::Str(s)] => s.parse::<f64>().map_err(|e| e.to_string())?,
                [Value::Object(o)] => o
                    .seconds()
                    .ok_or("humanizeDuration takes a number or a duration")?,
                _ => return Err("humanizeDuration takes a number or a duration".into()),
            };
            Ok(Value::from(humanize_duration(secs)))
        }),
    );
    m.insert("stringSlice", f(|a| Ok(Value::List(Arc::new(a.to_vec())))));
    m.insert("list", f(|a| Ok(Value::List(Arc::new(a.to_vec())))));
    m.insert(
        "append",
        f(|a| match a.split_first() {
            Some((Value::List(l), rest)) => Ok(Value::List(Arc::new(
                l.iter().chain(rest).cloned().collect(),
            ))),
            _ => Err("append takes a list first".into()),
        }),
    );
    m.insert(
        "dict",
        f(|a| {
            if a.len() % 2 != 0 {
                return Err("dict takes pairs of keys and values".into());
            }
            let mut d = std::collections::BTreeMap::new();
            for p in a.chunks(2) {
                d.insert(str_arg(&p[0])?, p[1].clone());
            }
            Ok(Value::Map(Arc::new(d)))
        }),
    );
    m.insert(
        "toJson",
        f(|a| {
            fn json(v: &Value) -> serde_json::Value {
                match v {
                    Value::Nil => serde_json::Value::Null,
                    Value::Bool(b) => (*b).into(),
                    Value::Int(i) => (*i).into(),
                    Value::Float(x) => serde_json::Number::from_f64(*x)
                        .map(serde_json::Value::Number)
                        .unwrap_or(serde_json::Value::Null),
                    Value::Str(s) => s.as_ref().into(),
                    Value::List(l) => l.iter().map(json).collect(),
                    Value::Map(m) => m
                        .iter()
                        .map(|(k, v)| (k.clone(), json(v)))
                        .collect::<serde_json::Map<_, _>>()
                        .into(),
                    Value::Object(o) => o.display().into(),
                }
            }
            Ok(Value::from(
                serde_json::to_string(&json(a.first().unwrap_or(&Value::Nil))).unwrap_or_default(),
            ))
        }),
    );
}

/// The data `amtool template render` uses when given no data file, so the
/// two renderings compare one to one. `now` stands for its `time.Now()`.
pub fn example_data(now: Timestamp) -> Value {
    let kvp = |p: &[(&str, &str)]| {
        Value::Object(Arc::new(Kv::new(
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )))
    };
    let alert = |labels: &[(&str, &str)], annotations: &[(&str, &str)], ago: i64, fp: &str| {
        Value::Object(Arc::new(AlertObj {
            status: "alertstatus".into(),
            labels: kvp(labels),
            annotations: kvp(annotations),
            starts_at: now
                .checked_sub(jiff::SignedDuration::from_mins(ago))
                .unwrap_or(now),
            ends_at: now,
            generator_url: "https://generatorurl.com".into(),
            fingerprint: fp.into(),
        }))
    };
    let common_l = [
        ("commonlabelkey1", "commonlabelvalue1"),
        ("commonlabelkey2", "commonlabelvalue2"),
    ];
    let common_a = [
        ("commonannotationkey1", "commonannotationvalue1"),
        ("commonannotationkey2", "commonannotationvalue2"),
    ];
    let alerts = vec![
        alert(
            &[
                ("label1", "value1"),
                ("label2", "value2"),
                ("instance", "foo.bar:1234"),
                common_l[0],
                common_l[1],
            ],
            &[
                ("annotation1", "value1"),
                ("annotation2", "value2"),
                common_a[0],
                common_a[1],
            ],
            5,
            "fingerprint1",
        ),
        alert(
            &[("foo", "bar"), ("baz", "qux"), common_l[0], common_l[1]],
            &[("aaa", "bbb"), ("ccc", "ddd"), common_a[0], common_a[1]],
            10,
            "fingerprint2",
        ),
    ];
    let mut m = std::collections::BTreeMap::new();
    m.insert("Receiver".to_string(), Value::from("receiver"));
    m.insert("Status".to_string(), Value::from("alertstatus"));
    m.insert(
        "Alerts".to_string(),
        Value::Object(Arc::new(Alerts(alerts))),
    );
    m.insert(
        "GroupLabels".to_string(),
        kvp(&[
            ("grouplabelkey1", "grouplabelvalue1"),
            ("grouplabelkey2", "grouplabelvalue2"),
        ]),
    );
    m.insert("CommonLabels".to_string(), kvp(&common_l));
    m.insert("CommonAnnotations".to_string(), kvp(&common_a));
    m.insert("RouteLabels".to_string(), kvp(&[]));
    m.insert("NotificationReason".to_string(), Value::from(""));
    m.insert(
        "ExternalURL".to_string(),
        Value::from("https://example.com"),
    );
    Value::Object(Arc::new(DataObj(m)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::exec::{is_func, ExecError, Mode, Set};
    use crate::template::{funcs, parse};

    /// Runs `src` (which must parse) with Go's builtins and Alertmanager's
    /// function map, straight on the engine below `Templates`.
    fn render(src: &str) -> Result<String, ExecError> {
        let mut fm = FuncMap::new();
        funcs::add_builtins(&mut fm);
        add_alertmanager_funcs(&mut fm);
        let trees = parse::parse("t", src, &|n| is_func(&fm, n)).expect("parses");
        Set {
            trees: &trees,
            extra: None,
            funcs: &fm,
        }
        .execute("t", &Value::Nil, Mode::Text)
    }

    #[test]
    fn go_time_layouts() {
        let t: Timestamp = "2024-03-05T14:07:09.120Z".parse().unwrap();
        assert_eq!(Time::utc(t).display(), "2024-03-05 14:07:09.12 +0000 UTC");
        let t = Time::utc(t).0;
        assert_eq!(
            go_format(&t, "2006-01-02T15:04:05Z07:00"),
            "2024-03-05T14:07:09Z"
        );
        assert_eq!(go_format(&t, "Mon Jan 2 03:04PM"), "Tue Mar 5 02:07PM");
        assert_eq!(
            go_format(&t, "02.01.06 15:04:05.000"),
            "05.03.24 14:07:09.120"
        );
    }

    #[test]
    fn tz_and_to_date() {
        assert_eq!(
            render(
                r#"{{ (toDate "2006-01-02 15:04" "2024-07-01 12:30") | tz "Europe/Paris" | date "15:04 MST -07:00" }}|{{ (toDate "2006-01-02T15:04:05Z07:00" "2024-01-02T03:04:05Z").Unix }}|{{ (toDate "Jan 2 2006 3:04PM -0700" "Feb 9 2024 4:05PM +0130").Format "2006-01-02 15:04 -0700" }}"#,
            )
            .unwrap(),
            "14:30 CEST +02:00|1704164645|2024-02-09 16:05 +0130"
        );
        assert!(render(r#"{{ now | tz "Nowhere/Atlantis" }}"#)
            .unwrap_err()
            .to_string()
            .contains("unknown time zone Nowhere/Atlantis"));
    }

    #[test]
    fn humanize_duration_like_prometheus() {
        for (v, s) in [
            (0.0, "0s"),
            (1.0, "1s"),
            (1.5, "1.5s"),
            (61.0, "1m 1s"),
            (3661.0, "1h 1m 1s"),
            (90061.0, "1d 1h 1m 1s"),
            (0.5, "500ms"),
            (0.000_25, "250us"),
            (-61.0, "-1m 1s"),
        ] {
            assert_eq!(humanize_duration(v), s, "{v}");
        }
    }

    #[test]
    fn time_functions() {
        assert_eq!(
            render(r#"{{ date "2006-01-02" now | len }} {{ humanizeDuration 3725 }} {{ (since now).Seconds | printf "%.0f" }}"#)
                .unwrap(),
            "10 1h 2m 5s 0"
        );
    }

    #[test]
    fn title_like_go_cases() {
        assert_eq!(title("hello wORLD it's-me"), "Hello World It's-Me");
    }
}

/// `template.Data` as JSON (the webhook payload's shape), as amtool's
/// `--template.data` reads it.
#[derive(serde::Deserialize)]
struct JsonData {
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    alerts: Vec<JsonAlert>,
    #[serde(rename = "groupLabels", default)]
    group_labels: std::collections::BTreeMap<String, String>,
    #[serde(rename = "commonLabels", default)]
    common_labels: std::collections::BTreeMap<String, String>,
    #[serde(rename = "commonAnnotations", default)]
    common_annotations: std::collections::BTreeMap<String, String>,
    #[serde(rename = "routeLabels", default)]
    route_labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    notification_reason: String,
    #[serde(rename = "externalURL", default)]
    external_url: String,
}

#[derive(serde::Deserialize)]
struct JsonAlert {
    #[serde(default)]
    status: String,
    #[serde(default)]
    labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
    #[serde(rename = "startsAt", default)]
    starts_at: Option<Timestamp>,
    #[serde(rename = "endsAt", default)]
    ends_at: Option<Timestamp>,
    #[serde(rename = "generatorURL", default)]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

fn kv_map(m: std::collections::BTreeMap<String, String>) -> Value {
    Value::Object(Arc::new(Kv::new(m.into_iter().collect())))
}

/// Parses template data written as JSON.
pub fn data_from_json(json: &str) -> Result<Value, serde_json::Error> {
    let d: JsonData = serde_json::from_str(json)?;
    let zero = crate::model::GO_ZERO_TIME;
    let alerts = d
        .alerts
        .into_iter()
        .map(|a| {
            Value::Object(Arc::new(AlertObj {
                status: a.status,
                labels: kv_map(a.labels),
                annotations: kv_map(a.annotations),
                starts_at: a.starts_at.unwrap_or(zero),
                ends_at: a.ends_at.unwrap_or(zero),
                generator_url: a.generator_url,
                fingerprint: a.fingerprint,
            }))
        })
        .collect();
    let mut m = std::collections::BTreeMap::new();
    m.insert("Receiver".to_string(), Value::from(d.receiver));
    m.insert("Status".to_string(), Value::from(d.status));
    m.insert(
        "Alerts".to_string(),
        Value::Object(Arc::new(Alerts(alerts))),
    );
    m.insert("GroupLabels".to_string(), kv_map(d.group_labels));
    m.insert("CommonLabels".to_string(), kv_map(d.common_labels));
    m.insert(
        "CommonAnnotations".to_string(),
        kv_map(d.common_annotations),
    );
    m.insert("RouteLabels".to_string(), kv_map(d.route_labels));
    m.insert(
        "NotificationReason".to_string(),
        Value::from(d.notification_reason),
    );
    m.insert("ExternalURL".to_string(), Value::from(d.external_url));
    Ok(Value::Object(Arc::new(DataObj(m))))
}
