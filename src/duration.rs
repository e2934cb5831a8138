//! The two duration syntaxes Alertmanager users write: Prometheus durations
//! in YAML and the API (`1d`, `1h30m`, no fractions) and Go durations on the
//! command line (`120h`, `1.5s`, no days). Both must reject what Go rejects,
//! so that a config Alertmanager refuses is refused here too.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DurationError {
    #[error("empty duration string")]
    Empty,
    #[error("not a valid duration string: {0:?}")]
    Invalid(String),
    #[error("duration out of range: {0:?}")]
    Overflow(String),
}

const UNITS: [(&str, u64); 7] = [
    ("y", 365 * 24 * 3_600_000),
    ("w", 7 * 24 * 3_600_000),
    ("d", 24 * 3_600_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

/// A Prometheus `model.Duration`: millisecond precision, units in strictly
/// decreasing order, each at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default, Hash)]
pub struct PromDuration(pub Duration);

impl PromDuration {
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        if s.is_empty() {
            return Err(DurationError::Empty);
        }
        if s == "0" {
            return Ok(PromDuration(Duration::ZERO));
        }
        let invalid = || DurationError::Invalid(s.to_string());
        let bytes = s.as_bytes();
        let mut i = 0;
        let mut next_unit = 0; // index into UNITS that the next unit may take at least
        let mut total_ms: u64 = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            if start == i {
                return Err(invalid());
            }
            let n: u64 = s[start..i]
                .parse()
                .map_err(|_| DurationError::Overflow(s.to_string()))?;
            let ustart = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit = &s[ustart..i];
            let idx = UNITS
                .iter()
                .position(|(u, _)| *u == unit)
                .ok_or_else(invalid)?;
            if idx < next_unit {
                return Err(invalid());
            }
            next_unit = idx + 1;
            let ms = n
                .checked_mul(UNITS[idx].1)
                .ok_or_else(|| DurationError::Overflow(s.to_string()))?;
            total_ms = total_ms
                .checked_add(ms)
                .ok_or_else(|| DurationError::Overflow(s.to_string()))?;
        }
        // Go's model.Duration is an int64 of nanoseconds.
        if total_ms > (i64::MAX as u64) / 1_000_000 {
            return Err(DurationError::Overflow(s.to_string()));
        }
        Ok(PromDuration(Duration::from_millis(total_ms)))
    }

    pub fn as_duration(self) -> Duration {
        self.0
    }
}

impl fmt::Display for PromDuration {
    /// Prometheus' `Duration.String()`: largest units first, `0s` for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut ms = self.0.as_millis() as u64;
        if ms == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in UNITS {
            // Years and weeks only when they divide the rest exactly, as in Go.
            if (unit == "y" || unit == "w") && !ms.is_multiple_of(size) {
                continue;
            }
            let n = ms / size;
            if n > 0 {
                write!(f, "{n}{unit}")?;
                ms -= n * size;
            }
        }
        Ok(())
    }
}

impl Serialize for PromDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for PromDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PromDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses a Go `time.ParseDuration` string, as Alertmanager's flags take,
/// refusing negative values (for the callers to which a negative span
/// means nothing).
#[cfg_attr(not(test), allow(dead_code))]
pub fn parse_go_duration(s: &str) -> Result<Duration, DurationError> {
    let d = parse_go_duration_signed(s)?;
    if d.is_negative() {
        return Err(DurationError::Invalid(s.to_string()));
    }
    Ok(d.unsigned_abs())
}

/// Parses a Go `time.ParseDuration` string keeping its sign: Go's duration
/// flags take `-1s`, and each flag gives a negative value its own meaning
/// (`--web.timeout`: none; `--dispatch.start-delay`: no delay).
pub fn parse_go_duration_signed(s: &str) -> Result<jiff::SignedDuration, DurationError> {
    let invalid = || DurationError::Invalid(s.to_string());
    let mut rest = s;
    let mut negative = false;
    if let Some(r) = rest.strip_prefix('-') {
        negative = true;
        rest = r;
    } else if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(jiff::SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_end];
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(invalid());
        }
        let value: f64 = num.parse().map_err(|_| invalid())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_end..];
        total += value * nanos_per;
    }
    if total > i64::MAX as f64 {
        return Err(DurationError::Overflow(s.to_string()));
    }
    let nanos = total.round() as i64;
    Ok(jiff::SignedDuration::from_nanos(if negative {
        -nanos
    } else {
        nanos
    }))
}

