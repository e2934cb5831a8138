//! Alertmanager's template data as template values (`template/template.go`):
//! `KV` with `SortedPairs`, `Names`, `Values`, `Remove`; `Pairs`; `Alerts`
//! with `Firing` and `Resolved`; times; and Alertmanager's function map.

use std::sync::Arc;

use jiff::Timestamp;
use regex::Regex;

use super::data::Data;
use super::funcs::go_g;
use super::html::SafeHtml;
use super::value::{arg_error, json_string, json_value, Func, FuncMap, Object, Value};

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

/// `template.Strings` (0.34): a `[]string` with a `Join` method, what
/// `Names` and `Values` return.
struct Strings(Vec<String>);

fn strings(v: impl IntoIterator<Item = String>) -> Value {
    Value::Object(Arc::new(Strings(v.into_iter().collect())))
}

impl Object for Strings {
    fn type_name(&self) -> &'static str {
        "template.Strings"
    }

    fn field(&self, _name: &str) -> Option<Value> {
        None
    }

    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        (name == "Join").then(|| match args {
            [sep] => Ok(Value::from(self.0.join(&str_arg(sep)?))),
            _ => Err(arg_error(format!(
                "wrong number of args for Join: want 1 got {}",
                args.len()
            ))),
        })
    }

    fn display(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }

    fn truthy(&self) -> bool {
        !self.0.is_empty()
    }

    fn items(&self) -> Option<Vec<Value>> {
        Some(self.0.iter().map(|s| Value::from(s.as_str())).collect())
    }

    fn to_json(&self) -> Result<String, String> {
        Ok(format!(
            "[{}]",
            self.0
                .iter()
                .map(|s| json_string(s))
                .collect::<Vec<_>>()
                .join(",")
        ))
    }
}

/// The strings of a `[]string` argument: a list of strings or `Strings`.
fn string_list(v: &Value) -> Option<Vec<String>> {
    let items = match v {
        Value::List(l) => l.to_vec(),
        Value::Object(o) if o.type_name() == "template.Strings" => o.items()?,
        Value::Nil => Vec::new(),
        _ => return None,
    };
    items
        .into_iter()
        .map(|i| match i {
            Value::Str(s) => Some(s.to_string()),
            _ => None,
        })
        .collect()
}

/// Go's `Pairs.String()` (and so `KV.String()`): `k=v, k2=v2`.
fn pairs_string(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
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
            "String" => Value::from(self.display()),
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
                [v] => string_list(v).ok_or_else(|| {
                    arg_error(format!(
                        "wrong type for value; expected []string; got {}",
                        super::funcs::go_type(v)
                    ))
                })?,
                _ => {
                    return Err(arg_error(format!(
                        "wrong number of args for Remove: want 1 got {}",
                        args.len()
                    )))
                }
            };
            Ok(Value::Object(Arc::new(Kv(self
                .0
                .iter()
                .filter(|(k, _)| !drop.contains(k))
                .cloned()
                .collect()))))
        })
    }

    /// Go's `KV.String()`: the sorted pairs, `alertname` first.
    fn display(&self) -> String {
        pairs_string(&self.sorted_pairs())
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

    /// A Go map ranges in key order (plain sort: `alertname` is not first).
    fn entries(&self) -> Option<Vec<(Value, Value)>> {
        Some(
            self.0
                .iter()
                .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())))
                .collect(),
        )
    }

    fn to_json(&self) -> Result<String, String> {
        Ok(format!(
            "{{{}}}",
            self.0
                .iter()
                .map(|(k, v)| format!("{}:{}", json_string(k), json_string(v)))
                .collect::<Vec<_>>()
                .join(",")
        ))
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
            "String" => Some(Value::from(self.display())),
            _ => None,
        }
    }

    fn display(&self) -> String {
        pairs_string(&self.0)
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

    fn to_json(&self) -> Result<String, String> {
        Ok(format!(
            "[{}]",
            self.0
                .iter()
                .map(|(k, v)| pair_json(k, v))
                .collect::<Vec<_>>()
                .join(",")
        ))
    }
}

struct Pair(String, String);

/// A `template.Pair` has no JSON tags: its fields keep their Go names.
fn pair_json(k: &str, v: &str) -> String {
    format!(
        "{{\"Name\":{},\"Value\":{}}}",
        json_string(k),
        json_string(v)
    )
}

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

    fn to_json(&self) -> Result<String, String> {
        Ok(pair_json(&self.0, &self.1))
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

    fn to_json(&self) -> Result<String, String> {
        Ok(format!(
            "{{\"status\":{},\"labels\":{},\"annotations\":{},\"startsAt\":{},\"endsAt\":{},\"generatorURL\":{},\"fingerprint\":{}}}",
            json_string(&self.status),
            json_value(&self.labels)?,
            json_value(&self.annotations)?,
            Time::utc(self.starts_at).to_json()?,
            Time::utc(self.ends_at).to_json()?,
            json_string(&self.generator_url),
            json_string(&self.fingerprint),
        ))
    }
}

