//! The alerts and groups as the API and the web UI ask for them: the
//! query both take (`filter`, `receiver`, the state flags) and the groups
//! with each alert's silences and inhibitions. Both front ends build on it,
//! so neither depends on the other.

use jiff::Timestamp;
use regex::Regex;

use crate::app::App;
use crate::dispatch::GroupView;
use std::collections::{BTreeMap, HashMap};

use crate::config::ReceiverConfig;
use crate::matcher::{parse_matcher, MatchType, Matcher, Matchers};
use crate::model::{Alert, Fingerprint, GO_ZERO_TIME};

/// The query parameters the alert endpoints (and the web UI's alert page)
/// share.
pub(crate) struct AlertQuery {
    pub filter: Matchers,
    pub receiver: Option<Regex>,
    /// `receiver_matchers` (0.33): against the labels of the receivers an
    /// alert or group goes to.
    pub receiver_matchers: Vec<Matcher>,
    pub active: bool,
    pub silenced: bool,
    pub inhibited: bool,
    pub unprocessed: bool,
    pub muted: bool,
}

pub(crate) fn parse_query(raw: Option<String>) -> Result<AlertQuery, String> {
    let mut q = AlertQuery {
        filter: Matchers::default(),
        receiver: None,
        receiver_matchers: Vec::new(),
        active: true,
        silenced: true,
        inhibited: true,
        unprocessed: true,
        muted: true,
    };
    let raw = raw.unwrap_or_default();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        let flag = || go_swagger_bool(&v).unwrap_or(true);
        match k.as_ref() {
            "filter" => q.filter.0.extend(parse_filter(&v)?),
            "receiver" => {
                q.receiver = Some(
                    Regex::new(&format!("^(?:{v})$"))
                        .map_err(|e| format!("failed to parse receiver param: {e}"))?,
                );
            }
            "receiver_matchers" => q.receiver_matchers.push(
                parse_matcher(&v, "api")
                    .map_err(|e| format!("failed to parse receiver_matchers param: {e}"))?,
            ),
            "active" => q.active = flag(),
            "silenced" => q.silenced = flag(),
            "inhibited" => q.inhibited = flag(),
            "unprocessed" => q.unprocessed = flag(),
            "muted" => q.muted = flag(),
            _ => {}
        }
    }
    Ok(q)
}

/// A boolean query parameter as go-swagger binds it (`swag.ConvertBool`):
/// `None` for an empty value (the parameter's default applies), true for
/// "true", "1", "yes", "ok", "y", "on", "selected", "checked", "t" and
/// "enabled" in any case, false for anything else: never an error.
pub(crate) fn go_swagger_bool(v: &str) -> Option<bool> {
    if v.is_empty() {
        return None;
    }
    const TRUE: [&str; 10] = [
        "true", "1", "yes", "ok", "y", "on", "selected", "checked", "t", "enabled",
    ];
    Some(TRUE.iter().any(|t| t.eq_ignore_ascii_case(v)))
}

/// One `filter=` value; an empty one is refused as Alertmanager's matcher
/// parser refuses it.
pub(crate) fn parse_filter(v: &str) -> Result<Vec<crate::matcher::Matcher>, String> {
    if v.is_empty() {
        return Err("bad matcher format: ".into());
    }
    // One matcher per `filter` value (`compat.Matcher`), not a list.
    Ok(vec![parse_matcher(v, "api").map_err(|e| e.to_string())?])
}

impl AlertQuery {
    /// `api.alertFilter`, first half: not yet ended and matching the filter.
    pub(crate) fn accepts(&self, a: &Alert, now: Timestamp) -> bool {
        if a.ends_at != GO_ZERO_TIME && a.ends_at < now {
            return false;
        }
        self.filter.matches(&a.labels)
    }

    /// Second half: the alert's state is one the flags ask for
    /// (`active`, `silenced`, `inhibited`, `muted`).
    pub(crate) fn wants(&self, s: &Suppression) -> bool {
        !(!self.active && !s.suppressed()
            || !self.silenced && !s.silenced_by.is_empty()
            || !self.inhibited && s.inhibited_by.is_some()
            || !self.muted && !s.muted_by.is_empty())
    }

    /// Whether a state flag is off, so that [`Self::wants`] can refuse
    /// an alert.
    pub(crate) fn filters_by_state(&self) -> bool {
        !(self.active && self.silenced && self.inhibited && self.muted)
    }

    pub(crate) fn receiver_ok(&self, name: &str) -> bool {
        self.receiver.as_ref().is_none_or(|r| r.is_match(name))
    }

    /// `receiver_matchers` against one receiver's labels; a receiver the
    /// config does not know (`None`) matches no matcher.
    pub(crate) fn receiver_labels_ok(&self, labels: Option<&ReceiverLabels>) -> bool {
        self.receiver_matchers.is_empty()
            || labels.is_some_and(|l| match_filter_labels(&self.receiver_matchers, l))
    }
}