/// Formats like Go's `Duration.String()` (`2h0m0s`, `1m30s`, `500ms`), for
/// echoing flag values back in logs.
pub fn format_go_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return if ns < 1_000 {
            format!("{ns}ns")
        } else if ns < 1_000_000 {
            trim_frac(ns as f64 / 1e3, "µs")
        } else {
            trim_frac(ns as f64 / 1e6, "ms")
        };
    }
    let h = ns / 3_600_000_000_000;
    let m = (ns / 60_000_000_000) % 60;
    let s = (ns % 60_000_000_000) as f64 / 1e9;
    let sec = trim_frac(s, "s");
    if h > 0 {
        format!("{h}h{m}m{sec}")
    } else if m > 0 {
        format!("{m}m{sec}")
    } else {
        sec
    }
}

fn trim_frac(v: f64, unit: &str) -> String {
    let mut s = format!("{v:.9}");
    while s.ends_with('0') {
        s.pop();
    }
    if s.ends_with('.') {
        s.pop();
    }
    format!("{s}{unit}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_durations() {
        let ok = [
            ("0", 0),
            ("1s", 1_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
            ("1w", 604_800_000),
            ("1y", 31_536_000_000),
            ("100ms", 100),
            ("5m0s", 300_000),
        ];
        for (s, ms) in ok {
            assert_eq!(
                PromDuration::parse(s).unwrap().0.as_millis() as u64,
                ms,
                "{s}"
            );
        }
        for bad in [
            "", "1", "1.5h", "30m1h", "1hh", "1h1h", "-1s", "1 h", "1min", "s",
        ] {
            assert!(PromDuration::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn prometheus_duration_strings() {
        for (s, out) in [
            ("0", "0s"),
            ("90m", "1h30m"),
            ("7d", "1w"),
            ("8d", "8d"),
            ("120h", "5d"),
            ("1500ms", "1s500ms"),
            ("365d", "1y"),
        ] {
            assert_eq!(PromDuration::parse(s).unwrap().to_string(), out, "{s}");
        }
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("120h").unwrap(),
            Duration::from_secs(432_000)
        );
        assert_eq!(
            parse_go_duration("1.5s").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(
            parse_go_duration("1h2m3s").unwrap(),
            Duration::from_secs(3723)
        );
        assert_eq!(
            parse_go_duration("200ms").unwrap(),
            Duration::from_millis(200)
        );
        assert_eq!(parse_go_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "1d", "1", "h", "1..2s", "-1s"] {
            assert!(parse_go_duration(bad).is_err(), "{bad} must be refused");
        }
        assert_eq!(
            parse_go_duration_signed("-1s").unwrap(),
            jiff::SignedDuration::from_secs(-1)
        );
        assert_eq!(
            parse_go_duration_signed("-1m30s").unwrap(),
            jiff::SignedDuration::from_secs(-90)
        );
        assert_eq!(
            parse_go_duration_signed("+2s").unwrap(),
            jiff::SignedDuration::from_secs(2)
        );
        assert_eq!(
            parse_go_duration_signed("-0").unwrap(),
            jiff::SignedDuration::ZERO
        );
        for bad in ["-", "--1s", "-1d", "+"] {
            assert!(
                parse_go_duration_signed(bad).is_err(),
                "{bad} must be refused"
            );
        }
        assert_eq!(format_go_duration(Duration::from_secs(7200)), "2h0m0s");
        assert_eq!(format_go_duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_go_duration(Duration::from_millis(200)), "200ms");
    }
}