/// `template.Alerts`, and the `[]Alert` its methods return (the second
/// field: whether it is that plain slice).
struct Alerts(Vec<Value>, bool);

impl Alerts {
    fn with_status(&self, status: &str) -> Value {
        let keep = self.0.iter().filter(|a| matches!(a, Value::Object(o) if o.field("Status").is_some_and(|s| s.go_string() == status))).cloned().collect();
        Value::Object(Arc::new(Alerts(keep, true)))
    }
}

impl Object for Alerts {
    fn type_name(&self) -> &'static str {
        if self.1 {
            "[]template.Alert"
        } else {
            "template.Alerts"
        }
    }

    fn field(&self, name: &str) -> Option<Value> {
        if self.1 {
            return None;
        }
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

    fn to_json(&self) -> Result<String, String> {
        let items: Result<Vec<String>, String> = self.0.iter().map(json_value).collect();
        Ok(format!("[{}]", items?.join(",")))
    }
}

/// A `time.Time`: an instant and the zone it prints in (UTC unless `tz`
/// or `In` moved it).
struct Time(jiff::ZonedDateTime);

impl Time {
    fn utc(t: Timestamp) -> Time {
        Time(jiff::ZonedDateTime::new(t, jiff::tz::TimeZone::UTC))
    }

    fn value(t: jiff::ZonedDateTime) -> Value {
        Value::Object(Arc::new(Time(t)))
    }

    /// Nanoseconds since Go's zero time (year 1), the base `Truncate` and
    /// `Round` measure from.
    fn since_go_zero(&self) -> i128 {
        self.0.timestamp().as_nanosecond() - crate::model::GO_ZERO_TIME.as_nanosecond()
    }

    fn with_since_go_zero(&self, n: i128) -> Result<Value, String> {
        let ts = Timestamp::from_nanosecond(n + crate::model::GO_ZERO_TIME.as_nanosecond())
            .map_err(|e| e.to_string())?;
        Ok(Time::value(jiff::ZonedDateTime::new(
            ts,
            self.0.time_zone().clone(),
        )))
    }

    /// Go's `Time.Add`, which saturates instead of failing.
    fn add(&self, nanos: i64) -> Result<Value, String> {
        let d = jiff::SignedDuration::from_nanos(nanos);
        self.0
            .checked_add(d)
            .map(Time::value)
            .map_err(|e| e.to_string())
    }

    /// Go's `Time.AddDate`: years and months move the civil date, which is
    /// then normalised (October 31 plus one month is December 1).
    fn add_date(&self, years: i64, months: i64, days: i64) -> Result<Value, String> {
        let dt = self.0.datetime();
        let total = i64::from(dt.year()) * 12 + i64::from(dt.month()) - 1 + years * 12 + months;
        let (y, m) = (total.div_euclid(12), total.rem_euclid(12) + 1);
        let first = jiff::civil::Date::new(
            i16::try_from(y).map_err(|_| "year out of range".to_string())?,
            m as i8,
            1,
        )
        .map_err(|e| e.to_string())?;
        let date = first
            .checked_add(jiff::Span::new().days(i64::from(dt.day()) - 1 + days))
            .map_err(|e| e.to_string())?;
        date.to_datetime(dt.time())
            .to_zoned_datetime(self.0.time_zone().clone())
            .map(Time::value)
            .map_err(|e| e.to_string())
    }
}

/// The instant of a `time.Time` argument.
fn time_arg(v: &Value) -> Result<jiff::ZonedDateTime, String> {
    match v {
        Value::Object(o) if o.type_name() == "time.Time" => {
            o.zoned().ok_or_else(|| "not a time".to_string())
        }
        other => Err(arg_error(format!(
            "wrong type for value; expected time.Time; got {}",
            super::funcs::go_type(other)
        ))),
    }
}

/// A `time.Duration` argument: a duration, or an integer constant such as
/// `28800e9` (Go's parser makes a float constant with an integral value an
/// integer too).
fn duration_arg(v: &Value) -> Result<i64, String> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
        Value::Float(f) => Err(arg_error(format!(
            "expected integer; found {}",
            Value::Float(*f).go_string()
        ))),
        Value::Object(o) => o.nanos().ok_or_else(|| {
            arg_error(format!(
                "wrong type for value; expected time.Duration; got {}",
                o.type_name()
            ))
        }),
        other => Err(arg_error(format!(
            "wrong type for value; expected time.Duration; got {}",
            super::funcs::go_type(other)
        ))),
    }
}

