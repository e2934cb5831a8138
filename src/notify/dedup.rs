//! The dedup stage (`notify/dedup_stage.go`): compare what would be sent now
//! with the notification log and send only when something changed or the
//! repeat interval elapsed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use xxhash_rust::xxh64::Xxh64;

use super::{Integration, NotifyCtx, NotifyError, Stage};
use crate::model::{Alert, Fingerprint};
use crate::nflog::{Entry, NotificationLog, Told};

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
/// forgets a resolved alert once a flush succeeds, so the newer entry does
/// not supersede us while the receiver may still think one of our
/// `resolved` alerts fires: when the entry lists it firing (its node had
/// not heard of the resolution), or when this node told the receiver it
/// fires and the entry does not say it resolved (its node forgot the
/// alert, or our "firing" went out after its notification).
pub fn superseded(entry: Option<&Entry>, flush: Timestamp, resolved: &[u64], told: &Told) -> bool {
    entry.is_some_and(|e| {
        e.timestamp > flush
            && !resolved.iter().any(|h| {
                e.firing.contains(h)
                    || told.unlogged.contains(h)
                    || (told.firing.contains(h) && !e.resolved.contains(h))
            })
    })
}

/// The dedup decision in a cluster as on a single node: Alertmanager's
/// `needsUpdate`, unless a peer's newer notification supersedes ours, plus
/// one repair the log alone cannot see. A "firing" this node delivered
/// after a newer notification (its entry was dropped) is what the receiver
/// last heard, so the resolution is sent even though the log says the
/// cluster already resolved the alert. With `alertmanager_rules` (an
/// Alertmanager replica is a member), `needsUpdate` alone: Herald's rules
/// compare entry timestamps as flush times, which Alertmanager's are not.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    entry: Option<&Entry>,
    told: &Told,
    firing: &[u64],
    resolved: &[u64],
    send_resolved: bool,
    repeat: Duration,
    now: Timestamp,
    alertmanager_rules: bool,
) -> Option<NotificationReason> {
    if alertmanager_rules {
        return needs_update(entry, firing, resolved, send_resolved, repeat, now);
    }
    if superseded(entry, now, resolved, told) {
        return None;
    }
    needs_update(entry, firing, resolved, send_resolved, repeat, now).or_else(|| {
        (send_resolved
            && resolved
                .iter()
                .any(|h| told.unlogged.binary_search(h).is_ok()))
        .then_some(if firing.is_empty() {
            NotificationReason::AllAlertsResolved
        } else {
            NotificationReason::SomeAlertsResolved
        })
    })
}

/// Herald only: our copy of a firing alert is stale when a peer's entry
/// (not ours) notified it resolved and we have heard nothing of the alert
/// since that peer's flush. Replicas get Prometheus' batches tens of
/// milliseconds apart; a node flushing in that gap would otherwise tell the
/// receiver "firing" after the peer's "resolved" (and leave the receiver
/// wrong if its own resolution is then lost). The alert is held back for
/// this flush, not dropped: the resolution arrives in a moment, or, if it
/// really fires again, Prometheus' next send updates our copy, and the
/// peer that resolved it notifies it as new anyway.
pub fn stale_copy(entry: Option<&Entry>, told: &Told, hash: u64, updated_at: Timestamp) -> bool {
    !told.entry_is_ours
        && entry
            .is_some_and(|e| e.resolved.binary_search(&hash).is_ok() && updated_at < e.timestamp)
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
    let told = nflog.told(&ctx.group_key, &integration.key);
    decide(
        entry.as_ref(),
        &told,
        &ctx.firing_hashes,
        &ctx.resolved_hashes,
        integration.send_resolved,
        ctx.repeat_interval,
        ctx.now,
        ctx.alertmanager_rules,
    )
    .is_none()
}

pub struct DedupStage {
    pub nflog: Arc<dyn NotificationLog>,
    pub integration: Arc<Integration>,
    /// Where a flush with nothing to send is recorded as deduplicated
    /// (the history coalesces repeats of it).
    pub history: Option<Arc<crate::history::Recorder>>,
}

