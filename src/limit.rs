//! `--alerts.per-alertname-limit` (`store.Alerts.WithPerAlertLimit`,
//! `limit.Bucket`): at most N alerts (fingerprints) per alert name. A
//! fingerprint already counted is always updated; a new one takes a free
//! place, or the place of the counted alert that ends first once that one
//! has ended; otherwise it is refused. The API still answers 200: a refused
//! alert is logged and counted in `alertmanager_alerts_limited_total`, as in
//! Alertmanager.

use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

use jiff::Timestamp;

use crate::model::Fingerprint;

/// The alerts counted for one alert name, by end time (the earliest is the
/// one a newcomer may replace).
#[derive(Default)]
struct Bucket {
    ends: HashMap<Fingerprint, Timestamp>,
    by_end: BTreeSet<(Timestamp, Fingerprint)>,
}

impl Bucket {
    fn upsert(
        &mut self,
        fp: Fingerprint,
        ends_at: Timestamp,
        capacity: usize,
        now: Timestamp,
    ) -> bool {
        if let Some(old) = self.ends.insert(fp, ends_at) {
            self.by_end.remove(&(old, fp));
            self.by_end.insert((ends_at, fp));
            return true;
        }
        if self.by_end.len() < capacity {
            self.by_end.insert((ends_at, fp));
            return true;
        }
        match self.by_end.first().copied() {
            Some(oldest) if oldest.0 < now => {
                self.by_end.remove(&oldest);
                self.ends.remove(&oldest.1);
                self.by_end.insert((ends_at, fp));
                true
            }
            _ => {
                self.ends.remove(&fp);
                false
            }
        }
    }

    /// Every counted alert has ended (`Bucket.IsStale`).
    fn is_stale(&self, now: Timestamp) -> bool {
        self.by_end.last().is_none_or(|(end, _)| *end < now)
    }
}

pub struct AlertNameLimiter {
    capacity: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl AlertNameLimiter {
    /// `None` for 0: no limit.
    pub fn new(capacity: usize) -> Option<AlertNameLimiter> {
        (capacity > 0).then(|| AlertNameLimiter {
            capacity,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Whether the alert (as it will be stored, after merging) may be
    /// stored; counts it if so.
    pub fn admit(&self, name: &str, fp: Fingerprint, ends_at: Timestamp, now: Timestamp) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        match buckets.get_mut(name) {
            Some(b) => b.upsert(fp, ends_at, self.capacity, now),
            None => {
                let mut b = Bucket::default();
                let ok = b.upsert(fp, ends_at, self.capacity, now);
                buckets.insert(name.to_string(), b);
                ok
            }
        }
    }

    /// Drops the names whose alerts have all ended (run with the alert GC).
    pub fn gc(&self, now: Timestamp) {
        self.buckets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, b| !b.is_stale(now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    #[test]
    fn refuses_new_fingerprints_past_the_limit_until_one_ends() {
        let l = AlertNameLimiter::new(2).unwrap();
        let now = t(100);
        assert!(l.admit("A", Fingerprint(1), t(200), now));
        assert!(l.admit("A", Fingerprint(2), t(300), now));
        assert!(!l.admit("A", Fingerprint(3), t(300), now), "full");
        assert!(l.admit("B", Fingerprint(3), t(300), now), "per name");
        assert!(
            l.admit("A", Fingerprint(1), t(250), now),
            "known one updates"
        );
        // Once the alert that ends first has ended, a newcomer takes its place.
        let later = t(260);
        assert!(l.admit("A", Fingerprint(3), t(400), later));
        assert!(!l.admit("A", Fingerprint(1), t(400), later), "replaced");
        assert!(!l.admit("A", Fingerprint(4), t(400), later));
    }

    #[test]
    fn gc_drops_names_whose_alerts_all_ended() {
        let l = AlertNameLimiter::new(1).unwrap();
        assert!(l.admit("A", Fingerprint(1), t(200), t(100)));
        l.gc(t(150));
        assert!(!l.admit("A", Fingerprint(2), t(300), t(150)));
        l.gc(t(250));
        assert_eq!(l.buckets.lock().unwrap().len(), 0);
        assert!(AlertNameLimiter::new(0).is_none());
    }
}
