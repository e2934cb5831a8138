//! The notification log: what was last sent for each (group, receiver,
//! integration), so the dedup stage can decide whether to notify again.
//!
//! Behind a trait because its backing changes: in memory now, in SQLite with
//! the persistence work, replicated with clustering.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;

/// Identifies one integration of a receiver (`nflogpb.Receiver`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReceiverKey {
    pub group_name: String,
    pub integration: &'static str,
    pub index: usize,
}

impl ReceiverKey {
    /// `<receiver>/<integration>/<index>`, the nflog key suffix.
    pub fn id(&self) -> String {
        format!("{}/{}/{}", self.group_name, self.integration, self.index)
    }
}

/// What was notified last. Hash sets are kept sorted for subset checks.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub firing: Vec<u64>,
    pub resolved: Vec<u64>,
    pub timestamp: Timestamp,
    pub expires_at: Timestamp,
    /// What the integration keeps for its next notification of the group
    /// (Slack's `threadTs`/`channelId` for `update_message`).
    pub receiver_data: ReceiverData,
}

/// An integration's own state in the entry (nflog.proto `receiver_data`).
pub type ReceiverData = BTreeMap<String, ReceiverDataValue>;

/// `nflogpb.ReceiverDataValue`: one of three kinds of value.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ReceiverDataValue {
    #[serde(rename = "str_val")]
    Str(String),
    #[serde(rename = "int_val")]
    Int(i64),
    #[serde(rename = "double_val")]
    Double(f64),
}

impl ReceiverDataValue {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ReceiverDataValue::Str(s) => Some(s),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NflogError {
    #[error("notification log storage: {0}")]
    Storage(crate::write_error::WriteError),
}

#[async_trait::async_trait]
pub trait NotificationLog: Send + Sync {
    fn query(&self, group_key: &str, receiver: &ReceiverKey) -> Option<Entry>;
    /// Records a notification. `expiry` is how long the entry must outlive
    /// `now` (Alertmanager: 2 × repeat_interval, capped by retention).
    /// Resolves once the entry is durable (for a log that keeps it), so
    /// the runtime is not held while it is written.
    // The fields of nflogpb.Entry, one by one, as Alertmanager's Log takes them.
    #[allow(clippy::too_many_arguments)]
    async fn log(
        &self,
        group_key: &str,
        receiver: &ReceiverKey,
        firing: Vec<u64>,
        resolved: Vec<u64>,
        receiver_data: ReceiverData,
        now: Timestamp,
        expiry: Duration,
    ) -> Result<(), NflogError>;
    /// Drops expired entries; returns how many.
    fn gc(&self, now: Timestamp) -> usize;
    /// Alertmanager's gossip merge of a peer's entry under its state key:
    /// it replaces ours when it is newer and not expired. Returns whether
    /// it changed our log (then a node passes it on).
    fn merge(&self, key: &str, entry: Entry, now: Timestamp) -> Result<bool, NflogError>;
    /// Every entry by state key: the log's part of a full-state exchange.
    fn snapshot(&self) -> Vec<(String, Entry)>;
    /// Registers a callback told of every entry logged on this node (not
    /// of merges from peers): the cluster gossips them.
    fn on_local_log(&self, _f: LocalLog) {}
    /// What this node itself last told the receiver, which the log alone
    /// cannot show in a cluster (see [`Told`]).
    fn told(&self, _group_key: &str, _receiver: &ReceiverKey) -> Told {
        Told::default()
    }
    /// `query` for a reader that is not a notification (the web UI's "last
    /// notified"): not counted in `alertmanager_nflog_queries_total`,
    /// which counts the pipeline's look-ups.
    fn peek(&self, group_key: &str, receiver: &ReceiverKey) -> Option<Entry>;
}

/// Herald only: what this node's own deliveries told the receiver about
/// a (group, integration), kept beside the log because the log keeps only
/// the entry with the latest flush time, while the receiver keeps the state
/// of the latest delivery. In a cluster the two differ: a node whose
/// delivery was held back (a peer's claim, a failing receiver) can deliver
/// after a peer's notification with a later flush time. Not persisted or
/// gossiped: after a restart the log's own rules apply.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Told {
    /// Alerts this node's last delivery told the receiver were firing
    /// (sorted).
    pub firing: Vec<u64>,
    /// Those of `firing` whose entry was dropped because the log already
    /// held a newer one: this node's "firing" reached the receiver after
    /// that newer notification, which the log cannot show (sorted).
    pub unlogged: Vec<u64>,
    /// The entry under the key is this node's own, not a peer's.
    pub entry_is_ours: bool,
}

