//! Inhibition (`inhibit/inhibit.go`): an alert matching a rule's target
//! matchers is muted while an alert matching its source matchers fires with
//! the same values for the rule's `equal` labels.
//!
//! Sources are indexed per rule by their `equal` values, each key holding
//! the set of source alerts, so a lookup touches only the sources that could
//! inhibit (Alertmanager's linear scan made `GET /api/v2/alerts` slow with
//! many rules; its first index held one source per key and lost inhibitions
//! when that one resolved).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use crate::config::InhibitRule as RuleConfig;
use crate::matcher::{MatchType, Matcher, Matchers};
use crate::model::{Alert, Fingerprint, LabelSet};

/// The values of a rule's `equal` labels; a missing label is "".
type EqualKey = Vec<Arc<str>>;

pub struct InhibitRule {
    pub source: Matchers,
    pub target: Matchers,
    pub equal: Vec<String>,
    sources: Mutex<HashMap<EqualKey, HashMap<Fingerprint, Arc<Alert>>>>,
}

impl InhibitRule {
    pub fn from_config(c: &RuleConfig) -> InhibitRule {
        let side =
            |eq: &Option<std::collections::BTreeMap<String, String>>,
             re: &Option<std::collections::BTreeMap<String, crate::config::AnchoredRegex>>,
             ms: &Option<Matchers>| {
                let mut out = Vec::new();
                for (k, v) in eq.iter().flatten() {
                    out.extend(Matcher::new(MatchType::Equal, k, v));
                }
                for (k, v) in re.iter().flatten() {
                    // Validated when the config was parsed.
                    out.extend(Matcher::new(MatchType::Regexp, k, &v.source));
                }
                out.extend(ms.iter().flat_map(|m| m.0.iter().cloned()));
                Matchers(out)
            };
        InhibitRule {
            source: side(&c.source_match, &c.source_match_re, &c.source_matchers),
            target: side(&c.target_match, &c.target_match_re, &c.target_matchers),
            equal: c.equal.clone().unwrap_or_default(),
            sources: Mutex::new(HashMap::new()),
        }
    }

    fn key(&self, labels: &LabelSet) -> EqualKey {
        self.equal
            .iter()
            .map(|n| Arc::from(labels.value(n)))
            .collect()
    }

    /// The source alert inhibiting `labels`, if any. When the target also
    /// matches the source side, sources that match the target side too are
    /// ignored: an alert must not inhibit itself or its peers.
    fn inhibiting_source(&self, labels: &LabelSet, now: Timestamp) -> Option<Fingerprint> {
        if !self.target.matches(labels) {
            return None;
        }
        let exclude_two_sided = self.source.matches(labels);
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        sources
            .get(&self.key(labels))?
            .values()
            .filter(|s| !s.resolved_at(now))
            .filter(|s| !(exclude_two_sided && self.target.matches(&s.labels)))
            .map(|s| s.fingerprint)
            // Deterministic when several sources qualify.
            .min()
    }
}

/// All inhibit rules of a config, with their source indexes.
#[derive(Default)]
pub struct Inhibitor {
    rules: Vec<InhibitRule>,
    /// The rules' `name`s, for the event recorder's inhibition events.
    names: Vec<String>,
}

