//! The data Alertmanager's core works on: label sets, fingerprints and alerts.
//!
//! Everything here must reproduce Go Alertmanager's byte-level behaviour
//! (fingerprints, label-set strings, sort orders), because those values leak
//! into group keys, API answers and webhook payloads that users compare.

mod alert;
pub mod gostr;
mod labels;

pub use alert::{notification_order, Alert, AlertStatus};
pub use labels::{Fingerprint, LabelSet};

use jiff::Timestamp;

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
