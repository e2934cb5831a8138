use std::cmp::Ordering;
use std::sync::Arc;

use jiff::Timestamp;

use super::{Fingerprint, LabelSet, GO_ZERO_TIME};

/// An alert as Alertmanager holds it. There is no stored "state": whether it
/// fires or is resolved follows from `ends_at` and the clock, as in Go.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: LabelSet,
    pub annotations: LabelSet,
    pub starts_at: Timestamp,
    /// `GO_ZERO_TIME` when unknown (firing alerts inside notifications).
    pub ends_at: Timestamp,
    pub generator_url: Arc<str>,
    /// When Herald received this version; decides which copy wins a merge and
    /// whether a flushed resolved alert may be dropped from its group.
    pub updated_at: Timestamp,
    /// `ends_at` was synthesised from `resolve_timeout`, so an explicit end
    /// from the client must win over it in a merge.
    pub timeout: bool,
    pub fingerprint: Fingerprint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

impl Alert {
    /// Go's `Alert.ResolvedAt`: resolved once a set end time is not after `ts`.
    pub fn resolved_at(&self, ts: Timestamp) -> bool {
        self.ends_at != GO_ZERO_TIME && self.ends_at <= ts
    }

    pub fn status_at(&self, ts: Timestamp) -> AlertStatus {
        if self.resolved_at(ts) {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        }
    }

    /// Alertmanager's `Alert.Merge`: combines two versions of the same alert
    /// whose active ranges overlap. The younger version's content wins, the
    /// earliest start is kept, and an explicit end beats a synthesised one.
    pub fn merge(&self, newer: &Alert, now: Timestamp) -> Alert {
        let (a, o) = if newer.updated_at < self.updated_at {
            (newer, self)
        } else {
            (self, newer)
        };
        let mut res = o.clone();
        if a.starts_at < o.starts_at {
            res.starts_at = a.starts_at;
        }
        if o.resolved_at(now) {
            if a.resolved_at(now) && a.ends_at > o.ends_at {
                res.ends_at = a.ends_at;
            }
        } else if a.ends_at > o.ends_at && !a.timeout {
            res.ends_at = a.ends_at;
        }
        res
    }

    /// The store's rule for when a re-posted alert merges with the stored one
    /// instead of replacing it: their active ranges overlap.
    pub fn overlaps_stored(&self, old: &Alert) -> bool {
        (self.ends_at > old.starts_at && self.ends_at < old.ends_at)
            || (self.starts_at > old.starts_at && self.starts_at < old.ends_at)
    }
}

/// Alertmanager's order of alerts inside a notification: by `job`, then
/// `instance` (alerts lacking the label last), then by label set.
pub fn notification_order(a: &Alert, b: &Alert) -> Ordering {
    for key in ["job", "instance"] {
        match (a.labels.get(key), b.labels.get(key)) {
            (None, None) => continue,
            (None, Some(_)) => return Ordering::Greater,
            (Some(_), None) => return Ordering::Less,
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => {}
        }
    }
    if a.labels.before(&b.labels) {
        Ordering::Less
    } else if b.labels.before(&a.labels) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// The indices of `alerts` in notification order. The `job`/`instance`
/// lookups are done once per alert rather than once per comparison, which
/// matters when the API sorts groups of thousands.
pub fn notification_order_indices(alerts: &[Arc<Alert>]) -> Vec<usize> {
    let mut keyed: Vec<(Option<&str>, Option<&str>, usize)> = alerts
        .iter()
        .enumerate()
        .map(|(i, a)| (a.labels.get("job"), a.labels.get("instance"), i))
        .collect();
    let missing_last = |x: Option<&str>, y: Option<&str>| match (x, y) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.cmp(y),
    };
    keyed.sort_by(|a, b| {
        missing_last(a.0, b.0)
            .then_with(|| missing_last(a.1, b.1))
            .then_with(|| {
                let (la, lb) = (&alerts[a.2].labels, &alerts[b.2].labels);
                if la.before(lb) {
                    Ordering::Less
                } else if lb.before(la) {
                    Ordering::Greater
                } else {
                    Ordering::Equal
                }
            })
    });
    keyed.into_iter().map(|k| k.2).collect()
}

/// Sorts alerts into notification order (`types.AlertSlice`).
pub fn sort_for_notification(alerts: &mut Vec<Arc<Alert>>) {
    if alerts.len() < 2 {
        return;
    }
    let order = notification_order_indices(alerts);
    let mut taken: Vec<Option<Arc<Alert>>> = std::mem::take(alerts).into_iter().map(Some).collect();
    alerts.extend(order.into_iter().filter_map(|i| taken[i].take()));
}

