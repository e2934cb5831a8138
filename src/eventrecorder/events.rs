//! The events, in the JSON that Alertmanager's recorder writes: its
//! `eventrecorderpb` messages through `protojson`. That encoding is what
//! consumers parse, so its rules are kept here: lowerCamelCase keys,
//! 64-bit integers as strings, enums by name, RFC 3339 UTC timestamps with
//! 0, 3, 6 or 9 fraction digits, durations as `"<seconds>s"`, and fields at
//! their zero value left out.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::{json, Map, Value};

use crate::matcher::{MatchType, Matcher};
use crate::model::{Alert, LabelSet};

/// An event's payload, named as in the `EventData` oneof.
pub(crate) struct EventData {
    pub(crate) kind: &'static str,
    pub(crate) body: Value,
}

/// Drops zero-valued fields as protojson does (`""`, `false`, `0`, empty
/// lists, absent messages).
fn obj(fields: Vec<(&str, Value)>) -> Value {
    let mut m = Map::new();
    for (k, v) in fields {
        let zero = match &v {
            Value::Null => true,
            Value::Bool(b) => !b,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Number(n) => n.as_f64() == Some(0.0),
            Value::Object(_) => false,
        };
        if !zero {
            m.insert(k.to_string(), v);
        }
    }
    Value::Object(m)
}

/// A `uint64`/`int64` field: a JSON string, or left out at zero.
fn u64s(n: u64) -> Value {
    if n == 0 {
        Value::Null
    } else {
        Value::String(n.to_string())
    }
}

/// protojson's fraction of a second: none, or 3, 6 or 9 digits.
fn fraction(nanos: u32) -> String {
    if nanos == 0 {
        String::new()
    } else if nanos.is_multiple_of(1_000_000) {
        format!(".{:03}", nanos / 1_000_000)
    } else if nanos.is_multiple_of(1_000) {
        format!(".{:06}", nanos / 1_000)
    } else {
        format!(".{nanos:09}")
    }
}

pub(crate) fn timestamp(t: Timestamp) -> Value {
    // Floor to the second, so times before 1970 keep a positive fraction.
    let nanos = t.as_nanosecond().rem_euclid(1_000_000_000);
    let secs = (t.as_nanosecond() - nanos) / 1_000_000_000;
    let whole = i64::try_from(secs)
        .ok()
        .and_then(|s| Timestamp::from_second(s).ok())
        .unwrap_or(t);
    let base = whole.strftime("%Y-%m-%dT%H:%M:%S").to_string();
    let nanos = u32::try_from(nanos).unwrap_or(0);
    Value::String(format!("{base}{}Z", fraction(nanos)))
}

fn duration(d: Duration) -> Value {
    Value::String(format!("{}{}s", d.as_secs(), fraction(d.subsec_nanos())))
}

/// `LabelSetAsProto`: pairs sorted by name.
pub(crate) fn label_set(ls: &LabelSet) -> Value {
    let mut pairs: Vec<(&str, &str)> = ls.iter().collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let labels: Vec<Value> = pairs
        .into_iter()
        .map(|(k, v)| obj(vec![("key", json!(k)), ("value", json!(v))]))
        .collect();
    obj(vec![("labels", Value::Array(labels))])
}

/// `AlertAsProto`; `now` decides `resolved`.
pub(crate) fn alert(a: &Alert, now: Timestamp) -> Value {
    obj(vec![
        ("fingerprint", u64s(a.fingerprint.0)),
        ("name", json!(a.labels.get("alertname").unwrap_or(""))),
        ("labels", label_set(&a.labels)),
        ("annotations", label_set(&a.annotations)),
        ("startsAt", timestamp(a.starts_at)),
        ("endsAt", timestamp(a.ends_at)),
        ("resolved", json!(a.resolved_at(now))),
    ])
}

/// `groupedAlertAsProto`: the alert's notification-log hash and the alert.
pub(crate) fn grouped_alert(a: &Alert, now: Timestamp) -> Value {
    obj(vec![
        ("hash", u64s(crate::notify::hash_alert(a))),
        ("details", alert(a, now)),
    ])
}

fn hash_only(h: u64) -> Value {
    obj(vec![("hash", u64s(h))])
}

pub(crate) fn matcher(m: &Matcher) -> Value {
    let kind = match m.kind {
        MatchType::Equal => "TYPE_EQUAL",
        MatchType::Regexp => "TYPE_REGEXP",
        MatchType::NotEqual => "TYPE_NOT_EQUAL",
        MatchType::NotRegexp => "TYPE_NOT_REGEXP",
    };
    obj(vec![
        ("type", json!(kind)),
        ("name", json!(&*m.name)),
        ("pattern", json!(&*m.value)),
        ("rendered", json!(m.to_string())),
    ])
}

