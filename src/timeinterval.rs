//! Time intervals (`timeinterval/timeinterval.go`): named sets of times of
//! day, weekdays, days of the month, months and years in a time zone, used
//! by routes to mute notifications (`mute_time_intervals`) or to allow them
//! only then (`active_time_intervals`).
//!
//! Parsed into typed ranges when the config loads; each range keeps the
//! text it came from so that `GET /api/v2/status` shows what the user wrote.

use std::fmt;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A named time interval: matches when any of its intervals does.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeIntervalDef {
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "crate::commoncfg::null_default")]
    pub time_intervals: Vec<TimeInterval>,
}

impl TimeIntervalDef {
    pub fn contains(&self, t: Timestamp) -> bool {
        self.time_intervals.iter().any(|ti| ti.contains(t))
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeInterval {
    #[serde(
        default,
        deserialize_with = "crate::commoncfg::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub times: Vec<TimeRange>,
    #[serde(
        default,
        deserialize_with = "weekdays",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub weekdays: Vec<InclusiveRange>,
    #[serde(
        default,
        deserialize_with = "days_of_month",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub days_of_month: Vec<InclusiveRange>,
    #[serde(
        default,
        deserialize_with = "months",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub months: Vec<InclusiveRange>,
    #[serde(
        default,
        deserialize_with = "years",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub years: Vec<InclusiveRange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

/// `[begin, end]`, both inclusive, and the text it was parsed from.
#[derive(Clone, Debug, PartialEq)]
pub struct InclusiveRange {
    pub begin: i32,
    pub end: i32,
    source: String,
}

impl Serialize for InclusiveRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

/// Minutes of the day, start inclusive, end exclusive (`24:00` allowed).
#[derive(Clone, Debug, Serialize)]
pub struct TimeRange {
    pub start_time: String,
    pub end_time: String,
    #[serde(skip)]
    start_minute: u32,
    #[serde(skip)]
    end_minute: u32,
}

/// An IANA zone (or `Local`, or `UTC`), resolved once at load from the
/// system's zone database, as Go's `time.LoadLocation` does.
#[derive(Clone)]
pub struct Location {
    pub name: String,
    tz: TimeZone,
}

impl fmt::Debug for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Serialize for Location {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        let tz = match name.as_str() {
            "" | "UTC" => TimeZone::UTC,
            "Local" => TimeZone::system(),
            other => TimeZone::get(other)
                .map_err(|_| serde::de::Error::custom(format!("unknown time zone {other}")))?,
        };
        Ok(Location { name, tz })
    }
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
        let start_minute = parse_minutes(&start_time).map_err(serde::de::Error::custom)?;
        let end_minute = parse_minutes(&end_time).map_err(serde::de::Error::custom)?;
        if start_minute >= end_minute {
            return Err(serde::de::Error::custom(
                "start time cannot be equal or greater than end time",
            ));
        }
        Ok(TimeRange {
            start_time,
            end_time,
            start_minute,
            end_minute,
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
    parse: fn(&str) -> Result<(i32, i32), String>,
) -> Result<Vec<InclusiveRange>, D::Error> {
    let v = Option::<Vec<String>>::deserialize(d)?.unwrap_or_default();
    v.into_iter()
        .map(|source| {
            let (begin, end) = parse(&source).map_err(serde::de::Error::custom)?;
            Ok(InclusiveRange { begin, end, source })
        })
        .collect()
}

fn weekdays<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InclusiveRange>, D::Error> {
    ranges(d, |s| {
        let (a, b) = split_range(s);
        let idx = |x: &str| {
            WEEKDAYS
                .iter()
                .position(|w| *w == x.to_lowercase())
                .map(|i| i as i32)
                .ok_or_else(|| format!("{x} is not a valid weekday"))
        };
        let (a, b) = (idx(a)?, idx(b)?);
        if a > b {
            return Err("start day cannot be before end day".into());
        }
        Ok((a, b))
    })
}

fn days_of_month<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InclusiveRange>, D::Error> {
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
        Ok((a, b))
    })
}

fn months<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InclusiveRange>, D::Error> {
    ranges(d, |s| {
        let (a, b) = split_range(s);
        let idx = |x: &str| -> Result<i32, String> {
            if let Ok(n) = x.parse::<i32>() {
                if (1..=12).contains(&n) {
                    return Ok(n);
                }
            }
            MONTHS
                .iter()
                .position(|m| *m == x.to_lowercase())
                .map(|i| i as i32 + 1)
                .ok_or_else(|| format!("{x} is not a valid month"))
        };
        let (ia, ib) = (idx(a)?, idx(b)?);
        if ib < ia {
            return Err(format!("end month {b} is before start month {a}"));
        }
        Ok((ia, ib))
    })
}

fn years<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<InclusiveRange>, D::Error> {
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
        Ok((a, b))
    })
}

