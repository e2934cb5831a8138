//! Notification template data (`template.Data`). The Go-template engine that
//! renders users' `*.tmpl` files builds on this; the webhook payload is this
//! data serialised as JSON.

use std::sync::Arc;

use jiff::Timestamp;
use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use crate::model::{format_rfc3339_nano, Alert, LabelSet};

/// One alert as templates and the webhook see it.
pub(crate) struct TemplateAlert {
    pub(crate) status: &'static str,
    pub(crate) labels: LabelSet,
    pub(crate) annotations: LabelSet,
    pub(crate) starts_at: Timestamp,
    pub(crate) ends_at: Timestamp,
    pub(crate) generator_url: Arc<str>,
    pub(crate) fingerprint: String,
}

impl Serialize for TemplateAlert {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Alert", 7)?;
        st.serialize_field("status", self.status)?;
        st.serialize_field("labels", &self.labels)?;
        st.serialize_field("annotations", &self.annotations)?;
        st.serialize_field("startsAt", &format_rfc3339_nano(self.starts_at))?;
        st.serialize_field("endsAt", &format_rfc3339_nano(self.ends_at))?;
        st.serialize_field("generatorURL", &*self.generator_url)?;
        st.serialize_field("fingerprint", &self.fingerprint)?;
        st.end()
    }
}

/// `template.Data`, field order as Go marshals it.
#[derive(Serialize)]
pub(crate) struct Data {
    pub(crate) receiver: String,
    pub(crate) status: &'static str,
    pub(crate) alerts: Vec<TemplateAlert>,
    /// Go always sends it, `unknown` when no stage decided a reason.
    #[serde(rename = "notification_reason", serialize_with = "reason_or_unknown")]
    pub(crate) notification_reason: Option<&'static str>,
    #[serde(rename = "groupLabels")]
    pub(crate) group_labels: LabelSet,
    #[serde(rename = "commonLabels")]
    pub(crate) common_labels: LabelSet,
    #[serde(rename = "commonAnnotations")]
    pub(crate) common_annotations: LabelSet,
    /// The group's route labels, rendered by the dispatcher (0.34); raw
    /// while the dispatcher renders them.
    #[serde(rename = "routeLabels")]
    pub(crate) route_labels: LabelSet,
    #[serde(rename = "externalURL")]
    pub(crate) external_url: String,
}

/// Alertmanager's `ReasonUnknown.String()`.
pub(crate) const REASON_UNKNOWN: &str = "unknown";

fn reason_or_unknown<S: Serializer>(r: &Option<&'static str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(r.unwrap_or(REASON_UNKNOWN))
}

/// Pairs present with the same value in every set.
fn common(sets: impl Iterator<Item = LabelSet>) -> LabelSet {
    let mut iter = sets;
    let Some(first) = iter.next() else {
        return LabelSet::default();
    };
    let mut keep: Vec<(Arc<str>, Arc<str>)> = first.pairs().to_vec();
    for s in iter {
        keep.retain(|(n, v)| s.get(n) == Some(v.as_ref()));
        if keep.is_empty() {
            break;
        }
    }
    LabelSet::from_pairs(keep)
}

/// Escapes regex metacharacters like Go's `regexp.QuoteMeta`, which
/// Alertmanager applies to the receiver name in template data.
fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if r"\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Data {
    pub(crate) fn new(
        receiver: &str,
        group_labels: &LabelSet,
        alerts: &[Arc<Alert>],
        now: Timestamp,
        external_url: &str,
    ) -> Data {
        let talerts: Vec<TemplateAlert> = alerts
            .iter()
            .map(|a| TemplateAlert {
                status: a.status_at(now).as_str(),
                labels: a.labels.clone(),
                annotations: a.annotations.clone(),
                starts_at: a.starts_at,
                ends_at: a.ends_at,
                generator_url: a.generator_url.clone(),
                fingerprint: a.fingerprint.to_string(),
            })
            .collect();
        let status = if talerts.iter().any(|a| a.status == "firing") {
            "firing"
        } else {
            "resolved"
        };
        Data {
            receiver: quote_meta(receiver),
            status,
            notification_reason: None,
            common_labels: common(alerts.iter().map(|a| a.labels.clone())),
            common_annotations: common(alerts.iter().map(|a| a.annotations.clone())),
            alerts: talerts,
            group_labels: group_labels.clone(),
            route_labels: LabelSet::default(),
            external_url: external_url.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_meta_like_go() {
        assert_eq!(quote_meta("team.x"), r"team\.x");
        assert_eq!(quote_meta("a+b(c)"), r"a\+b\(c\)");
    }

    #[test]
    fn common_pairs() {
        let a = LabelSet::from_strs([("a", "1"), ("b", "2")]);
        let b = LabelSet::from_strs([("a", "1"), ("b", "3")]);
        assert_eq!(
            common([a, b].into_iter()),
            LabelSet::from_strs([("a", "1")])
        );
    }
}