/// `SilenceAsProto`: Herald's silences have one matcher set, given both as
/// `matchers` and as the only entry of `matcherSets`.
pub(crate) fn silence(s: &crate::silence::Silence) -> Value {
    let matchers: Vec<Value> = s.matchers.0.iter().map(matcher).collect();
    obj(vec![
        ("id", json!(s.id)),
        ("matchers", Value::Array(matchers.clone())),
        ("startsAt", timestamp(s.starts_at)),
        ("endsAt", timestamp(s.ends_at)),
        ("updatedAt", timestamp(s.updated_at)),
        ("createdBy", json!(s.created_by)),
        ("comment", json!(s.comment)),
        (
            "matcherSets",
            Value::Array(vec![obj(vec![("matchers", Value::Array(matchers))])]),
        ),
    ])
}

/// `AlertGroupInfo` as the dispatcher knows it. Herald has no per-group
/// UUID, so `groupUuid` is left out.
pub(crate) struct GroupInfo<'a> {
    pub(crate) group_key: &'a str,
    pub(crate) group_labels: &'a LabelSet,
    pub(crate) receiver: &'a str,
    pub(crate) matchers: &'a [Matcher],
    pub(crate) group_uuid: &'a str,
}

fn group_info(g: &GroupInfo<'_>) -> Value {
    let id = crate::notify::group_key_hash(g.group_key);
    obj(vec![
        ("groupKey", json!(g.group_key)),
        ("groupLabels", label_set(g.group_labels)),
        ("groupId", json!(id)),
        ("receiverName", json!(g.receiver)),
        (
            "matchers",
            Value::Array(g.matchers.iter().map(matcher).collect()),
        ),
        ("groupUuid", json!(g.group_uuid)),
    ])
}

pub(crate) fn startup() -> EventData {
    EventData {
        kind: "alertmanager_startup_event",
        body: obj(vec![
            ("version", json!(env!("CARGO_PKG_VERSION"))),
            (
                "buildContext",
                json!(format!("(go=none, herald={})", env!("CARGO_PKG_VERSION"))),
            ),
        ]),
    }
}

pub(crate) fn shutdown() -> EventData {
    EventData {
        kind: "alertmanager_shutdown_event",
        body: json!({}),
    }
}

pub(crate) fn alert_created(a: &Alert, now: Timestamp) -> EventData {
    EventData {
        kind: "alert_created",
        body: obj(vec![("alert", alert(a, now))]),
    }
}

pub(crate) fn alert_grouped(g: &GroupInfo<'_>, a: &Alert, now: Timestamp) -> EventData {
    EventData {
        kind: "alert_grouped",
        body: obj(vec![
            ("alert", grouped_alert(a, now)),
            ("groupInfo", group_info(g)),
        ]),
    }
}

pub(crate) fn alert_resolved(g: &GroupInfo<'_>, a: &Alert, now: Timestamp) -> EventData {
    EventData {
        kind: "alert_resolved",
        body: obj(vec![
            ("alert", grouped_alert(a, now)),
            ("groupInfo", group_info(g)),
        ]),
    }
}

pub(crate) fn silence_created(s: &crate::silence::Silence) -> EventData {
    EventData {
        kind: "silence_created",
        body: obj(vec![("silence", silence(s))]),
    }
}

pub(crate) fn silence_updated(s: &crate::silence::Silence) -> EventData {
    EventData {
        kind: "silence_updated",
        body: obj(vec![("silence", silence(s))]),
    }
}

fn muted_alert(a: &Alert) -> Value {
    obj(vec![
        ("labels", label_set(&a.labels)),
        ("fingerprint", u64s(a.fingerprint.0)),
    ])
}

/// `NewSilenceMutedAlertEvent`: one per active silence muting the alert.
pub(crate) fn silence_muted_alert(s: &crate::silence::Silence, muted: &Alert) -> EventData {
    EventData {
        kind: "silence_muted_alert",
        body: obj(vec![
            ("silence", silence(s)),
            ("mutedAlert", muted_alert(muted)),
        ]),
    }
}

/// `NewInhibitionMutedAlertEvent`: the rule that muted `muted`, and the
/// source alert that did.
pub(crate) fn inhibition_muted_alert(
    name: &str,
    source: &crate::matcher::Matchers,
    target: &crate::matcher::Matchers,
    equal: &[String],
    muted: &Alert,
    by: crate::model::Fingerprint,
) -> EventData {
    let mut equal: Vec<&String> = equal.iter().collect();
    equal.sort();
    equal.dedup();
    let rule = obj(vec![
        (
            "sourceMatchers",
            Value::Array(source.0.iter().map(matcher).collect()),
        ),
        (
            "targetMatchers",
            Value::Array(target.0.iter().map(matcher).collect()),
        ),
        ("equalLabels", json!(equal)),
        ("name", json!(name)),
    ]);
    EventData {
        kind: "inhibition_muted_alert",
        body: obj(vec![
            ("inhibitRules", Value::Array(vec![rule])),
            ("mutedAlert", muted_alert(muted)),
            ("inhibitingFingerprints", json!([by.0.to_string()])),
        ]),
    }
}