impl Inhibitor {
    pub fn new(rules: &[RuleConfig]) -> Inhibitor {
        Inhibitor {
            rules: rules.iter().map(InhibitRule::from_config).collect(),
            names: rules
                .iter()
                .map(|r| r.name.clone().unwrap_or_default())
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Records a stored alert (every alert passes here, as Alertmanager's
    /// inhibitor subscribes to the store): sources join their rule's index.
    pub fn observe(&self, alert: &Arc<Alert>) {
        for r in &self.rules {
            if r.source.matches(&alert.labels) {
                let key = r.key(&alert.labels);
                let mut sources = r.sources.lock().unwrap_or_else(|e| e.into_inner());
                sources
                    .entry(key)
                    .or_default()
                    .insert(alert.fingerprint, alert.clone());
            }
        }
    }

    /// `Inhibitor.Mutes`: the fingerprint of the first source inhibiting
    /// `labels` at `now`.
    pub fn inhibited_by(&self, labels: &LabelSet, now: Timestamp) -> Option<Fingerprint> {
        self.rules
            .iter()
            .find_map(|r| r.inhibiting_source(labels, now))
    }

    /// Forgets sources resolved at `now` (with the store's alert GC).
    pub fn gc(&self, now: Timestamp) {
        for r in &self.rules {
            let mut sources = r.sources.lock().unwrap_or_else(|e| e.into_inner());
            sources.retain(|_, set| {
                set.retain(|_, a| !a.resolved_at(now));
                !set.is_empty()
            });
        }
    }
}

impl crate::model::Muter for Inhibitor {
    fn retain_unmuted(&self, alerts: &mut Vec<Arc<Alert>>, now: Timestamp) {
        if !self.is_empty() {
            alerts.retain(|a| {
                let found = self
                    .rules
                    .iter()
                    .enumerate()
                    .find_map(|(i, r)| r.inhibiting_source(&a.labels, now).map(|fp| (i, fp)));
                let Some((i, source)) = found else {
                    return true;
                };
                crate::eventrecorder::record(|| {
                    let r = &self.rules[i];
                    crate::eventrecorder::events::inhibition_muted_alert(
                        self.names.get(i).map_or("", String::as_str),
                        &r.source,
                        &r.target,
                        &r.equal,
                        a,
                        source,
                    )
                });
                false
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inhibitor(yaml: &str) -> Inhibitor {
        let rules: Vec<RuleConfig> = serde_saphyr::from_str(yaml).unwrap();
        Inhibitor::new(&rules)
    }

    fn alert(labels: &[(&str, &str)], ends: i64) -> Arc<Alert> {
        let mut a = crate::model::test_alert(0, ends, 0, false);
        a.labels = LabelSet::from_strs(labels.iter().copied());
        a.fingerprint = a.labels.fingerprint();
        Arc::new(a)
    }

    fn ls(labels: &[(&str, &str)]) -> LabelSet {
        LabelSet::from_strs(labels.iter().copied())
    }

    const NOW: i64 = 1000;
    fn now() -> Timestamp {
        Timestamp::from_second(NOW).unwrap()
    }

    const RULE: &str = "- source_matchers: ['severity=\"critical\"']\n  target_matchers: ['severity=\"warning\"']\n  equal: [instance]\n";

    #[test]
    fn source_mutes_target_with_equal_labels() {
        let ih = inhibitor(RULE);
        let src = alert(
            &[
                ("alertname", "Down"),
                ("severity", "critical"),
                ("instance", "a"),
            ],
            2000,
        );
        ih.observe(&src);
        assert_eq!(
            ih.inhibited_by(
                &ls(&[
                    ("alertname", "Slow"),
                    ("severity", "warning"),
                    ("instance", "a")
                ]),
                now()
            ),
            Some(src.fingerprint)
        );
        assert_eq!(
            ih.inhibited_by(
                &ls(&[
                    ("alertname", "Slow"),
                    ("severity", "warning"),
                    ("instance", "b")
                ]),
                now()
            ),
            None,
            "different instance"
        );
        assert_eq!(
            ih.inhibited_by(
                &ls(&[
                    ("alertname", "Slow"),
                    ("severity", "info"),
                    ("instance", "a")
                ]),
                now()
            ),
            None,
            "not a target"
        );
    }

    #[test]
    fn missing_equal_labels_are_equal_as_empty() {
        let ih = inhibitor(RULE);
        ih.observe(&alert(
            &[("alertname", "Down"), ("severity", "critical")],
            2000,
        ));
        assert!(
            ih.inhibited_by(&ls(&[("severity", "warning")]), now())
                .is_some(),
            "both lack instance"
        );
        assert!(ih
            .inhibited_by(&ls(&[("severity", "warning"), ("instance", "x")]), now())
            .is_none());
    }

    #[test]
    fn resolved_sources_stop_inhibiting_but_others_still_do() {
        let ih = inhibitor(RULE);
        let old = alert(
            &[
                ("alertname", "Down"),
                ("severity", "critical"),
                ("instance", "a"),
            ],
            500,
        );
        let live = alert(
            &[
                ("alertname", "Disk"),
                ("severity", "critical"),
                ("instance", "a"),
            ],
            2000,
        );
        ih.observe(&old);
        let target = ls(&[("severity", "warning"), ("instance", "a")]);
        assert_eq!(
            ih.inhibited_by(&target, now()),
            None,
            "the only source resolved at 500"
        );
        ih.observe(&live);
        assert_eq!(
            ih.inhibited_by(&target, now()),
            Some(live.fingerprint),
            "a second source with the same key"
        );
        ih.gc(now());
        assert_eq!(ih.inhibited_by(&target, now()), Some(live.fingerprint));
    }

    #[test]
    fn no_self_inhibition() {
        // Source and target sides both match alerts with severity=~"crit|warn".
        let ih = inhibitor("- source_matchers: ['severity=~\"crit|warn\"']\n  target_matchers: ['severity=~\"warn|crit\"']\n  equal: [instance]\n");
        let a = alert(&[("severity", "crit"), ("instance", "a")], 2000);
        ih.observe(&a);
        assert_eq!(
            ih.inhibited_by(&a.labels, now()),
            None,
            "an alert matching both sides does not inhibit itself"
        );
        // A target that matches only the target side is inhibited.
        let ih = inhibitor("- source_matchers: ['severity=\"crit\"']\n  target_matchers: ['team=\"x\"']\n  equal: [instance]\n");
        let s = alert(
            &[("severity", "crit"), ("instance", "a"), ("team", "y")],
            2000,
        );
        ih.observe(&s);
        assert!(ih
            .inhibited_by(&ls(&[("team", "x"), ("instance", "a")]), now())
            .is_some());
        // ...but a target matching both sides ignores sources matching both.
        let both = alert(
            &[("severity", "crit"), ("instance", "a"), ("team", "x")],
            2000,
        );
        ih.observe(&both);
        assert_eq!(
            ih.inhibited_by(
                &ls(&[("severity", "crit"), ("team", "x"), ("instance", "a")]),
                now()
            ),
            Some(s.fingerprint)
        );
    }

    #[test]
    fn legacy_match_syntax() {
        let ih = inhibitor("- source_match: {severity: critical}\n  target_match_re: {severity: 'warn.*'}\n  equal: [cluster]\n");
        ih.observe(&alert(&[("severity", "critical"), ("cluster", "eu")], 2000));
        assert!(ih
            .inhibited_by(&ls(&[("severity", "warning"), ("cluster", "eu")]), now())
            .is_some());
        assert!(
            ih.inhibited_by(&ls(&[("severity", "xwarning"), ("cluster", "eu")]), now())
                .is_none(),
            "anchored"
        );
    }
}
