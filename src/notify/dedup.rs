//! The dedup stage (`notify/dedup_stage.go`): compare what would be sent now
//! with the notification log and send only when something changed or the
//! repeat interval elapsed.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use xxhash_rust::xxh64::Xxh64;

use super::{Integration, NotifyCtx, NotifyError, Stage};
use crate::model::Alert;
use crate::nflog::{Entry, NotificationLog};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotificationReason {
    FirstNotification,
    NewAlertsAdded,
    SomeAlertsResolved,
    AllAlertsResolved,
    RepeatIntervalElapsed,
}

impl NotificationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationReason::FirstNotification => "first notification",
            NotificationReason::NewAlertsAdded => "new alerts added",
            NotificationReason::SomeAlertsResolved => "some alerts resolved",
            NotificationReason::AllAlertsResolved => "all alerts resolved",
            NotificationReason::RepeatIntervalElapsed => "repeat interval elapsed",
        }
    }
}

/// `notify.hashAlert`: xxhash64 over the sorted label pairs with `0xff`
/// separators. Not the fingerprint: the nflog stores these values, so they
/// must match Alertmanager's for a shared or migrated log to dedup.
pub fn hash_alert(a: &Alert) -> u64 {
    let mut h = Xxh64::new(0);
    for (n, v) in a.labels.iter() {
        h.update(n.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xff]);
    }
    h.digest()
}

fn is_subset(sorted_set: &[u64], items: &[u64]) -> bool {
    items.iter().all(|x| sorted_set.binary_search(x).is_ok())
}

/// The decision of `DedupStage.needsUpdate`, with the reason newer
/// Alertmanager releases report as `notification_reason`.
pub fn needs_update(
    entry: Option<&Entry>,
    firing: &[u64],
    resolved: &[u64],
    send_resolved: bool,
    repeat: Duration,
    now: Timestamp,
) -> Option<NotificationReason> {
    let Some(e) = entry else {
        return (!firing.is_empty()).then_some(NotificationReason::FirstNotification);
    };
    if !is_subset(&e.firing, firing) {
        return Some(if e.firing.is_empty() {
            NotificationReason::FirstNotification
        } else {
            NotificationReason::NewAlertsAdded
        });
    }
    // All resolved: notify regardless of send_resolved so the log is cleared.
    if firing.is_empty() {
        return (!e.firing.is_empty()).then_some(NotificationReason::AllAlertsResolved);
    }
    if send_resolved && !is_subset(&e.resolved, resolved) {
        return Some(NotificationReason::SomeAlertsResolved);
    }
    let threshold = now.checked_sub(repeat).unwrap_or(now);
    (e.timestamp < threshold).then_some(NotificationReason::RepeatIntervalElapsed)
}

/// Herald only: a peer already notified a newer view of the group than
/// ours. Entries carry the flush time of the notification they log, so an
/// entry later than our flush means our alerts are a stale snapshot; sending
/// them would repeat (or undo) what the cluster has said. Our next flush
/// compares again, so a firing alert the peer had not seen is delayed by
/// one group interval, never dropped. Not so a resolution: the group
/// forgets a resolved alert once a flush succeeds, so a newer entry that
/// still lists one of our `resolved` alerts as firing (its node had not
/// heard of the resolution yet) does not supersede us.
pub fn superseded(entry: Option<&Entry>, flush: Timestamp, resolved: &[u64]) -> bool {
    entry.is_some_and(|e| e.timestamp > flush && !resolved.iter().any(|h| e.firing.contains(h)))
}

/// In a cluster, while this node waits on a peer's claim or retries a
/// failing receiver: has the cluster meanwhile notified what this flush
/// would (the same alerts, or a newer view)? Then sending is a duplicate,
/// or worse, a stale message after a newer one.
pub fn covered_by_peer(
    nflog: &dyn NotificationLog,
    ctx: &NotifyCtx,
    integration: &Integration,
) -> bool {
    let entry = nflog.query(&ctx.group_key, &integration.key);
    superseded(entry.as_ref(), ctx.now, &ctx.resolved_hashes)
        || needs_update(
            entry.as_ref(),
            &ctx.firing_hashes,
            &ctx.resolved_hashes,
            integration.send_resolved,
            ctx.repeat_interval,
            ctx.now,
        )
        .is_none()
}

pub struct DedupStage {
    pub nflog: Arc<dyn NotificationLog>,
    pub integration: Arc<Integration>,
}