#[derive(Default)]
struct OwnDeliveries {
    firing: BTreeSet<u64>,
    unlogged: BTreeSet<u64>,
    entry_is_ours: bool,
}

/// A callback for notification-log entries written on this node.
pub type LocalLog = Box<dyn Fn(&str, &Entry) + Send + Sync>;

/// Alertmanager's notification-log metrics (`alertmanager_nflog_*`).
#[derive(Clone)]
pub struct NflogStats {
    pub queries: prometheus_client::metrics::counter::Counter,
    /// Entries recorded (durable ones after their commit). Herald only:
    /// it tells a test or an operator that a sent notification is logged.
    pub entries_written: prometheus_client::metrics::counter::Counter,
    pub query_duration: prometheus_client::metrics::histogram::Histogram,
    pub gc_duration: prometheus_client::metrics::histogram::Histogram,
}

impl Default for NflogStats {
    fn default() -> Self {
        use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
        NflogStats {
            queries: Default::default(),
            entries_written: Default::default(),
            query_duration: Histogram::new(exponential_buckets(0.000_001, 4.0, 10)),
            gc_duration: Histogram::new(exponential_buckets(0.000_1, 4.0, 10)),
        }
    }
}

#[derive(Default)]
pub struct MemNotificationLog {
    entries: Mutex<HashMap<String, Entry>>,
    /// What this node's deliveries told the receiver, per state key.
    own: Mutex<HashMap<String, OwnDeliveries>>,
    pub stats: NflogStats,
}

/// `<groupKey>:<receiver>/<integration>/<index>`, Alertmanager's nflog key.
pub fn state_key(group_key: &str, r: &ReceiverKey) -> String {
    format!("{group_key}:{}", r.id())
}

/// Records the time from its creation into a histogram when dropped.
struct Observe<'a>(
    &'a prometheus_client::metrics::histogram::Histogram,
    std::time::Instant,
);

impl Drop for Observe<'_> {
    fn drop(&mut self) {
        self.0.observe(self.1.elapsed().as_secs_f64());
    }
}