fn int_args(name: &str, args: &[Value], want: usize) -> Result<Vec<i64>, String> {
    if args.len() != want {
        return Err(arg_error(format!(
            "wrong number of args for {name}: want {want} got {}",
            args.len()
        )));
    }
    args.iter()
        .map(|a| match a {
            Value::Int(i) => Ok(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(*f as i64),
            other => Err(arg_error(format!(
                "wrong type for value; expected int; got {}",
                super::funcs::go_type(other)
            ))),
        })
        .collect()
}

fn one_arg<'a>(name: &str, args: &'a [Value]) -> Result<&'a Value, String> {
    match args {
        [a] => Ok(a),
        _ => Err(arg_error(format!(
            "wrong number of args for {name}: want 1 got {}",
            args.len()
        ))),
    }
}

/// Go's `time.Month` and `time.Weekday`: print as their English names.
struct Named(&'static str, i64, &'static str);

impl Object for Named {
    fn type_name(&self) -> &'static str {
        self.2
    }

    fn field(&self, name: &str) -> Option<Value> {
        (name == "String").then(|| Value::from(self.0))
    }

    fn display(&self) -> String {
        self.0.to_string()
    }

    fn to_json(&self) -> Result<String, String> {
        Ok(self.1.to_string())
    }

    fn int_value(&self) -> Option<i64> {
        Some(self.1)
    }
}

/// A `*time.Location`, what `Location` returns and `In` takes.
struct Location(jiff::tz::TimeZone, String);

impl Object for Location {
    fn type_name(&self) -> &'static str {
        "*time.Location"
    }

    fn field(&self, name: &str) -> Option<Value> {
        (name == "String").then(|| Value::from(self.1.as_str()))
    }

    fn display(&self) -> String {
        self.1.clone()
    }

    fn zone(&self) -> Option<jiff::tz::TimeZone> {
        Some(self.0.clone())
    }
}

/// The Go name of a zone: its IANA name, `UTC`, or "" for a fixed offset.
fn zone_name(tz: &jiff::tz::TimeZone) -> String {
    match tz.iana_name() {
        Some(n) => n.to_string(),
        None if tz == &jiff::tz::TimeZone::UTC => "UTC".into(),
        None => String::new(),
    }
}

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

impl Object for Time {
    fn type_name(&self) -> &'static str {
        "time.Time"
    }

    fn field(&self, name: &str) -> Option<Value> {
        let dt = self.0.datetime();
        let ts = self.0.timestamp();
        Some(match name {
            "Unix" => Value::Int(ts.as_second()),
            "UnixMilli" => Value::Int(ts.as_millisecond()),
            "UnixMicro" => Value::Int(ts.as_microsecond()),
            "UnixNano" => Value::Int(i64::try_from(ts.as_nanosecond()).unwrap_or(i64::MIN)),
            // Herald runs in UTC as Alertmanager's container image does.
            "UTC" | "Local" => Value::Object(Arc::new(Time::utc(ts))),
            "IsZero" => Value::Bool(ts == crate::model::GO_ZERO_TIME),
            "String" => Value::from(self.display()),
            "Year" => Value::Int(i64::from(dt.year())),
            "Month" => {
                let m = dt.month();
                Value::Object(Arc::new(Named(
                    MONTHS[m as usize - 1],
                    i64::from(m),
                    "time.Month",
                )))
            }
            "Day" => Value::Int(i64::from(dt.day())),
            "Hour" => Value::Int(i64::from(dt.hour())),
            "Minute" => Value::Int(i64::from(dt.minute())),
            "Second" => Value::Int(i64::from(dt.second())),
            "Nanosecond" => Value::Int(i64::from(dt.subsec_nanosecond())),
            "YearDay" => Value::Int(i64::from(dt.day_of_year())),
            "Weekday" => {
                let d = dt.weekday().to_sunday_zero_offset();
                Value::Object(Arc::new(Named(
                    DAYS[d as usize],
                    i64::from(d),
                    "time.Weekday",
                )))
            }
            "Location" => Value::Object(Arc::new(Location(
                self.0.time_zone().clone(),
                zone_name(self.0.time_zone()),
            ))),
            _ => return None,
        })
    }

    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let r = match name {
            "Format" => one_arg(name, args).and_then(|a| match a {
                Value::Str(layout) => Ok(Value::from(go_format(&self.0, layout))),
                other => Err(arg_error(format!(
                    "wrong type for value; expected string; got {}",
                    super::funcs::go_type(other)
                ))),
            }),
            "Add" => one_arg(name, args)
                .and_then(duration_arg)
                .and_then(|d| self.add(d)),
            "Sub" => one_arg(name, args).and_then(time_arg).map(|t| {
                let d = self.0.timestamp().as_nanosecond() - t.timestamp().as_nanosecond();
                GoDuration::value(d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
            }),
            "AddDate" => int_args(name, args, 3).and_then(|a| self.add_date(a[0], a[1], a[2])),
            "Before" | "After" | "Equal" | "Compare" => {
                one_arg(name, args).and_then(time_arg).map(|t| {
                    let ord = self.0.timestamp().cmp(&t.timestamp());
                    match name {
                        "Before" => Value::Bool(ord.is_lt()),
                        "After" => Value::Bool(ord.is_gt()),
                        "Equal" => Value::Bool(ord.is_eq()),
                        _ => Value::Int(ord as i64),
                    }
                })
            }
            "Truncate" | "Round" => one_arg(name, args).and_then(duration_arg).and_then(|d| {
                if d <= 0 {
                    // Go returns the time stripped of its monotonic reading.
                    return Ok(Time::value(self.0.clone()));
                }
                let n = self.since_go_zero();
                let d = i128::from(d);
                let r = n.rem_euclid(d);
                let base = n - r;
                let up = name == "Round" && r + r >= d;
                self.with_since_go_zero(if up { base + d } else { base })
            }),
            "In" => one_arg(name, args).and_then(|a| match a {
                Value::Object(o) if o.zone().is_some() => {
                    Ok(Time::value(jiff::ZonedDateTime::new(
                        self.0.timestamp(),
                        o.zone().unwrap_or(jiff::tz::TimeZone::UTC),
                    )))
                }
                other => Err(arg_error(format!(
                    "wrong type for value; expected *time.Location; got {}",
                    super::funcs::go_type(other)
                ))),
            }),
            _ => return None,
        };
        Some(r)
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

    /// `encoding/json` writes a time as RFC 3339 with nanoseconds.
    fn to_json(&self) -> Result<String, String> {
        Ok(json_string(&go_format(
            &self.0,
            "2006-01-02T15:04:05.999999999Z07:00",
        )))
    }
}

