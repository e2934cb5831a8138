//! The alert store (`provider/mem`): every alert Herald holds, by
//! fingerprint, with Alertmanager's merge rules.
//!
//! Sharded by fingerprint so concurrent `POST /api/v2/alerts` requests do not
//! contend on one lock; alerts are `Arc`s shared with aggregation groups.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use jiff::Timestamp;

use crate::model::{Alert, Fingerprint};

const SHARDS: usize = 64;

type Shard = HashMap<Fingerprint, Arc<Alert>, fnv::FnvBuildHasher>;

pub struct AlertStore {
    shards: Vec<Mutex<Shard>>,
}

impl Default for AlertStore {
    fn default() -> Self {
        AlertStore {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
}

/// What `put` did, for the caller's metrics and subscribers.
pub struct Stored {
    pub alert: Arc<Alert>,
    pub existed: bool,
}

impl AlertStore {
    fn shard(&self, fp: Fingerprint) -> MutexGuard<'_, Shard> {
        // A poisoned shard only means a panic elsewhere mid-insert of a
        // single entry; the map itself is still consistent.
        self.shards[(fp.0 as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Stores an alert, merging it with the stored version when their
    /// active ranges overlap (`mem.Alerts.Put`).
    pub fn put(&self, alert: Alert, now: Timestamp) -> Stored {
        let fp = alert.fingerprint;
        let mut shard = self.shard(fp);
        let (merged, existed) = merge_stored(&shard, alert, now);
        let merged = Arc::new(merged);
        shard.insert(fp, merged.clone());
        Stored {
            alert: merged,
            existed,
        }
    }

    /// `put`, but only when `admit` accepts the alert as it would be
    /// stored (after merging); `None` when refused, leaving the store as it
    /// was. `admit` runs under the shard's lock.
    pub fn put_if(
        &self,
        alert: Alert,
        now: Timestamp,
        admit: impl FnOnce(&Alert) -> bool,
    ) -> Option<Stored> {
        let fp = alert.fingerprint;
        let mut shard = self.shard(fp);
        let (merged, existed) = merge_stored(&shard, alert, now);
        if !admit(&merged) {
            return None;
        }
        let merged = Arc::new(merged);
        shard.insert(fp, merged.clone());
        Some(Stored {
            alert: merged,
            existed,
        })
    }

    pub fn get(&self, fp: Fingerprint) -> Option<Arc<Alert>> {
        self.shard(fp).get(&fp).cloned()
    }

    /// A point-in-time copy of every alert (the `Arc`s, not the alerts).
    pub fn snapshot(&self) -> Vec<Arc<Alert>> {
        let mut out = Vec::new();
        for s in &self.shards {
            out.extend(
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned(),
            );
        }
        out
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes alerts resolved at `now` (`--alerts.gc-interval`). Aggregation
    /// groups hold their own references, so a removed alert can still be
    /// notified as resolved.
    pub fn gc(&self, now: Timestamp) -> Vec<Arc<Alert>> {
        let mut removed = Vec::new();
        for s in &self.shards {
            let mut shard = s.lock().unwrap_or_else(|e| e.into_inner());
            shard.retain(|_, a| {
                let keep = !a.resolved_at(now);
                if !keep {
                    removed.push(a.clone());
                }
                keep
            });
        }
        removed
    }
}

/// The alert as it will be stored: merged with the stored version when
/// their active ranges overlap; and whether one was stored.
fn merge_stored(shard: &Shard, alert: Alert, now: Timestamp) -> (Alert, bool) {
    match shard.get(&alert.fingerprint) {
        Some(old) if alert.overlaps_stored(old) => (old.merge(&alert, now), true),
        Some(_) => (alert, true),
        None => (alert, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelSet;

    fn alert(start: i64, end: i64, updated: i64) -> Alert {
        crate::model::test_alert(start, end, updated, false)
    }

    #[test]
    fn overlapping_versions_merge_and_refires_replace() {
        let s = AlertStore::default();
        let now = Timestamp::from_second(150).unwrap();
        assert!(!s.put(alert(100, 300, 100), now).existed);
        let st = s.put(alert(120, 400, 150), now);
        assert!(st.existed);
        assert_eq!(st.alert.starts_at.as_second(), 100, "earliest start kept");
        // A re-fire after the old one ended does not overlap: replaced.
        let st = s.put(alert(500, 900, 500), now);
        assert_eq!(st.alert.starts_at.as_second(), 500);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn gc_removes_resolved_only() {
        let s = AlertStore::default();
        let now = Timestamp::from_second(1000).unwrap();
        s.put(alert(100, 200, 100), now);
        let mut other = alert(100, 5000, 100);
        other.labels = LabelSet::from_strs([("alertname", "B")]);
        other.fingerprint = other.labels.fingerprint();
        s.put(other, now);
        assert_eq!(s.gc(now).len(), 1);
        assert_eq!(s.len(), 1);
    }
}