impl MemNotificationLog {
    /// The first half of `log`, shared by every log kept in memory: the
    /// entry to record under its state key, hashes sorted (subset checks
    /// search them). None when the log holds a newer entry for the key (a
    /// concurrent flush's), which a write at `now` must not replace. A log
    /// that writes the entry elsewhere does so between this and `insert`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn prepare(
        &self,
        group_key: &str,
        receiver: &ReceiverKey,
        mut firing: Vec<u64>,
        mut resolved: Vec<u64>,
        receiver_data: ReceiverData,
        now: Timestamp,
        expiry: Duration,
    ) -> Option<(String, Entry)> {
        let key = state_key(group_key, receiver);
        if self.is_newer_than(&key, now) {
            // Delivered all the same: remember what the receiver heard.
            self.delivered(&key, &firing, &resolved, false);
            return None;
        }
        firing.sort_unstable();
        resolved.sort_unstable();
        let entry = Entry {
            firing,
            resolved,
            timestamp: now,
            expires_at: now.checked_add(expiry).unwrap_or(now),
            receiver_data,
        };
        Some((key, entry))
    }

    /// The second half of `log`: records a prepared entry, unless a newer
    /// one arrived meanwhile (never go back in time).
    pub(crate) fn insert(&self, key: String, entry: Entry) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries
            .get(&key)
            .is_some_and(|e| e.timestamp > entry.timestamp)
        {
            drop(entries);
            self.delivered(&key, &entry.firing, &entry.resolved, false);
            return;
        }
        self.delivered(&key, &entry.firing, &entry.resolved, true);
        entries.insert(key, entry);
        self.stats.entries_written.inc();
    }

    /// Records a delivery of this node (`logged`: its entry is now the
    /// log's). A delivery lists every alert the node's group still holds,
    /// so one it leaves out was forgotten there and needs no repair from
    /// this node: the record is replaced, not grown. Called with the
    /// entries lock held or not; `own` is always locked last.
    fn delivered(&self, key: &str, firing: &[u64], resolved: &[u64], logged: bool) {
        let told: BTreeSet<u64> = firing
            .iter()
            .filter(|h| !resolved.contains(h))
            .copied()
            .collect();
        let mut own = self.own.lock().unwrap_or_else(|e| e.into_inner());
        let o = own.entry(key.to_string()).or_default();
        o.unlogged = if logged {
            BTreeSet::new()
        } else {
            told.clone()
        };
        o.firing = told;
        o.entry_is_ours = logged || o.entry_is_ours;
    }

    /// What this node told the receiver under a state key.
    pub fn told_key(&self, key: &str) -> Told {
        self.own
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .map(|o| Told {
                firing: o.firing.iter().copied().collect(),
                unlogged: o.unlogged.iter().copied().collect(),
                entry_is_ours: o.entry_is_ours,
            })
            .unwrap_or_default()
    }

    fn is_newer_than(&self, key: &str, now: Timestamp) -> bool {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).is_some_and(|e| e.timestamp > now)
    }

    /// The entry under a state key, if any.
    pub fn query_key(&self, key: &str) -> Option<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Puts back entries read from storage at startup.
    pub fn restore(&self, entries: Vec<(String, Entry)>) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for (key, mut e) in entries {
            e.firing.sort_unstable();
            e.resolved.sort_unstable();
            map.insert(key, e);
        }
    }
}