/// A `time.Duration` (what `since` and `Sub` return), in nanoseconds.
struct GoDuration(i64);

impl GoDuration {
    fn value(nanos: i64) -> Value {
        Value::Object(Arc::new(GoDuration(nanos)))
    }
}

impl Object for GoDuration {
    fn type_name(&self) -> &'static str {
        "time.Duration"
    }

    fn field(&self, name: &str) -> Option<Value> {
        let n = self.0;
        Some(match name {
            "Seconds" => Value::Float(n as f64 / 1e9),
            "Minutes" => Value::Float(n as f64 / 6e10),
            "Hours" => Value::Float(n as f64 / 3.6e12),
            "Milliseconds" => Value::Int(n / 1_000_000),
            "Microseconds" => Value::Int(n / 1_000),
            "Nanoseconds" => Value::Int(n),
            "Abs" => GoDuration::value(n.checked_abs().unwrap_or(i64::MAX)),
            "String" => Value::from(self.display()),
            _ => return None,
        })
    }

    fn call(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        let r = match name {
            "Truncate" | "Round" => one_arg(name, args).and_then(duration_arg).map(|m| {
                if m <= 0 {
                    return GoDuration::value(self.0);
                }
                let r = self.0 % m;
                let t = self.0 - r;
                if name == "Truncate" {
                    return GoDuration::value(t);
                }
                // Round half away from zero, saturating like Go.
                let v = if self.0 < 0 {
                    if -r + -r < m {
                        Some(t)
                    } else {
                        t.checked_sub(m)
                    }
                } else if r + r < m {
                    Some(t)
                } else {
                    t.checked_add(m)
                };
                GoDuration::value(v.unwrap_or(if self.0 < 0 { i64::MIN } else { i64::MAX }))
            }),
            _ => return None,
        };
        Some(r)
    }

    fn display(&self) -> String {
        let abs = std::time::Duration::from_nanos(self.0.unsigned_abs());
        let s = crate::duration::format_go_duration(abs);
        if self.0 < 0 {
            format!("-{s}")
        } else {
            s
        }
    }

    fn seconds(&self) -> Option<f64> {
        Some(self.0 as f64 / 1e9)
    }

    fn nanos(&self) -> Option<i64> {
        Some(self.0)
    }

    fn int_value(&self) -> Option<i64> {
        Some(self.0)
    }

    fn to_json(&self) -> Result<String, String> {
        Ok(self.0.to_string())
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
    // A fixed offset (from a parsed `-0700`) has no name: Go prints the
    // offset where the layout asks for the zone's abbreviation.
    let abbrev = if t.time_zone().iana_name().is_none() && t.time_zone() != &jiff::tz::TimeZone::UTC
    {
        plain.clone()
    } else {
        t.time_zone()
            .to_offset_info(t.timestamp())
            .abbreviation()
            .to_string()
    };
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
    let (fmt, input) = if layout.contains("Z07") && value.ends_with('Z') {
        (
            fmt.replace("%:z", "").replace("%z", ""),
            value.trim_end_matches('Z'),
        )
    } else {
        (fmt, value)
    };
    // Herald's parser is not Go's, so the detail after the prefix is
    // coarser than Go's (which names the element that failed).
    let cannot =
        || format!("parsing time {value:?} as {layout:?}: cannot parse {value:?} as {layout:?}");
    let mut tm = jiff::fmt::strtime::parse(&fmt, input).map_err(|e| {
        let e = e.to_string();
        for field in ["month", "day", "hour", "minute", "second"] {
            if e.contains(&format!("'{field}' is not in the required range")) {
                return format!("parsing time {value:?}: {field} out of range");
            }
        }
        cannot()
    })?;
    // Go fills what the layout lacks with year 0, January, day 1, and
    // ignores the weekday.
    tm.set_weekday(None);
    if tm.year().is_none() {
        tm.set_year(Some(0)).map_err(|_| cannot())?;
    }
    if tm.month().is_none() && tm.day_of_year().is_none() {
        tm.set_month(Some(1)).map_err(|_| cannot())?;
    }
    if tm.day().is_none() && tm.day_of_year().is_none() {
        tm.set_day(Some(1)).map_err(|_| cannot())?;
    }
    let dt = tm.to_datetime().map_err(|e| {
        if e.to_string().contains("day") {
            format!("parsing time {value:?}: day out of range")
        } else {
            cannot()
        }
    })?;
    match tm.offset() {
        // An offset equal to the location's (UTC) reads as UTC itself.
        Some(off) if off != jiff::tz::Offset::UTC => {
            let ts = dt
                .to_zoned_datetime(jiff::tz::TimeZone::fixed(off))
                .map_err(|_| cannot())?;
            Ok(ts)
        }
        _ => dt
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .map_err(|_| cannot()),
    }
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
            Value::Object(Arc::new(Alerts(alerts, false))),
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

    /// `template.Data`'s JSON tags, in its field order; Go always writes
    /// `notification_reason`, empty when unknown.
    fn to_json(&self) -> Result<String, String> {
        let mut parts = Vec::new();
        for (field, tag) in [
            ("Receiver", "receiver"),
            ("Status", "status"),
            ("Alerts", "alerts"),
            ("NotificationReason", "notification_reason"),
            ("GroupLabels", "groupLabels"),
            ("CommonLabels", "commonLabels"),
            ("CommonAnnotations", "commonAnnotations"),
            ("RouteLabels", "routeLabels"),
            ("ExternalURL", "externalURL"),
        ] {
            let v = match (self.0.get(field), field) {
                (Some(v), _) => json_value(v)?,
                (None, "NotificationReason") => json_string(""),
                (None, _) => continue,
            };
            parts.push(format!("{}:{v}", json_string(tag)));
        }
        Ok(format!("{{{}}}", parts.join(",")))
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
        other => Err(arg_error(format!(
            "wrong type for value; expected string; got {}",
            super::funcs::go_type(other)
        ))),
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

/// Exactly `n` arguments, or Go's error for a call with another count.
fn arity<'a>(name: &str, a: &'a [Value], n: usize) -> Result<&'a [Value], String> {
    if a.len() == n {
        Ok(a)
    } else {
        Err(arg_error(format!(
            "wrong number of args for {name}: want {n} got {}",
            a.len()
        )))
    }
}