impl TimeInterval {
    /// `TimeInterval.ContainsTime`: every component that is set must match
    /// the wall-clock time in the interval's location.
    pub fn contains(&self, t: Timestamp) -> bool {
        let local = match &self.location {
            Some(l) => l.tz.to_datetime(t),
            None => TimeZone::UTC.to_datetime(t),
        };
        if !self.times.is_empty() {
            let minute = u32::from(local.hour() as u8) * 60 + u32::from(local.minute() as u8);
            if !self
                .times
                .iter()
                .any(|r| minute >= r.start_minute && minute < r.end_minute)
            {
                return false;
            }
        }
        if !self.days_of_month.is_empty() {
            // Days in the month by the calendar: Alertmanager up to 0.33
            // derived it from elapsed hours and got it wrong across DST.
            let dim = i32::from(local.date().days_in_month());
            let day = i32::from(local.day());
            let hit = self.days_of_month.iter().any(|r| {
                let begin = if r.begin < 0 {
                    dim + r.begin + 1
                } else {
                    r.begin
                };
                let end = if r.end < 0 { dim + r.end + 1 } else { r.end };
                if begin > dim {
                    return false;
                }
                let (begin, end) = (begin.clamp(-dim, dim), end.clamp(-dim, dim));
                day >= begin && day <= end
            });
            if !hit {
                return false;
            }
        }
        let within = |ranges: &[InclusiveRange], v: i32| {
            ranges.is_empty() || ranges.iter().any(|r| v >= r.begin && v <= r.end)
        };
        within(&self.months, i32::from(local.month()))
            && within(
                &self.weekdays,
                i32::from(local.weekday().to_sunday_zero_offset()),
            )
            && within(&self.years, i32::from(local.year()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(yaml: &str) -> TimeInterval {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn times_are_end_exclusive_and_allow_24_00() {
        let ti = interval("times: [{start_time: '22:00', end_time: '24:00'}]");
        assert!(ti.contains(at("2024-03-04T22:00:00Z")));
        assert!(ti.contains(at("2024-03-04T23:59:59Z")));
        assert!(!ti.contains(at("2024-03-05T00:00:00Z")));
        assert!(!ti.contains(at("2024-03-04T21:59:59Z")));
        let ti = interval("times: [{start_time: '09:00', end_time: '17:00'}]");
        assert!(!ti.contains(at("2024-03-04T17:00:00Z")));
    }

    #[test]
    fn weekdays_months_years() {
        let ti = interval("weekdays: ['monday:friday']\nmonths: ['march', '5:6']\nyears: ['2024']");
        assert!(
            ti.contains(at("2024-03-04T12:00:00Z")),
            "Monday in March 2024"
        );
        assert!(!ti.contains(at("2024-03-03T12:00:00Z")), "Sunday");
        assert!(!ti.contains(at("2024-04-01T12:00:00Z")), "April");
        assert!(ti.contains(at("2024-06-03T12:00:00Z")), "June");
        assert!(!ti.contains(at("2025-03-03T12:00:00Z")), "2025");
        let sunday = interval("weekdays: [sunday]");
        assert!(sunday.contains(at("2024-03-03T00:00:00Z")));
    }

    #[test]
    fn negative_days_count_from_month_end() {
        let ti = interval("days_of_month: ['-3:-1']");
        assert!(
            ti.contains(at("2024-02-27T00:00:00Z")),
            "leap February: 27, 28, 29"
        );
        assert!(ti.contains(at("2024-02-29T23:00:00Z")));
        assert!(!ti.contains(at("2024-02-26T23:00:00Z")));
        assert!(
            ti.contains(at("2023-02-26T00:00:00Z")),
            "February 2023: 26, 27, 28"
        );
        let ti = interval("days_of_month: ['1:5', '31']");
        assert!(ti.contains(at("2024-01-31T00:00:00Z")));
        assert!(
            !ti.contains(at("2024-04-30T00:00:00Z")),
            "day 31 never matches in April"
        );
        assert!(ti.contains(at("2024-04-05T00:00:00Z")));
    }

    #[test]
    fn location_and_dst() {
        // 08:00-09:00 Berlin time; Berlin is UTC+1 in winter, UTC+2 in summer.
        let ti =
            interval("times: [{start_time: '08:00', end_time: '09:00'}]\nlocation: Europe/Berlin");
        assert!(ti.contains(at("2024-01-15T07:30:00Z")));
        assert!(!ti.contains(at("2024-01-15T06:30:00Z")));
        assert!(ti.contains(at("2024-07-15T06:30:00Z")));
        // The last days of March across the spring-forward change (31 March 2024).
        let ti = interval("days_of_month: ['-1']\nlocation: Europe/Berlin");
        assert!(
            ti.contains(at("2024-03-31T12:00:00Z")),
            "31 March is the last day even with a 23-hour day in it"
        );
        assert!(!ti.contains(at("2024-03-30T12:00:00Z")));
        let e = serde_saphyr::from_str::<TimeInterval>("location: Mars/Olympus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown time zone Mars/Olympus"), "{e}");
    }

    #[test]
    fn refuses_bad_ranges() {
        for bad in [
            "times: [{start_time: '10:00', end_time: '09:00'}]",
            "times: [{start_time: '10:00'}]",
            "times: [{start_time: '25:00', end_time: '26:00'}]",
            "weekdays: ['friday:monday']",
            "weekdays: [funday]",
            "days_of_month: ['-1:5']",
            "days_of_month: ['32']",
            "months: ['march:january']",
            "years: ['2030:2020']",
        ] {
            assert!(
                serde_saphyr::from_str::<TimeInterval>(bad).is_err(),
                "{bad} must be refused"
            );
        }
    }

    #[test]
    fn serialises_what_the_user_wrote() {
        let ti = interval("weekdays: ['monday:friday']\nlocation: Europe/Berlin");
        let out = serde_saphyr::to_string(&ti).unwrap();
        assert!(
            out.contains("monday:friday") && out.contains("Europe/Berlin"),
            "{out}"
        );
    }
}