#[async_trait::async_trait]
impl NotificationLog for MemNotificationLog {
    fn query(&self, group_key: &str, receiver: &ReceiverKey) -> Option<Entry> {
        let started = std::time::Instant::now();
        self.stats.queries.inc();
        let _observe = Observe(&self.stats.query_duration, started);
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&state_key(group_key, receiver))
            .cloned()
    }

    async fn log(
        &self,
        group_key: &str,
        receiver: &ReceiverKey,
        firing: Vec<u64>,
        resolved: Vec<u64>,
        receiver_data: ReceiverData,
        now: Timestamp,
        expiry: Duration,
    ) -> Result<(), NflogError> {
        if let Some((key, entry)) = self.prepare(
            group_key,
            receiver,
            firing,
            resolved,
            receiver_data,
            now,
            expiry,
        ) {
            self.insert(key, entry);
        }
        Ok(())
    }

    fn merge(&self, key: &str, mut entry: Entry, now: Timestamp) -> Result<bool, NflogError> {
        if entry.expires_at < now {
            return Ok(false);
        }
        entry.firing.sort_unstable();
        entry.resolved.sort_unstable();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries
            .get(key)
            .is_some_and(|cur| cur.timestamp >= entry.timestamp)
        {
            return Ok(false);
        }
        if let Some(o) = self
            .own
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(key)
        {
            o.entry_is_ours = false;
        }
        entries.insert(key.to_string(), entry);
        self.stats.entries_written.inc();
        Ok(true)
    }

    fn peek(&self, group_key: &str, receiver: &ReceiverKey) -> Option<Entry> {
        self.query_key(&state_key(group_key, receiver))
    }

    fn told(&self, group_key: &str, receiver: &ReceiverKey) -> Told {
        self.told_key(&state_key(group_key, receiver))
    }

    fn snapshot(&self) -> Vec<(String, Entry)> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, e)| (k.clone(), e.clone()))
            .collect()
    }

    fn gc(&self, now: Timestamp) -> usize {
        let _observe = Observe(&self.stats.gc_duration, std::time::Instant::now());
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let before = entries.len();
        entries.retain(|_, e| e.expires_at > now);
        self.own
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| entries.contains_key(k));
        before - entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(ts: i64, firing: &[u64]) -> Entry {
        Entry {
            firing: firing.to_vec(),
            resolved: vec![],
            timestamp: Timestamp::from_second(ts).unwrap(),
            expires_at: Timestamp::from_second(ts + 100).unwrap(),
            receiver_data: Default::default(),
        }
    }

    /// Entries from peers: the newest per key wins whatever the order, and
    /// an expired one is ignored.
    #[test]
    fn gossip_merge_keeps_the_newest_entry() {
        let now = Timestamp::from_second(50).unwrap();
        let (a, b) = (MemNotificationLog::default(), MemNotificationLog::default());
        let versions = [entry(10, &[1]), entry(30, &[2, 1]), entry(20, &[3])];
        for e in &versions {
            a.merge("k", e.clone(), now).unwrap();
        }
        for e in versions.iter().rev() {
            b.merge("k", e.clone(), now).unwrap();
        }
        assert_eq!(a.query_key("k"), b.query_key("k"));
        assert_eq!(
            a.query_key("k").unwrap().firing,
            vec![1, 2],
            "sorted, newest"
        );
        assert!(
            !a.merge("k", entry(30, &[9]), now).unwrap(),
            "same age: ours stays"
        );
        let late = Timestamp::from_second(500).unwrap();
        assert!(!a.merge("k2", entry(40, &[1]), late).unwrap(), "expired");
        assert!(a.query_key("k2").is_none());
    }

    /// A delivery whose entry loses to a newer one is still remembered as
    /// what the receiver heard last; a later resolution clears it.
    #[tokio::test]
    async fn own_deliveries_are_remembered_even_when_their_entry_is_dropped() {
        let log = MemNotificationLog::default();
        let r = ReceiverKey {
            group_name: "r".into(),
            integration: "webhook",
            index: 0,
        };
        let key = state_key("g", &r);
        let at = |s| Timestamp::from_second(s).unwrap();
        let day = Duration::from_secs(86_400);
        log.log("g", &r, vec![2, 1], vec![], Default::default(), at(10), day)
            .await
            .unwrap();
        let told = log.told("g", &r);
        assert_eq!((told.firing, told.unlogged), (vec![1, 2], vec![]));
        assert!(told.entry_is_ours);
        // A peer's newer entry replaces ours; our late delivery of 3 loses
        // to it in the log, but the receiver heard it.
        assert!(log.merge(&key, entry(20, &[1]), at(20)).unwrap());
        assert!(!log.told("g", &r).entry_is_ours);
        log.log("g", &r, vec![1, 3], vec![], Default::default(), at(15), day)
            .await
            .unwrap();
        assert_eq!(
            log.query_key(&key).unwrap().timestamp,
            at(20),
            "newest kept"
        );
        let told = log.told("g", &r);
        assert_eq!(
            (told.firing, told.unlogged),
            (vec![1, 3], vec![1, 3]),
            "2 is no longer in our group: nothing of ours to repair"
        );
        // Our resolution of 3 is what the receiver heard.
        log.log("g", &r, vec![1], vec![3], Default::default(), at(30), day)
            .await
            .unwrap();
        let told = log.told("g", &r);
        assert_eq!((told.firing, told.unlogged), (vec![1], vec![]));
        assert_eq!(log.gc(at(1_000_000)), 1);
        assert_eq!(
            log.told("g", &r),
            Told::default(),
            "forgotten with the entry"
        );
    }
}