/// A function of one string argument.
fn str_fn(
    name: &'static str,
    op: impl Fn(&str) -> Result<Value, String> + Send + Sync + 'static,
) -> Func {
    f(move |a| {
        let a = arity(name, a, 1)?;
        op(&str_arg(&a[0])?)
    })
}

/// Go's `regexp` syntax errors, from the Rust engine's: `error parsing
/// regexp: <what>: `<expr>``, for the cases Go's templates commonly hit.
fn regexp_error(pattern: &str, e: &regex::Error) -> String {
    let msg = e.to_string();
    let what = [
        ("unclosed group", "missing closing )"),
        ("unopened group", "unexpected )"),
        ("unclosed character class", "missing closing ]"),
        (
            "repetition operator missing expression",
            "missing argument to repetition operator",
        ),
        ("unrecognized escape sequence", "invalid escape sequence"),
        (
            "invalid character class range",
            "invalid character class range",
        ),
    ]
    .iter()
    .find(|(rust, _)| msg.contains(rust))
    .map(|(_, go)| *go)
    .unwrap_or("invalid or unsupported Perl syntax");
    format!("error parsing regexp: {what}: `{pattern}`")
}

/// Go's `url.QueryUnescape`.
fn query_unescape(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = |c: u8| (c as char).to_digit(16);
                match (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                    }
                    _ => {
                        let end = (i + 3).min(b.len());
                        return Err(format!(
                            "invalid URL escape {:?}",
                            String::from_utf8_lossy(&b[i..end])
                        ));
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Go's `base64.URLEncoding.DecodeString`: URL-safe alphabet, padding
/// required, CR and LF skipped, unused trailing bits ignored; an error names
/// the offending byte of the input as Go's decoder finds it.
fn base64_url_decode(s: &str) -> Result<String, String> {
    fn sextet(c: u8) -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'-' => Some(62),
            b'_' => Some(63),
            _ => None,
        }
    }
    let src = s.as_bytes();
    let illegal = |at: usize| format!("illegal base64 data at input byte {at}");
    let skip_newlines = |mut i: usize| {
        while i < src.len() && matches!(src[i], b'\n' | b'\r') {
            i += 1;
        }
        i
    };
    let mut out = Vec::with_capacity(src.len() / 4 * 3);
    let mut si = 0;
    loop {
        let mut buf = [0u8; 4];
        let mut j = 0;
        let mut len = 4;
        let mut done = false;
        while j < 4 {
            if si == src.len() {
                match j {
                    0 => return Ok(String::from_utf8_lossy(&out).into_owned()),
                    _ => return Err(illegal(si - j)),
                }
            }
            let c = src[si];
            si += 1;
            if let Some(v) = sextet(c) {
                buf[j] = v;
                j += 1;
                continue;
            }
            if matches!(c, b'\n' | b'\r') {
                continue;
            }
            if c != b'=' || j < 2 {
                return Err(illegal(si - 1));
            }
            if j == 2 {
                // "==" expected: the first is consumed.
                si = skip_newlines(si);
                if si == src.len() {
                    return Err(illegal(src.len()));
                }
                if src[si] != b'=' {
                    return Err(illegal(si - 1));
                }
                si += 1;
            }
            si = skip_newlines(si);
            if si < src.len() {
                return Err(illegal(si));
            }
            len = j;
            done = true;
            break;
        }
        let n = (u32::from(buf[0]) << 18)
            | (u32::from(buf[1]) << 12)
            | (u32::from(buf[2]) << 6)
            | u32::from(buf[3]);
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..len - 1]);
        if done {
            return Ok(String::from_utf8_lossy(&out).into_owned());
        }
    }
}