#[async_trait::async_trait]
impl Stage for DedupStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let (mut firing, mut resolved) = (Vec::new(), Vec::new());
        for a in &alerts {
            if a.resolved_at(ctx.now) {
                resolved.push(hash_alert(a));
            } else {
                firing.push(hash_alert(a));
            }
        }
        let entry = self.nflog.query(&ctx.group_key, &self.integration.key);
        let reason = needs_update(
            entry.as_ref(),
            &firing,
            &resolved,
            self.integration.send_resolved,
            ctx.repeat_interval,
            ctx.now,
        );
        let reason = reason.filter(|_| !superseded(entry.as_ref(), ctx.now, &resolved));
        ctx.firing_hashes = firing;
        ctx.resolved_hashes = resolved;
        ctx.reason = reason;
        // The integration's own state from the last entry, handed on to
        // the next (Alertmanager's nflog.Store): one store per integration.
        ctx.receiver_data = Arc::new(std::sync::Mutex::new(
            entry.map(|e| e.receiver_data).unwrap_or_default(),
        ));
        Ok(if reason.is_some() { alerts } else { Vec::new() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(firing: &[u64], resolved: &[u64], ts: i64) -> Entry {
        Entry {
            firing: firing.to_vec(),
            resolved: resolved.to_vec(),
            timestamp: Timestamp::from_second(ts).unwrap(),
            expires_at: Timestamp::from_second(ts + 10_000).unwrap(),
            receiver_data: Default::default(),
        }
    }

    const REPEAT: Duration = Duration::from_secs(100);

    fn decide(
        e: Option<&Entry>,
        f: &[u64],
        r: &[u64],
        send_resolved: bool,
        now: i64,
    ) -> Option<NotificationReason> {
        needs_update(
            e,
            f,
            r,
            send_resolved,
            REPEAT,
            Timestamp::from_second(now).unwrap(),
        )
    }

    #[test]
    fn a_peers_newer_notification_supersedes_our_snapshot() {
        let flush = Timestamp::from_second(1000).unwrap();
        assert!(!superseded(None, flush, &[]), "nothing logged yet");
        assert!(
            !superseded(Some(&entry(&[1], &[], 990)), flush, &[]),
            "an older entry is compared by content, as in Alertmanager"
        );
        assert!(
            superseded(Some(&entry(&[1, 2], &[], 1001)), flush, &[3]),
            "a peer flushed after us and notified: our view is stale"
        );
        assert!(
            !superseded(Some(&entry(&[1, 2], &[], 1001)), flush, &[2]),
            "the peer still told the receiver 2 fires: our resolution is news"
        );
    }

    #[test]
    fn decisions_match_alertmanager() {
        use NotificationReason::*;
        assert_eq!(decide(None, &[1], &[], true, 1000), Some(FirstNotification));
        assert_eq!(
            decide(None, &[], &[1], true, 1000),
            None,
            "only resolved alerts, never notified"
        );
        let e = entry(&[1, 2], &[], 950);
        assert_eq!(
            decide(Some(&e), &[1, 2, 3], &[], true, 1000),
            Some(NewAlertsAdded)
        );
        assert_eq!(
            decide(Some(&e), &[1], &[2], true, 1000),
            Some(SomeAlertsResolved)
        );
        assert_eq!(
            decide(Some(&e), &[1], &[2], false, 1000),
            None,
            "send_resolved off"
        );
        assert_eq!(
            decide(Some(&e), &[], &[1, 2], false, 1000),
            Some(AllAlertsResolved)
        );
        assert_eq!(decide(Some(&e), &[1, 2], &[], true, 1000), None);
        assert_eq!(
            decide(Some(&e), &[1, 2], &[], true, 1051),
            Some(RepeatIntervalElapsed)
        );
        let empty = entry(&[], &[1], 950);
        assert_eq!(decide(Some(&empty), &[], &[1], true, 1000), None);
        assert_eq!(
            decide(Some(&empty), &[4], &[], true, 1000),
            Some(FirstNotification)
        );
    }

    #[test]
    fn alert_hash_is_xxhash_of_labels() {
        let a = crate::model::test_alert(0, 0, 0, false);
        let mut bytes = b"alertname\xffA\xff".to_vec();
        assert_eq!(hash_alert(&a), xxhash_rust::xxh64::xxh64(&bytes, 0));
        bytes.push(0);
        assert_ne!(hash_alert(&a), xxhash_rust::xxh64::xxh64(&bytes, 0));
    }
}
