//! Turning core values (groups, alerts, silences, routes, times) into the
//! plain data the page templates show.

use std::fmt::Write;
use std::sync::Arc;

use jiff::Timestamp;
use serde_json::{json, Value};

use crate::dispatch::{GroupView, Route};
use crate::model::LabelSet;
use crate::query::GroupStatuses;
use crate::silence::Silence;

/// The current alerts page's parameters, for links that keep them.
#[derive(Clone, Copy)]
pub struct AlertsLink<'a> {
    pub prefix: &'a str,
    pub filter: &'a str,
    pub receiver: &'a str,
    pub silenced: bool,
    pub inhibited: bool,
    pub muted: bool,
    pub refresh: Option<u32>,
}

impl AlertsLink<'_> {
    /// This page with `filter` in place of the current filter.
    pub fn with_filter(&self, filter: &str) -> String {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        s.append_pair("filter", filter);
        if !self.receiver.is_empty() {
            s.append_pair("receiver", self.receiver);
        }
        for (k, on) in [
            ("silenced", self.silenced),
            ("inhibited", self.inhibited),
            ("muted", self.muted),
        ] {
            if on {
                s.append_pair(k, "true");
            }
        }
        if let Some(r) = self.refresh {
            s.append_pair("refresh", &r.to_string());
        }
        format!("{}/alerts?{}", self.prefix, s.finish())
    }

    /// One group's alerts: its labels as the filter, its receiver.
    pub fn for_group(&self, filter: &str, receiver: &str) -> String {
        AlertsLink { receiver, ..*self }.with_filter(filter)
    }

    /// The current filter plus one more matcher.
    fn adding(&self, matcher: &str) -> String {
        let f = self
            .filter
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}');
        if f.is_empty() {
            self.with_filter(matcher)
        } else if f.contains(matcher) {
            self.with_filter(f)
        } else {
            self.with_filter(&format!("{f}, {matcher}"))
        }
    }
}

/// `name="value"` with the value quoted as matchers want it.
pub fn matcher_text(name: &str, value: &str) -> String {
    format!("{name}={}", crate::model::gostr::go_quote(value))
}

pub fn label_list(ls: &LabelSet) -> Value {
    Value::Array(
        ls.iter()
            .map(|(k, v)| json!({"name": k, "value": v}))
            .collect(),
    )
}

pub fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// What a `datetime-local` input shows (UTC, to the second).
pub fn form_time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S").to_string()
}

pub fn parse_form_time(s: &str) -> Result<Timestamp, String> {
    let s = s.trim();
    if s.is_empty() {
        return Err("Give a time.".into());
    }
    if let Ok(t) = s.parse::<Timestamp>() {
        return Ok(t);
    }
    s.parse::<jiff::civil::DateTime>()
        .map_err(|_| format!("Not a time: {s:?} (use 2024-05-01T10:00:00, UTC)."))?
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|e| e.to_string())
}