/// Prometheus' `ConvertToFloat`, what `humanizeDuration` accepts.
fn to_float(v: &Value) -> Result<f64, String> {
    match v {
        Value::Int(i) => Ok(*i as f64),
        Value::Float(x) => Ok(*x),
        Value::Str(s) => s.parse::<f64>().map_err(|_| {
            format!(
                "strconv.ParseFloat: parsing {:?}: invalid syntax",
                s.as_ref()
            )
        }),
        Value::Object(o) if o.seconds().is_some() => Ok(o.seconds().unwrap_or_default()),
        other => Err(format!(
            "can't convert {} to float",
            super::funcs::go_type(other)
        )),
    }
}

/// Go's `time.LoadLocation`.
fn load_location(name: &str) -> Result<jiff::tz::TimeZone, String> {
    match name {
        // Herald runs in UTC, as Alertmanager's container image does.
        "" | "UTC" | "Local" => Ok(jiff::tz::TimeZone::UTC),
        n => jiff::tz::TimeZone::get(n).map_err(|_| format!("unknown time zone {n}")),
    }
}

/// Alertmanager's function map (`template.DefaultFuncs` of 0.34), but
/// `routeLabels`.
pub(crate) fn add_alertmanager_funcs(m: &mut FuncMap) {
    m.insert(
        super::route_labels::FUNC,
        super::route_labels::placeholder(),
    );
    m.insert(
        "toUpper",
        str_fn("toUpper", |s| Ok(Value::from(s.to_uppercase()))),
    );
    m.insert(
        "toLower",
        str_fn("toLower", |s| Ok(Value::from(s.to_lowercase()))),
    );
    m.insert("title", str_fn("title", |s| Ok(Value::from(title(s)))));
    m.insert(
        "trimSpace",
        str_fn("trimSpace", |s| Ok(Value::from(s.trim().to_string()))),
    );
    m.insert(
        "join",
        f(|a| {
            let a = arity("join", a, 2)?;
            let sep = str_arg(&a[0])?;
            let list = string_list(&a[1]).ok_or_else(|| {
                arg_error(format!(
                    "wrong type for value; expected []string; got {}",
                    super::funcs::go_type(&a[1])
                ))
            })?;
            Ok(Value::from(list.join(&sep)))
        }),
    );
    m.insert(
        "match",
        f(|a| {
            let a = arity("match", a, 2)?;
            let (p, t) = (str_arg(&a[0])?, str_arg(&a[1])?);
            Regex::new(&p)
                .map(|re| Value::Bool(re.is_match(&t)))
                .map_err(|e| regexp_error(&p, &e))
        }),
    );
    m.insert(
        "reReplaceAll",
        f(|a| {
            let a = arity("reReplaceAll", a, 3)?;
            let (p, r, t) = (str_arg(&a[0])?, str_arg(&a[1])?, str_arg(&a[2])?);
            // Go's MustCompile panics; text/template reports the panic.
            let re = Regex::new(&p).map_err(|e| {
                format!(
                    "regexp: Compile({}): {}",
                    go_backquote(&p),
                    regexp_error(&p, &e)
                )
            })?;
            Ok(Value::from(re.replace_all(&t, r.as_str()).into_owned()))
        }),
    );
    m.insert(
        "safeHtml",
        str_fn("safeHtml", |s| {
            Ok(Value::Object(Arc::new(SafeHtml(s.to_string()))))
        }),
    );
    m.insert("safeUrl", str_fn("safeUrl", |s| Ok(Value::from(s))));
    m.insert(
        "urlUnescape",
        str_fn("urlUnescape", |s| query_unescape(s).map(Value::from)),
    );
    m.insert(
        "stringSlice",
        f(|a| {
            for v in a {
                str_arg(v)?;
            }
            Ok(Value::List(Arc::new(a.to_vec())))
        }),
    );
    m.insert(
        "now",
        f(|a| {
            arity("now", a, 0)?;
            Ok(Value::Object(Arc::new(Time::utc(Timestamp::now()))))
        }),
    );
    m.insert(
        "since",
        f(|a| {
            let a = arity("since", a, 1)?;
            let t = time_arg(&a[0]).map_err(arg_error)?;
            let d = Timestamp::now().as_nanosecond() - t.timestamp().as_nanosecond();
            Ok(GoDuration::value(
                d.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
            ))
        }),
    );
    m.insert(
        "date",
        f(|a| {
            let a = arity("date", a, 2)?;
            let layout = str_arg(&a[0])?;
            let t = time_arg(&a[1]).map_err(arg_error)?;
            Ok(Value::from(go_format(&t, &layout)))
        }),
    );
    m.insert(
        "tz",
        f(|a| {
            let a = arity("tz", a, 2)?;
            let name = str_arg(&a[0])?;
            let t = time_arg(&a[1]).map_err(arg_error)?;
            let zone = load_location(&name)?;
            Ok(Time::value(jiff::ZonedDateTime::new(t.timestamp(), zone)))
        }),
    );
    m.insert(
        "toDate",
        f(|a| {
            let a = arity("toDate", a, 2)?;
            let (layout, s) = (str_arg(&a[0])?, str_arg(&a[1])?);
            // The zero time on failure, as 0.34 documents.
            Ok(go_parse(&layout, &s)
                .map(Time::value)
                .unwrap_or_else(|_| Value::Object(Arc::new(Time::utc(crate::model::GO_ZERO_TIME)))))
        }),
    );
    m.insert(
        "mustToDate",
        f(|a| {
            let a = arity("mustToDate", a, 2)?;
            let (layout, s) = (str_arg(&a[0])?, str_arg(&a[1])?);
            go_parse(&layout, &s).map(Time::value)
        }),
    );
    m.insert(
        "humanizeDuration",
        f(|a| {
            let a = arity("humanizeDuration", a, 1)?;
            Ok(Value::from(humanize_duration(to_float(&a[0])?)))
        }),
    );
    m.insert(
        "toJson",
        f(|a| {
            let a = arity("toJson", a, 1)?;
            json_value(&a[0]).map(Value::from)
        }),
    );
    m.insert(
        "base64encode",
        str_fn("base64encode", |s| {
            use base64::Engine as _;
            Ok(Value::from(
                base64::engine::general_purpose::URL_SAFE.encode(s.as_bytes()),
            ))
        }),
    );
    m.insert(
        "base64decode",
        str_fn("base64decode", |s| base64_url_decode(s).map(Value::from)),
    );
    m.insert("list", f(|a| Ok(Value::List(Arc::new(a.to_vec())))));
    m.insert(
        "append",
        f(|a| match a.split_first() {
            Some((Value::List(l), rest)) => Ok(Value::List(Arc::new(
                l.iter().chain(rest).cloned().collect(),
            ))),
            Some((other, _)) => Err(arg_error(format!(
                "wrong type for value; expected []interface {{}}; got {}",
                super::funcs::go_type(other)
            ))),
            None => Err(arg_error(
                "wrong number of args for append: want at least 1 got 0",
            )),
        }),
    );
    m.insert(
        "dict",
        f(|a| {
            if a.len() % 2 != 0 {
                return Err("dict requires an even number of arguments".into());
            }
            let mut d = std::collections::BTreeMap::new();
            for p in a.chunks(2) {
                let Value::Str(k) = &p[0] else {
                    return Err("dict keys must be strings".into());
                };
                d.insert(k.to_string(), p[1].clone());
            }
            Ok(Value::Map(Arc::new(d)))
        }),
    );
}

