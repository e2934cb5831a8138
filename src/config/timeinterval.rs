//! `time_intervals` definitions. Herald parses and validates them with
//! Alertmanager's rules today so that configs referencing them load; the
//! mute/active stages that evaluate them arrive with the silences issue.

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalDef {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "super::null_default")]
    pub time_intervals: Vec<TimeInterval>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    #[serde(
        default,
        deserialize_with = "super::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub times: Vec<TimeRange>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "weekdays"
    )]
    pub weekdays: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "days_of_month"
    )]
    pub days_of_month: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "months"
    )]
    pub months: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "years"
    )]
    pub years: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct TimeRange {
    pub start_time: String,
    pub end_time: String,
}

impl<'de> Deserialize<'de> for TimeRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Raw {
            #[serde(default)]
            start_time: Option<String>,
            #[serde(default)]
            end_time: Option<String>,
        }
        let raw = Raw::deserialize(d)?;
        let (Some(start_time), Some(end_time)) = (raw.start_time, raw.end_time) else {
            return Err(serde::de::Error::custom(
                "both start and end times must be provided",
            ));
        };
        let s = parse_minutes(&start_time).map_err(serde::de::Error::custom)?;
        let e = parse_minutes(&end_time).map_err(serde::de::Error::custom)?;
        if s >= e {
            return Err(serde::de::Error::custom(
                "start time cannot be equal or greater than end time",
            ));
        }
        Ok(TimeRange {
            start_time,
            end_time,
        })
    }
}

/// `HH:MM` to minutes of the day; `24:00` is allowed as an end.
fn parse_minutes(s: &str) -> Result<u32, String> {
    let bad = || format!("couldn't parse timestamp {s}, invalid format");
    let (h, m) = s.split_once(':').ok_or_else(bad)?;
    if h.is_empty() || h.len() > 2 || m.len() != 2 {
        return Err(bad());
    }
    let h: u32 = h.parse().map_err(|_| bad())?;
    let m: u32 = m.parse().map_err(|_| bad())?;
    if h > 24 || m > 59 || (h == 24 && m != 0) {
        return Err(format!("timestamp {s} out of range"));
    }
    Ok(h * 60 + m)
}

fn split_range(s: &str) -> (&str, &str) {
    s.split_once(':').unwrap_or((s, s))
}

const WEEKDAYS: [&str; 7] = [
    "sunday",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn ranges<'de, D: Deserializer<'de>>(
    d: D,
    check: fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, D::Error> {
    let v = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
    for s in &v {
        check(s).map_err(serde::de::Error::custom)?;
    }
    Ok(v)
}

fn weekdays<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    ranges(d, |s| {
        let (a, b) = split_range(s);
        let idx = |x: &str| {
            WEEKDAYS
                .iter()
                .position(|w| *w == x.to_lowercase())
                .ok_or_else(|| format!("{x} is not a valid weekday"))
        };
        if idx(a)? > idx(b)? {
            return Err("start day cannot be before end day".into());
        }
        Ok(())
    })
}

fn days_of_month<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    ranges(d, |s| {
        let (a, b) = split_range(s);
        let p = |x: &str| {
            x.parse::<i32>()
                .map_err(|_| format!("couldn't parse range {s}, invalid format"))
        };
        let (a, b) = (p(a)?, p(b)?);
        for x in [a, b] {
            if !(1..=31).contains(&x.abs()) {
                return Err(format!("{x} is not a valid day of the month: out of range"));
            }
        }
        if a < 0 && b > 0 {
            return Err("end day must be negative if start day is negative".into());
        }
        if a.signum() == b.signum() && b < a {
            return Err(format!("end day {b} is always before start day {a}"));
        }
        Ok(())
    })
}

fn months<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    ranges(d, |s| {
        let (a, b) = split_range(s);
        let idx = |x: &str| -> Result<usize, String> {
            if let Ok(n) = x.parse::<usize>() {
                if (1..=12).contains(&n) {
                    return Ok(n);
                }
            }
            MONTHS
                .iter()
                .position(|m| *m == x.to_lowercase())
                .map(|i| i + 1)
                .ok_or_else(|| format!("{x} is not a valid month"))
        };
        if idx(b)? < idx(a)? {
            return Err(format!("end month {b} is before start month {a}"));
        }
        Ok(())
    })
}

fn years<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    ranges(d, |s| {
        let (a, b) = split_range(s);
        let p = |x: &str| {
            x.parse::<i32>()
                .map_err(|_| format!("couldn't parse range {s}, invalid format"))
        };
        let (a, b) = (p(a)?, p(b)?);
        if b < a {
            return Err(format!("end year {b} is before start year {a}"));
        }
        Ok(())
    })
}