/// `3m`, `2h 5m`, `4d 1h`: how long since `t`.
pub fn age(t: Timestamp, now: Timestamp) -> String {
    let secs = now.as_second().saturating_sub(t.as_second()).max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

fn is_link(v: &str) -> bool {
    (v.starts_with("https://") || v.starts_with("http://")) && !v.contains(char::is_whitespace)
}

/// A group with its first `max_alerts` alerts (none: a folded one-line
/// group whose link shows them).
pub fn group(
    g: &GroupView,
    statuses: &GroupStatuses,
    max_alerts: usize,
    here: &AlertsLink<'_>,
    now: Timestamp,
) -> Value {
    let order = crate::model::notification_order_indices(&g.alerts);
    let alerts: Vec<Value> = order
        .iter()
        .take(max_alerts)
        .map(|&i| {
            let a = &g.alerts[i];
            let (silenced_by, inhibited_by) = &statuses[i];
            let suppressed =
                !silenced_by.is_empty() || inhibited_by.is_some() || !g.muted_by.is_empty();
            let silence_filter: Vec<String> = a
                .labels
                .iter()
                .map(|(k, v)| matcher_text(k, v))
                .collect();
            json!({
                "state": if suppressed { "suppressed" } else { "active" },
                "starts_at": time(a.starts_at),
                "starts_at_iso": a.starts_at.to_string(),
                "age": age(a.starts_at, now),
                "generator_url": is_link(&a.generator_url).then(|| a.generator_url.to_string()),
                "silence_link": format!("{}/silences/new?filter={}", here.prefix,
                    url::form_urlencoded::byte_serialize(format!("{{{}}}", silence_filter.join(",")).as_bytes()).collect::<String>()),
                "labels": a.labels.iter().map(|(k, v)| json!({
                    "name": k, "value": v,
                    "link": here.adding(&matcher_text(k, v)),
                })).collect::<Vec<_>>(),
                "annotations": a.annotations.iter().map(|(k, v)| json!({
                    "name": k, "value": v, "is_link": is_link(v),
                })).collect::<Vec<_>>(),
                "silenced_by": silenced_by.iter().map(|id| json!({
                    "id": id, "link": format!("{}/silences/{id}", here.prefix),
                })).collect::<Vec<_>>(),
                "inhibited": inhibited_by.is_some(),
                "muted_by": g.muted_by.join(", "),
                "history_link": format!("{}/notifications?filter={}", here.prefix,
                    url::form_urlencoded::byte_serialize(silence_filter.join(", ").as_bytes()).collect::<String>()),
            })
        })
        .collect();
    let group_filter: Vec<String> = g.labels.iter().map(|(k, v)| matcher_text(k, v)).collect();
    json!({
        "receiver": g.receiver,
        "labels": label_list(&g.labels),
        "count": match g.alerts.len() {
            1 => "1 alert".to_string(),
            n => format!("{n} alerts"),
        },
        "open": max_alerts > 0,
        "alerts": alerts,
        "more": (g.alerts.len() > max_alerts).then(|| g.alerts.len() - max_alerts),
        "more_link": here.for_group(&group_filter.join(", "), &g.receiver),
        "history_link": format!("{}/notifications?{}", here.prefix,
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("group", &group_filter.join(", "))
                .append_pair("receiver", &g.receiver)
                .finish()),
    })
}

pub fn silence(s: &Arc<Silence>, prefix: &str, now: Timestamp) -> Value {
    let state = s.state(now);
    let time_left = match state {
        crate::silence::SilenceState::Active => format!("ends in {}", age(now, s.ends_at)),
        crate::silence::SilenceState::Pending => format!("starts in {}", age(now, s.starts_at)),
        crate::silence::SilenceState::Expired => format!("ended {} ago", age(s.ends_at, now)),
    };
    json!({
        "id": s.id,
        "link": format!("{prefix}/silences/{}", s.id),
        "state": state.as_str(),
        "expired": state == crate::silence::SilenceState::Expired,
        "matchers": s.matchers.0.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        "created_by": s.created_by,
        "comment": s.comment,
        "starts_at": time(s.starts_at),
        "ends_at": time(s.ends_at),
        "starts_at_iso": s.starts_at.to_string(),
        "ends_at_iso": s.ends_at.to_string(),
        "time_left": time_left,
        "edit_link": format!("{prefix}/silences/new?id={}", s.id),
        "recreate_link": format!("{prefix}/silences/new?recreate={}", s.id),
        "expire_action": format!("{prefix}/silences/{}/expire", s.id),
    })
}

/// The routing tree as nested lists (escaped here: it is inserted raw).
pub fn route_tree(root: &Arc<Route>) -> String {
    fn node(r: &Route, out: &mut String) {
        let esc = handlebars::html_escape;
        let matchers: Vec<String> = r.matchers.0.iter().map(|m| m.to_string()).collect();
        let what = if matchers.is_empty() {
            "(default route)".to_string()
        } else {
            format!("{{{}}}", matchers.join(", "))
        };
        let _ = write!(
            out,
            "<li><span class=\"route\">{}</span> → <strong>{}</strong>{}",
            esc(&what),
            esc(&r.opts.receiver),
            if r.continue_matching {
                " <em>continue</em>"
            } else {
                ""
            }
        );
        if !r.routes.is_empty() {
            out.push_str("<ul>");
            for c in &r.routes {
                node(c, out);
            }
            out.push_str("</ul>");
        }
        out.push_str("</li>");
    }
    let mut out = String::from("<ul>");
    node(root, &mut out);
    out.push_str("</ul>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_times_round_trip_in_utc() {
        let t: Timestamp = "2024-05-01T10:20:30Z".parse().unwrap();
        assert_eq!(form_time(t), "2024-05-01T10:20:30");
        assert_eq!(parse_form_time("2024-05-01T10:20:30").unwrap(), t);
        assert_eq!(
            parse_form_time("2024-05-01T10:20").unwrap().as_second(),
            t.as_second() - 30
        );
        assert!(parse_form_time("tomorrow").is_err());
    }

    #[test]
    fn ages() {
        let t: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        let later = |s: i64| Timestamp::from_second(t.as_second() + s).unwrap();
        assert_eq!(age(t, later(5)), "5s");
        assert_eq!(age(t, later(125)), "2m");
        assert_eq!(age(t, later(3 * 3600 + 60)), "3h 1m");
        assert_eq!(age(t, later(2 * 86_400 + 3600)), "2d 1h");
    }
}
