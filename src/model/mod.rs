//! The data Alertmanager's core works on: label sets, fingerprints and alerts.
//!
//! Everything here must reproduce Go Alertmanager's byte-level behaviour
//! (fingerprints, label-set strings, sort orders), because those values leak
//! into group keys, API answers and webhook payloads that users compare.

mod alert;
pub mod gostr;
mod intern;
mod labels;

pub use alert::{
    notification_order, notification_order_indices, sort_for_notification, Alert, AlertStatus,
};
#[cfg(test)]
pub(crate) use alert::{random_alert, test_alert};
pub use intern::Interner;
pub use labels::{Fingerprint, LabelSet};

use std::sync::Arc;

use jiff::Timestamp;

/// Alertmanager's `types.Muter`: what silences and inhibit rules are to the
/// notification pipeline. The pipeline knows only this, so `notify` does
/// not depend on `silence` or `inhibit`.
pub trait Muter: Send + Sync {
    /// Drops the alerts that are muted at `now`.
    fn retain_unmuted(&self, alerts: &mut Vec<Arc<Alert>>, now: Timestamp);
}

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`). Alertmanager uses it for
/// "not set" (a firing alert's `endsAt` in notifications), so Herald keeps the
/// same sentinel instead of an `Option` to compare times the way Go does.
pub const GO_ZERO_TIME: Timestamp = Timestamp::constant(-62_135_596_800, 0);

/// Formats a time the way Go's `time.Time` marshals to JSON (RFC 3339 with
/// nanoseconds, trailing zeros trimmed), which the webhook payload uses.
pub fn format_rfc3339_nano(t: Timestamp) -> String {
    // jiff's Display prints the minimal fractional digits, as Go does.
    format!("{t}")
}

/// Formats a time the way go-swagger's `strfmt.DateTime` does in API v2
/// answers: always three fractional digits.
pub fn format_rfc3339_millis(t: Timestamp) -> String {
    format!("{t:.3}")
}

/// Writes `value`'s last `width` decimal digits at `buf[at..]` (Euclid's
/// remainder, so a negative value, which the callers then discard, cannot
/// overflow a digit).
pub(crate) fn put_digits(buf: &mut [u8], at: usize, value: i64, width: usize) {
    let mut v = value;
    for i in (0..width).rev() {
        buf[at + i] = b'0' + v.rem_euclid(10) as u8;
        v = v.div_euclid(10);
    }
}

/// Writes `secs` since the epoch as `YYYY-MM-DDTHH:MM:SS` (UTC) into
/// `buf[..19]` and returns the year, which the caller checks when four
/// digits may not hold it. Shared by the API's and the alert rows' fast
/// time formats, each tested against jiff's.
pub(crate) fn write_civil_seconds(buf: &mut [u8], secs: i64) -> i64 {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    put_digits(buf, 0, year, 4);
    buf[4] = b'-';
    put_digits(buf, 5, month, 2);
    buf[7] = b'-';
    put_digits(buf, 8, day, 2);
    buf[10] = b'T';
    put_digits(buf, 11, sod / 3600, 2);
    buf[13] = b':';
    put_digits(buf, 14, (sod / 60) % 60, 2);
    buf[16] = b':';
    put_digits(buf, 17, sod % 60, 2);
    year
}

/// Appends `t` as go-swagger's `strfmt.DateTime` (`2006-01-02T15:04:05.000Z`,
/// UTC, milliseconds truncated) without allocating: API answers at 100k
/// alerts format 300k of these.
pub fn write_rfc3339_millis(out: &mut Vec<u8>, t: Timestamp) {
    let secs = t.as_second();
    let nanos = t.subsec_nanosecond();
    // Sub-second parts of times before 1970 are negative in jiff.
    let (secs, nanos) = if nanos < 0 {
        (secs - 1, nanos + 1_000_000_000)
    } else {
        (secs, nanos)
    };
    let millis = nanos / 1_000_000;
    let mut buf = [0u8; 24];
    write_civil_seconds(&mut buf, secs);
    buf[19] = b'.';
    put_digits(&mut buf, 20, i64::from(millis), 3);
    out.push(b'"');
    out.extend_from_slice(&buf[..23]);
    out.extend_from_slice(b"Z\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_time_format_equals_jiff() {
        let mut cases = vec![
            GO_ZERO_TIME,
            Timestamp::UNIX_EPOCH,
            "2099-12-31T23:59:59.999999999Z".parse().unwrap(),
        ];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let secs = x.rem_euclid(253_402_300_799 + 62_135_596_800) - 62_135_596_800;
            let nanos = (x >> 3).rem_euclid(1_000_000_000) as i32;
            cases.push(Timestamp::new(secs, nanos).unwrap());
        }
        for t in cases {
            let mut out = Vec::new();
            write_rfc3339_millis(&mut out, t);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("\"{}\"", format_rfc3339_millis(t)),
                "{t:?}"
            );
        }
    }
}