/// A receiver's labels (with the implied `name`).
pub(crate) type ReceiverLabels = BTreeMap<String, String>;

/// The config's receivers' labels by receiver name.
pub(crate) fn receiver_labels(receivers: &[ReceiverConfig]) -> HashMap<&str, ReceiverLabels> {
    receivers
        .iter()
        .map(|r| (r.name.as_str(), r.api_labels()))
        .collect()
}

/// Alertmanager's `matchFilterLabels`: like matching a label set, except
/// that a negative matcher with an empty value accepts any present label
/// (even one whose value is empty).
pub(crate) fn match_filter_labels(matchers: &[Matcher], labels: &ReceiverLabels) -> bool {
    matchers.iter().all(|m| {
        let v = labels.get(&*m.name);
        let negative = matches!(m.kind, MatchType::NotEqual | MatchType::NotRegexp);
        match (negative, m.value.is_empty(), v) {
            (true, true, Some(_)) | (false, true, None) => true,
            _ => m.matches(v.map(String::as_str).unwrap_or("")),
        }
    })
}

/// Per alert of a group: the silences and the inhibiting alert muting it.
pub(crate) type GroupStatuses = Vec<(Vec<String>, Option<Fingerprint>)>;

/// The aggregation groups `GET /api/v2/alerts/groups` answers with for a
/// query, each with its alerts' silences and inhibitions (alerts the
/// query's flags exclude dropped, and groups left empty with them).
pub(crate) fn query_groups(
    app: &App,
    q: &AlertQuery,
    now: Timestamp,
) -> (Vec<GroupView>, Vec<GroupStatuses>) {
    let rt = app.runtime();
    let silences = app.silences.query(now);
    let mut groups = query_group_views(app, q, now);
    let mut statuses: Vec<GroupStatuses> = Vec::with_capacity(groups.len());
    groups.retain_mut(|g| {
        let mut by = Vec::with_capacity(g.alerts.len());
        g.alerts.retain(|a| {
            let status = Suppression {
                silenced_by: silences.silenced_by_alert(a),
                inhibited_by: rt.inhibitor.inhibited_by(&a.labels, now),
                muted_by: &g.muted_by,
            };
            let keep = q.wants(&status);
            if keep {
                by.push((status.silenced_by, status.inhibited_by));
            }
            keep
        });
        let keep = !g.alerts.is_empty();
        if keep {
            statuses.push(by);
        }
        keep
    });
    (groups, statuses)
}

/// The aggregation groups whose receiver the query asks for, holding the
/// alerts its filter accepts, before the state flags are applied (see
/// [`query_groups`]).
pub(crate) fn query_group_views(app: &App, q: &AlertQuery, now: Timestamp) -> Vec<GroupView> {
    let rt = app.runtime();
    let rcv_labels = receiver_labels(&rt.config.config.receivers);
    rt.dispatcher.groups(
        |r| {
            q.receiver_ok(&r.opts.receiver)
                && q.receiver_labels_ok(rcv_labels.get(r.opts.receiver.as_str()))
        },
        |a| q.accepts(a, now),
    )
}

/// Why an alert is suppressed now, as its API `status` reports it.
pub(crate) struct Suppression<'a> {
    pub(crate) silenced_by: Vec<String>,
    pub(crate) inhibited_by: Option<Fingerprint>,
    pub(crate) muted_by: &'a [String],
}

impl Suppression<'_> {
    pub(crate) fn suppressed(&self) -> bool {
        !self.silenced_by.is_empty() || self.inhibited_by.is_some() || !self.muted_by.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(matchers: &str, labels: &[(&str, &str)]) -> bool {
        let m = crate::matcher::parse_matchers(matchers).unwrap();
        let l = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        match_filter_labels(&m, &l)
    }

    #[test]
    fn receiver_matchers_follow_match_filter_labels() {
        let l = [("name", "db"), ("team", "data"), ("empty", "")];
        assert!(ok(r#"team="data""#, &l));
        assert!(ok(r#"name=~"d.*",team!="ops""#, &l));
        assert!(!ok(r#"team="ops""#, &l));
        assert!(!ok(r#"tier="gold""#, &l));
        // A negative matcher with an empty value accepts a present label,
        // even one whose value is empty.
        assert!(ok(r#"empty!="""#, &l));
        assert!(ok(r#"empty!~"""#, &l));
        assert!(!ok(r#"absent!="""#, &l));
        assert!(ok(r#"absent="""#, &l));
        let q = parse_query(Some("receiver_matchers=team%3D%22data%22".into())).unwrap();
        assert!(q.receiver_labels_ok(Some(
            &l.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        )));
        assert!(
            !q.receiver_labels_ok(None),
            "an unknown receiver has no labels"
        );
        let e = parse_query(Some("receiver_matchers=%3Dbad".into()))
            .err()
            .unwrap();
        assert!(
            e.starts_with("failed to parse receiver_matchers param: "),
            "{e}"
        );
    }
}