/// An alert `{alertname="A"}` with times in Unix seconds, for unit tests.
#[cfg(test)]
pub(crate) fn test_alert(start: i64, end: i64, updated: i64, timeout: bool) -> Alert {
    let labels = LabelSet::from_strs([("alertname", "A")]);
    Alert {
        fingerprint: labels.fingerprint(),
        labels,
        annotations: LabelSet::default(),
        starts_at: Timestamp::from_second(start).unwrap(),
        ends_at: Timestamp::from_second(end).unwrap(),
        generator_url: Arc::from(""),
        updated_at: Timestamp::from_second(updated).unwrap(),
        timeout,
    }
}

/// An alert of random labels (names and values drawn from `texts`, up to
/// `max_labels - 1` of them), a one-key annotation, generator URL and
/// update time, for the tests that compare two readers or writers of
/// stored alerts.
#[cfg(test)]
pub(crate) fn random_alert(
    next: &mut impl FnMut() -> u64,
    texts: &[&str],
    max_labels: u64,
) -> Alert {
    let mut a = test_alert(
        (next() % 1000) as i64,
        1000 + (next() % 1000) as i64,
        (next() % 2000) as i64,
        next().is_multiple_of(2),
    );
    let n = next() % max_labels;
    let mut pick = || texts[(next() % texts.len() as u64) as usize];
    let labels: Vec<(String, String)> = (0..n)
        .map(|i| (format!("{}{i}", pick()), pick().to_string()))
        .collect();
    a.labels = LabelSet::from_strs(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    a.fingerprint = a.labels.fingerprint();
    a.annotations = LabelSet::from_strs([("summary", pick())]);
    a.generator_url = Arc::from(pick());
    a.updated_at = Timestamp::from_nanosecond((next() % 1_000_000_000_000) as i128).unwrap();
    a
}

#[cfg(test)]
mod tests {
    use super::test_alert as alert;
    use super::*;

    #[test]
    fn merge_keeps_earliest_start_and_explicit_end() {
        let now = Timestamp::from_second(1000).unwrap();
        let old = alert(100, 2000, 500, false);
        let new = alert(200, 1500, 900, true);
        let m = old.merge(&new, now);
        assert_eq!(m.starts_at.as_second(), 100);
        // The older, explicit, later end wins over the younger synthesised one.
        assert_eq!(m.ends_at.as_second(), 2000);
        assert_eq!(m.updated_at.as_second(), 900);
        // A synthesised older end does not win.
        let old_to = alert(100, 2000, 500, true);
        assert_eq!(old_to.merge(&new, now).ends_at.as_second(), 1500);
    }

    #[test]
    fn merge_of_resolutions_keeps_latest() {
        let now = Timestamp::from_second(1000).unwrap();
        let a = alert(100, 900, 500, false);
        let b = alert(100, 800, 600, false);
        assert_eq!(a.merge(&b, now).ends_at.as_second(), 900);
    }

    #[test]
    fn sort_by_job_then_instance() {
        let mk = |pairs: &[(&str, &str)]| {
            let mut a = alert(1, 2, 1, false);
            a.labels = LabelSet::from_strs(pairs.iter().copied());
            a
        };
        let mut v = [
            mk(&[("x", "1")]),
            mk(&[("job", "b")]),
            mk(&[("job", "a"), ("instance", "2")]),
            mk(&[("job", "a"), ("instance", "1")]),
            mk(&[("b", "1")]),
            mk(&[("a", "1")]),
        ];
        let mut fast: Vec<Arc<Alert>> = v.iter().rev().cloned().map(Arc::new).collect();
        v.sort_by(notification_order);
        sort_for_notification(&mut fast);
        let labels =
            |it: &mut dyn Iterator<Item = &Alert>| it.map(|a| a.labels.clone()).collect::<Vec<_>>();
        assert_eq!(
            labels(&mut fast.iter().map(|a| a.as_ref())),
            labels(&mut v.iter())
        );
        let jobs: Vec<_> = v
            .iter()
            .map(|a| {
                (
                    a.labels.value("job").to_string(),
                    a.labels.value("instance").to_string(),
                )
            })
            .collect();
        assert_eq!(
            jobs,
            vec![
                ("a".into(), "1".into()),
                ("a".into(), "2".into()),
                ("b".into(), "".into()),
                ("".into(), "".into()),
                ("".into(), "".into()),
                ("".into(), "".into())
            ]
        );
        // Without job and instance, Go's LabelSet.Before decides: the set
        // lacking the first differing name comes first: {x} < {b} < {a}.
        assert_eq!(v[3].labels.get("x"), Some("1"));
        assert_eq!(v[5].labels.get("a"), Some("1"));
    }
}