#[async_trait::async_trait]
impl Stage for DedupStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let entry = self.nflog.query(&ctx.group_key, &self.integration.key);
        let told = self.nflog.told(&ctx.group_key, &self.integration.key);
        let (mut firing, mut resolved) = (Vec::new(), Vec::new());
        let mut held_back = false;
        let mut alerts = alerts;
        if !ctx.muted_resolved.is_empty() {
            // Resolved alerts let through muted (`notify::mute`): this
            // integration tells only those it told were firing.
            let told_firing: HashSet<u64> = entry
                .as_ref()
                .map(|e| e.firing.iter().copied().collect())
                .unwrap_or_default();
            let marked: HashSet<Fingerprint> = ctx.muted_resolved.iter().copied().collect();
            alerts.retain(|a| {
                !marked.contains(&a.fingerprint) || told_firing.contains(&hash_alert(a))
            });
            if alerts.is_empty() {
                // As when every alert is muted: no decision, no log entry.
                return Ok(alerts);
            }
        }
        alerts.retain(|a| {
            let h = hash_alert(a);
            if a.resolved_at(ctx.now) {
                resolved.push(h);
            } else if !ctx.alertmanager_rules && stale_copy(entry.as_ref(), &told, h, a.updated_at)
            {
                held_back = true;
                return false;
            } else {
                firing.push(h);
            }
            true
        });
        let reason = decide(
            entry.as_ref(),
            &told,
            &firing,
            &resolved,
            self.integration.send_resolved,
            ctx.repeat_interval,
            ctx.now,
            ctx.alertmanager_rules,
        )
        // Only stale copies left: nothing to say (not "all resolved").
        .filter(|_| !(held_back && firing.is_empty() && resolved.is_empty()));
        ctx.firing_hashes = firing;
        ctx.resolved_hashes = resolved;
        ctx.reason = reason;
        if let (None, Some(history)) = (reason, &self.history) {
            if !alerts.is_empty() {
                history.record(
                    &crate::history::Flush {
                        receiver: &ctx.receiver,
                        integration: Some((
                            self.integration.key.integration,
                            self.integration.key.index,
                        )),
                        group_key: &ctx.group_key,
                        group_labels: &ctx.group_labels,
                        alerts: &alerts,
                        now: ctx.now,
                    },
                    crate::history::Report::of(crate::history::Outcome::Deduplicated),
                );
            }
        }
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
        assert!(
            !superseded(None, flush, &[], &Told::default()),
            "nothing logged yet"
        );
        assert!(
            !superseded(Some(&entry(&[1], &[], 990)), flush, &[], &Told::default()),
            "an older entry is compared by content, as in Alertmanager"
        );
        assert!(
            superseded(
                Some(&entry(&[1, 2], &[], 1001)),
                flush,
                &[3],
                &Told::default()
            ),
            "a peer flushed after us and notified: our view is stale"
        );
        assert!(
            !superseded(
                Some(&entry(&[1, 2], &[], 1001)),
                flush,
                &[2],
                &Told::default()
            ),
            "the peer still told the receiver 2 fires: our resolution is news"
        );
    }

    /// What this node told the receiver itself decides when the log
    /// cannot: a stale copy is held back, a resolution after our own late
    /// "firing" is sent.
    #[test]
    fn own_deliveries_override_the_log_where_the_receiver_heard_otherwise() {
        let flush = Timestamp::from_second(1000).unwrap();
        let peer = entry(&[1], &[2], 990);
        let ours = Told {
            entry_is_ours: true,
            ..Told::default()
        };
        let at = Timestamp::from_second;
        assert!(stale_copy(
            Some(&peer),
            &Told::default(),
            2,
            at(980).unwrap()
        ));
        assert!(
            !stale_copy(Some(&peer), &Told::default(), 2, at(995).unwrap()),
            "heard of it again after the peer resolved it: it fires again"
        );
        assert!(
            !stale_copy(Some(&peer), &ours, 2, at(980).unwrap()),
            "our own entry"
        );
        assert!(!stale_copy(
            Some(&peer),
            &Told::default(),
            1,
            at(980).unwrap()
        ));
        let told = |firing: &[u64], unlogged: &[u64]| Told {
            firing: firing.to_vec(),
            unlogged: unlogged.to_vec(),
            entry_is_ours: false,
        };
        let newer = entry(&[1], &[], 1001);
        assert!(superseded(Some(&newer), flush, &[3], &told(&[], &[])));
        assert!(
            !superseded(Some(&newer), flush, &[3], &told(&[3], &[])),
            "we said 3 fires and the newer entry does not say it resolved"
        );
        let resolved_newer = entry(&[1], &[3], 1001);
        assert!(superseded(
            Some(&resolved_newer),
            flush,
            &[3],
            &told(&[3], &[])
        ));
        assert!(!superseded(
            Some(&resolved_newer),
            flush,
            &[3],
            &told(&[3], &[3])
        ));
        let decide_at =
            |e: &Entry, t: &Told| super::decide(Some(e), t, &[1], &[3], true, REPEAT, flush, false);
        let older_resolved = entry(&[1], &[3], 990);
        assert_eq!(decide_at(&older_resolved, &told(&[], &[])), None);
        assert_eq!(
            decide_at(&older_resolved, &told(&[3], &[3])),
            Some(NotificationReason::SomeAlertsResolved),
            "our 'firing' went out after the resolution the log shows"
        );
        assert_eq!(
            super::decide(
                Some(&older_resolved),
                &told(&[3], &[3]),
                &[1],
                &[3],
                false,
                REPEAT,
                flush,
                false
            ),
            None,
            "send_resolved off: nothing to repair"
        );
    }

    /// With an Alertmanager replica in the cluster, an entry stamped after
    /// our flush is no proof of a newer view (Alertmanager stamps the time
    /// it logged, after its delivery), so the decision is `needsUpdate`'s:
    /// an alert the entry lacks is sent now, not a group interval later.
    #[test]
    fn alertmanager_members_get_alertmanagers_rules() {
        let flush = Timestamp::from_second(1000).unwrap();
        let logged_later = entry(&[1], &[], 1001);
        let at = |am: bool| {
            super::decide(
                Some(&logged_later),
                &Told::default(),
                &[1, 2],
                &[],
                true,
                REPEAT,
                flush,
                am,
            )
        };
        assert_eq!(at(false), None, "Herald's rule: a newer view was sent");
        assert_eq!(at(true), Some(NotificationReason::NewAlertsAdded));
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

/// Replays, step by step, cluster histories the HA soak produced, where a
/// resolved alert was left firing at the receiver. Two replicas, each with
/// its own log and its own copy of the group; every flush time, delivery
/// and gossip exchange happens in the order written, so nothing depends
/// on timing.
#[cfg(test)]
mod cluster_history {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use super::*;
    use crate::model::LabelSet;
    use crate::nflog::{MemNotificationLog, ReceiverKey};

    const GROUP: &str = "{}:{alertname=\"G\"}";

    struct Nobody;

    #[async_trait::async_trait]
    impl super::super::Notifier for Nobody {
        async fn notify(&self, _: &NotifyCtx, _: &[Arc<Alert>]) -> Result<(), NotifyError> {
            Ok(())
        }
    }

    /// A replica: its notification log and its dedup stage.
    struct Node {
        log: Arc<MemNotificationLog>,
        stage: DedupStage,
    }

    impl Node {
        fn new() -> Node {
            let log = Arc::new(MemNotificationLog::default());
            Node {
                stage: DedupStage {
                    nflog: log.clone(),
                    integration: Arc::new(Integration {
                        notifier: Arc::new(Nobody),
                        key: ReceiverKey {
                            group_name: "r".into(),
                            integration: "webhook",
                            index: 0,
                        },
                        send_resolved: true,
                    }),
                    history: None,
                },
                log,
            }
        }

        /// The dedup stage of a flush at `flush` ms: what it would send.
        async fn flush(&self, flush: i64, alerts: &[Arc<Alert>]) -> (NotifyCtx, Vec<Arc<Alert>>) {
            let mut ctx = NotifyCtx {
                group_key: GROUP.into(),
                group_labels: Default::default(),
                route_labels: Default::default(),
                receiver: "r".into(),
                now: ms(flush),
                repeat_interval: Duration::from_secs(3600),
                deadline: tokio::time::Instant::now() + Duration::from_secs(10),
                cancel: Default::default(),
                stopping: Default::default(),
                firing_hashes: vec![],
                resolved_hashes: vec![],
                reason: None,
                mute_time_intervals: vec![],
                active_time_intervals: vec![],
                marker: Default::default(),
                receiver_data: Default::default(),
                muted_resolved: Vec::new(),
                alertmanager_rules: false,
            };
            let sent = self
                .stage
                .exec(&mut ctx, alerts.to_vec())
                .await
                .expect("dedup never fails");
            (ctx, sent)
        }

        /// The set-notifies stage after a delivery.
        async fn log(&self, ctx: &NotifyCtx) {
            self.log
                .log(
                    GROUP,
                    &self.stage.integration.key,
                    ctx.firing_hashes.clone(),
                    ctx.resolved_hashes.clone(),
                    Default::default(),
                    ctx.now,
                    Duration::from_secs(7200),
                )
                .await
                .expect("in-memory log");
        }

        /// A node about to retry (or done waiting on a claim) checks
        /// whether the cluster already said what it would.
        fn covered(&self, ctx: &NotifyCtx) -> bool {
            covered_by_peer(self.stage.nflog.as_ref(), ctx, &self.stage.integration)
        }

        /// A gossip exchange: the peer's entries merged into ours.
        fn hears(&self, peer: &Node) {
            for (k, e) in peer.log.snapshot() {
                self.log.merge(&k, e, ms(0)).expect("in-memory log");
            }
        }
    }

    fn ms(t: i64) -> Timestamp {
        Timestamp::from_millisecond(t).expect("time")
    }

    /// Alert `instance` of group G as a node holds it: received at
    /// `updated` ms, resolved at `ends` ms if set.
    fn alert(instance: &str, updated: i64, ends: Option<i64>) -> Arc<Alert> {
        let labels = LabelSet::from_strs([("alertname", "G"), ("instance", instance)]);
        Arc::new(Alert {
            fingerprint: labels.fingerprint(),
            labels,
            annotations: LabelSet::default(),
            starts_at: ms(0),
            ends_at: ends.map_or(ms(updated + 300_000), ms),
            generator_url: Arc::from(""),
            updated_at: ms(updated),
            timeout: ends.is_none(),
        })
    }

    /// What the receiver last heard of each alert.
    #[derive(Default)]
    struct Receiver(Mutex<HashMap<String, &'static str>>);

    impl Receiver {
        fn accept(&self, ctx: &NotifyCtx, sent: &[Arc<Alert>]) {
            let mut last = self.0.lock().expect("receiver");
            for a in sent {
                let state = if a.resolved_at(ctx.now) {
                    "resolved"
                } else {
                    "firing"
                };
                last.insert(a.labels.get("instance").unwrap_or("").to_string(), state);
            }
        }

        fn last(&self, instance: &str) -> Option<&'static str> {
            self.0.lock().expect("receiver").get(instance).copied()
        }
    }

    /// G90 of a soak run: B flushed 5 ms after A, before Prometheus'
    /// resolving batch reached it. A's entry (resolution of r, older than
    /// B's flush) made B's stale copy of r look new, and B sent it firing.
    /// B's repair then waited on a claim until A notified the group's next
    /// change, an entry newer than B's flush that no longer mentions r
    /// (A had forgotten it), and the repair was dropped as superseded.
    #[tokio::test]
    async fn a_stale_copy_is_not_notified_and_never_leaves_a_resolution_unsaid() {
        let (a, b, rx) = (Node::new(), Node::new(), Receiver::default());
        // r fires; A notifies it.
        let (ctx, sent) = a
            .flush(2_100, &[alert("i0", 2_000, None), alert("r", 2_000, None)])
            .await;
        assert!(ctx.reason.is_some());
        rx.accept(&ctx, &sent);
        a.log(&ctx).await;
        b.hears(&a);
        // r resolves; A has the batch at 4000 and notifies at 4010.
        let (ctx, sent) = a
            .flush(
                4_010,
                &[alert("i0", 4_000, None), alert("r", 4_000, Some(4_000))],
            )
            .await;
        assert_eq!(ctx.reason, Some(NotificationReason::SomeAlertsResolved));
        rx.accept(&ctx, &sent);
        a.log(&ctx).await;
        b.hears(&a);
        // B flushes at 4015 and gets the batch only at 4030.
        let (ctx, sent) = b
            .flush(4_015, &[alert("i0", 2_010, None), alert("r", 2_010, None)])
            .await;
        if ctx.reason.is_some() {
            rx.accept(&ctx, &sent);
            b.log(&ctx).await;
            a.hears(&b);
        }
        // B's next flush has the resolution; its delivery waits (on A's
        // claim on the same content) while A notifies a new alert s.
        let (repair, repair_sent) = b
            .flush(
                6_015,
                &[alert("i0", 6_000, None), alert("r", 4_030, Some(4_000))],
            )
            .await;
        let (ctx, sent) = a
            .flush(
                12_010,
                &[alert("i0", 12_000, None), alert("s", 11_000, None)],
            )
            .await;
        assert_eq!(ctx.reason, Some(NotificationReason::NewAlertsAdded));
        rx.accept(&ctx, &sent);
        a.log(&ctx).await;
        b.hears(&a);
        if repair.reason.is_some() && !b.covered(&repair) {
            rx.accept(&repair, &repair_sent);
        }
        assert_eq!(rx.last("r"), Some("resolved"), "r left firing");
        assert_eq!(rx.last("s"), Some("firing"));
    }

    /// G268 of a soak run: B's notification of a new alert r was held
    /// back 10 s (a claim), and went out after A had notified r's
    /// resolution. B's entry, older by flush time, was dropped, so B's next
    /// flush found the log saying "resolved" and sent nothing.
    #[tokio::test]
    async fn a_late_firing_delivery_is_followed_by_its_resolution() {
        let (a, b, rx) = (Node::new(), Node::new(), Receiver::default());
        let (ctx, sent) = a.flush(0, &[alert("i0", 0, None)]).await;
        rx.accept(&ctx, &sent);
        a.log(&ctx).await;
        b.hears(&a);
        // r fires at 7000; B's flush at 7100 would notify it, but its
        // delivery is held up until 17300.
        let (late, late_sent) = b
            .flush(7_100, &[alert("i0", 7_050, None), alert("r", 7_050, None)])
            .await;
        assert_eq!(late.reason, Some(NotificationReason::NewAlertsAdded));
        // r resolves at 8000; A (whose own firing notification failed)
        // notifies the resolution at 17200.
        let (ctx, sent) = a
            .flush(
                17_200,
                &[alert("i0", 17_000, None), alert("r", 8_000, Some(8_000))],
            )
            .await;
        assert_eq!(ctx.reason, Some(NotificationReason::SomeAlertsResolved));
        rx.accept(&ctx, &sent);
        a.log(&ctx).await;
        b.hears(&a);
        // B's claim wait ends; the delivery goes out, then is logged.
        rx.accept(&late, &late_sent);
        b.log(&late).await;
        // B's next flush holds r resolved.
        let (ctx, sent) = b
            .flush(
                17_310,
                &[alert("i0", 17_050, None), alert("r", 8_050, Some(8_000))],
            )
            .await;
        if ctx.reason.is_some() {
            rx.accept(&ctx, &sent);
            b.log(&ctx).await;
        }
        assert_eq!(rx.last("r"), Some("resolved"), "r left firing");
    }
}