/// Go's `%#q`-like backquoting that `regexp.MustCompile` panics with.
fn go_backquote(s: &str) -> String {
    format!("`{s}`")
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
    // Since 0.26 amtool's example alerts are one firing, one resolved.
    let alert = |labels: &[(&str, &str)], annotations: &[(&str, &str)], ago: i64, fp: &str| {
        Value::Object(Arc::new(AlertObj {
            status: if ago == 5 { "firing" } else { "resolved" }.into(),
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
        Value::Object(Arc::new(Alerts(alerts, false))),
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

    /// 0.34's functions that 0.33.1's amtool lacks; the expected texts are
    /// what Go's `time.ParseInLocation` and `base64.URLEncoding` give.
    #[test]
    fn functions_of_0_34_like_go() {
        for (src, want) in [
            (r#"{{ base64encode "hello?>>" }}|{{ base64encode "" }}|{{ base64encode "é" }}"#, "aGVsbG8_Pj4=||w6k="),
            (r#"{{ base64decode "aGVsbG8_Pj4=" }}|{{ base64decode "aGl=" }}"#, "hello?>>|hi"),
            (r#"{{ toDate "2006-01-02" "2024-13-01" }}|{{ (toDate "x" "y").IsZero }}"#, "0001-01-01 00:00:00 +0000 UTC|true"),
            (r#"{{ toDate "2006" "2000" }}|{{ toDate "15:04" "12:30" }}"#, "2000-01-01 00:00:00 +0000 UTC|0000-01-01 12:30:00 +0000 UTC"),
            (r#"{{ toDate "2006-01-02T15:04:05Z07:00" "2024-03-01T10:00:00+01:30" }}|{{ (toDate "-0700" "+0130").Location }}"#, "2024-03-01 10:00:00 +0130 +0130|"),
            (r#"{{ toDate "Mon, 02 Jan 2006" "Sun, 01 Mar 2024" }}|{{ mustToDate "2006-01-02 15:04:05.000" "2024-03-01 10:00:00.123" }}"#, "2024-03-01 00:00:00 +0000 UTC|2024-03-01 10:00:00.123 +0000 UTC"),
            (r#"{{ $t := toDate "2006-01-02" "2024-01-31" }}{{ $t.AddDate 0 1 0 }}|{{ $t.AddDate 0 -13 0 }}|{{ $t.AddDate 1 0 -31 }}"#, "2024-03-02 00:00:00 +0000 UTC|2022-12-31 00:00:00 +0000 UTC|2024-12-31 00:00:00 +0000 UTC"),
            (r#"{{ $t := toDate "2006-01-02 15:04" "2024-01-31 10:37" }}{{ $t.Truncate 604800e9 }}|{{ $t.Round 1800e9 }}"#, "2024-01-29 00:00:00 +0000 UTC|2024-01-31 10:30:00 +0000 UTC"),
            (r#"{{ $t := toDate "2006-01-02" "2024-03-01" }}{{ $t.Month | printf "%d" }}|{{ eq $t.Month 3 }}|{{ printf "%d" $t.Weekday }}|{{ printf "%d" (($t.Add 5e9).Sub $t) }}|{{ lt $t.Month 4 }}"#, "3|true|5|5000000000|true"),
        ] {
            assert_eq!(render(src).unwrap(), want, "{src}");
        }
        for (src, err) in [
            (
                r#"{{ mustToDate "2006-01-02" "2024-13-01" }}"#,
                r#"error calling mustToDate: parsing time "2024-13-01": month out of range"#,
            ),
            (
                r#"{{ mustToDate "2006-01-02" "2024-02-30" }}"#,
                r#"error calling mustToDate: parsing time "2024-02-30": day out of range"#,
            ),
            (
                r#"{{ mustToDate "x" "y" }}"#,
                r#"error calling mustToDate: parsing time "y" as "x": cannot parse "y" as "x""#,
            ),
            (
                r#"{{ base64decode "!!" }}"#,
                "error calling base64decode: illegal base64 data at input byte 0",
            ),
            (
                r#"{{ base64decode "aGk" }}"#,
                "error calling base64decode: illegal base64 data at input byte 0",
            ),
            (
                r#"{{ base64decode "aGk=x" }}"#,
                "error calling base64decode: illegal base64 data at input byte 4",
            ),
            (
                r#"{{ base64decode "aGVsbG8/Pj4=" }}"#,
                "error calling base64decode: illegal base64 data at input byte 7",
            ),
            (
                r#"{{ base64decode "aGk=\naGk=" }}"#,
                "error calling base64decode: illegal base64 data at input byte 5",
            ),
            (
                r#"{{ (toDate "2006" "2024").Add 1.5 }}"#,
                "expected integer; found 1.5",
            ),
        ] {
            let e = render(src).unwrap_err().to_string();
            assert!(e.ends_with(&format!(": {err}")), "{src}: {e}");
        }
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
        Value::Object(Arc::new(Alerts(alerts, false))),
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