/// What a successful delivery reports (`NewNotificationEvent`).
pub(crate) struct Notification<'a> {
    pub(crate) group: GroupInfo<'a>,
    pub(crate) sent: &'a [std::sync::Arc<Alert>],
    pub(crate) firing: &'a [u64],
    pub(crate) resolved: &'a [u64],
    pub(crate) repeat_interval: Duration,
    pub(crate) reason: Option<crate::notify::NotificationReason>,
    pub(crate) integration: &'a str,
    pub(crate) index: usize,
    pub(crate) flush_id: u64,
    pub(crate) now: Timestamp,
}

pub(crate) fn notification(n: &Notification<'_>) -> EventData {
    use crate::notify::NotificationReason as R;
    let reason = match n.reason {
        Some(R::FirstNotification) => "NOTIFY_REASON_FIRST_NOTIFICATION",
        Some(R::NewAlertsAdded) => "NOTIFY_REASON_NEW_ALERTS_IN_GROUP",
        Some(R::SomeAlertsResolved) => "NOTIFY_REASON_NEW_RESOLVED_ALERTS",
        Some(R::AllAlertsResolved) => "NOTIFY_REASON_ALL_ALERTS_RESOLVED",
        Some(R::RepeatIntervalElapsed) => "NOTIFY_REASON_REPEAT_INTERVAL_ELAPSED",
        None => "",
    };
    EventData {
        kind: "notification",
        body: obj(vec![
            (
                "alerts",
                Value::Array(n.sent.iter().map(|a| grouped_alert(a, n.now)).collect()),
            ),
            (
                "firingAlerts",
                Value::Array(n.firing.iter().copied().map(hash_only).collect()),
            ),
            (
                "resolvedAlerts",
                Value::Array(n.resolved.iter().copied().map(hash_only).collect()),
            ),
            ("groupInfo", group_info(&n.group)),
            ("repeatInterval", duration(n.repeat_interval)),
            ("reason", json!(reason)),
            ("flushId", u64s(n.flush_id)),
            (
                "integration",
                obj(vec![
                    ("name", json!(n.integration)),
                    ("index", u64s(n.index as u64)),
                ]),
            ),
        ]),
    }
}

/// protojson's JSON name of a field: `alert_created` is `alertCreated`.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// `Event`: the payload wrapped with when, where and the node's position
/// in the cluster.
pub(crate) fn envelope(data: &EventData, instance: &str, at: Timestamp, position: u32) -> Value {
    let mut d = Map::new();
    d.insert(camel(data.kind), data.body.clone());
    obj(vec![
        ("@timestamp", timestamp(at)),
        ("instance", json!(instance)),
        ("data", Value::Object(d)),
        ("clusterPosition", json!(position)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_durations_are_written_as_protojson_writes_them() {
        let t = |s: &str| timestamp(s.parse().unwrap());
        assert_eq!(t("2026-01-02T03:04:05Z"), "2026-01-02T03:04:05Z");
        assert_eq!(t("2026-01-02T03:04:05.5Z"), "2026-01-02T03:04:05.500Z");
        assert_eq!(
            t("2026-01-02T03:04:05.000123Z"),
            "2026-01-02T03:04:05.000123Z"
        );
        assert_eq!(
            t("2026-01-02T03:04:05.000000007Z"),
            "2026-01-02T03:04:05.000000007Z"
        );
        assert_eq!(
            timestamp(crate::model::GO_ZERO_TIME),
            "0001-01-01T00:00:00Z"
        );
        assert_eq!(t("1969-12-31T23:59:59.5Z"), "1969-12-31T23:59:59.500Z");
        assert_eq!(duration(Duration::from_secs(14400)), "14400s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.500s");
    }

    #[test]
    fn zero_values_are_left_out_and_integers_are_strings() {
        let v = obj(vec![
            ("a", json!("")),
            ("b", json!(false)),
            ("c", u64s(0)),
            ("d", u64s(7)),
            ("e", json!([])),
            ("f", json!({})),
            ("g", json!(0)),
        ]);
        assert_eq!(v, json!({"d": "7", "f": {}}));
        assert_eq!(
            camel("alertmanager_startup_event"),
            "alertmanagerStartupEvent"
        );
    }
}
