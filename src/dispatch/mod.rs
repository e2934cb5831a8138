//! The dispatcher (`dispatch/dispatch.go`): routes each alert into
//! aggregation groups and runs one timer per group that flushes it through
//! the notification pipeline on Alertmanager's schedule:
//! `group_wait` after creation (at once for an alert older than that), then
//! every `group_interval`.

mod index;
mod route;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use route::{GroupBy, Route, RouteOpts};

use crate::clock::Clock;
use crate::metrics::Metrics;
use crate::model::{sort_for_notification, Alert, Fingerprint, LabelSet};
use crate::notify::{GroupMarker, NotifyCtx, Stage};
use crate::tasks::Tasks;
use crate::template::Templates;

const SHARDS: usize = 32;

/// Identifies an aggregation group: its route and its group labels.
type GroupId = (usize, Fingerprint);

pub struct Dispatcher {
    route: Arc<Route>,
    /// What a flush runs: the receivers' notification pipeline, or in
    /// tests a stage that records (as `dispatch_test.go` plugs in its
    /// `recordStage`).
    stage: Arc<dyn Stage>,
    metrics: Arc<Metrics>,
    clock: Clock,
    shards: Vec<Mutex<HashMap<GroupId, Arc<AggrGroup>>>>,
    /// Stops the group timers: no flush starts once it is cancelled.
    cancel: CancellationToken,
    cluster: Option<Arc<crate::cluster::ClusterHandle>>,
    tasks: Tasks,
    /// The pipeline's `NotifyCtx.cancel`: a flush under way is cut only by
    /// `stop` (a reload) or when a shutdown's grace period runs out, not by
    /// the shutdown signal that stops the timers.
    flush_cancel: CancellationToken,
    /// What route labels are rendered with: the config's templates and
    /// `--web.external-url`. Unset (labels render empty) only in tests.
    templates: OnceLock<(Arc<Templates>, String)>,
    /// `--dispatch.start-delay`: no group flushes before this.
    not_before: tokio::time::Instant,
    /// Cancelled once the dispatcher may flush. A (re)load holds it closed
    /// while it routes every stored alert in: no group notifies a part of
    /// what it is about to hold, and the inhibitor knows every stored
    /// source before the first flush. (The flushes used to start while the
    /// reload was still routing, 14,709 of them competing with it for the
    /// cores at 1,000 routes and 100k alerts.)
    open: CancellationToken,
}

struct GroupState {
    alerts: HashMap<Fingerprint, Arc<Alert>>,
    has_flushed: bool,
    /// Set when a successful flush emptied the group; an insert then starts
    /// a new group (with its own `group_wait`) instead of reviving this one.
    destroyed: bool,
}

pub struct AggrGroup {
    pub labels: LabelSet,
    pub route: Arc<Route>,
    /// `<route key>:<group labels>`, byte-identical to Alertmanager's.
    pub key: Arc<str>,
    id: GroupId,
    state: Mutex<GroupState>,
    /// Wakes the timer to flush at once (an old alert arrived before the
    /// first flush).
    flush_now: Notify,
    flush_now_pending: AtomicBool,
    /// Time intervals that muted the last flush (`mutedBy`).
    pub marker: Arc<GroupMarker>,
    /// When the timer means to flush next, in Unix milliseconds (0 while
    /// held or flushing): what the UI says a waiting group waits for.
    next_flush_ms: std::sync::atomic::AtomicI64,
    /// What the event recorder's notifications name the group and its
    /// flushes by (Alertmanager's aggregation group ID and `flushIdx`).
    events: GroupEvents,
}

struct GroupEvents {
    /// Made when the event recorder first names the group: a reload
    /// creates thousands of groups, and a UUID costs a `getrandom` call.
    uuid: OnceLock<Arc<str>>,
    next_flush: std::sync::atomic::AtomicU64,
}

impl GroupEvents {
    fn new() -> GroupEvents {
        GroupEvents {
            uuid: OnceLock::new(),
            next_flush: std::sync::atomic::AtomicU64::new(1),
        }
    }

    fn uuid(&self) -> Arc<str> {
        self.uuid
            .get_or_init(|| Arc::from(uuid::Uuid::new_v4().to_string()))
            .clone()
    }
}

/// A group as the API shows it.
pub struct GroupView {
    pub labels: LabelSet,
    /// Time intervals that muted the group's last flush.
    pub muted_by: Vec<String>,
    pub receiver: String,
    pub route: Arc<Route>,
    /// The route labels rendered against the group's current alerts.
    pub route_labels: LabelSet,
    pub alerts: Vec<Arc<Alert>>,
    /// Whether the group has flushed since it was made (a restart or
    /// reload makes it anew).
    pub has_flushed: bool,
    /// When its timer flushes next, if it is waiting.
    pub next_flush: Option<Timestamp>,
}

impl AggrGroup {
    fn lock(&self) -> MutexGuard<'_, GroupState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Dispatcher {
    pub fn new(
        route: Arc<Route>,
        stage: Arc<dyn Stage>,
        metrics: Arc<Metrics>,
        clock: Clock,
        cancel: CancellationToken,
        cluster: Option<Arc<crate::cluster::ClusterHandle>>,
        tasks: Tasks,
    ) -> Arc<Dispatcher> {
        Arc::new(Dispatcher {
            route,
            stage,
            metrics,
            clock,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            cancel,
            cluster,
            flush_cancel: tasks.abort_token().child_token(),
            tasks,
            templates: OnceLock::new(),
            not_before: tokio::time::Instant::now(),
            open: {
                let open = CancellationToken::new();
                open.cancel();
                open
            },
        })
    }

    /// Holds every flush until `release`: for a dispatcher about to be fed
    /// the stored alerts. Called right after `new`, before any insert.
    pub fn held(mut self: Arc<Self>) -> Arc<Self> {
        match Arc::get_mut(&mut self) {
            Some(d) => d.open = CancellationToken::new(),
            None => debug_assert!(false, "held called on a shared dispatcher"),
        }
        self
    }

    /// Lets the groups flush (each on its own schedule from its creation).
    pub fn release(&self) {
        self.open.cancel();
    }

    /// Holds every group's first flush until `at` (Alertmanager's
    /// dispatcher starts no aggregation group before its start time): a
    /// group whose `group_wait` ends earlier flushes at `at`. Called right
    /// after `new`, before any alert is inserted.
    pub fn not_before(mut self: Arc<Self>, at: tokio::time::Instant) -> Arc<Self> {
        match Arc::get_mut(&mut self) {
            Some(d) => d.not_before = at,
            None => debug_assert!(false, "not_before called on a shared dispatcher"),
        }
        self
    }

    /// Gives the dispatcher the templates route labels render with; set
    /// once, right after `new`.
    pub fn set_templates(&self, templates: Arc<Templates>, external_url: String) {
        let _ = self.templates.set((templates, external_url));
    }

    /// `aggrGroup.renderRouteLabels`: the route's labels rendered against
    /// `alerts` (notification reason unknown, `RouteLabels` raw). A label
    /// whose template fails is logged and left out, as in Alertmanager.
    fn render_route_labels(
        &self,
        group: &AggrGroup,
        alerts: &[Arc<Alert>],
        now: Timestamp,
    ) -> LabelSet {
        let raw = &group.route.opts.labels;
        let Some((templates, external_url)) = self.templates.get().filter(|_| !raw.is_empty())
        else {
            return LabelSet::default();
        };
        let mut data = crate::template::Data::new(
            &group.route.opts.receiver,
            &group.labels,
            alerts,
            now,
            external_url,
        );
        data.route_labels = LabelSet::from_strs(raw.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let value = data.to_value();
        let rendered: Vec<(String, String)> =
            crate::template::render_route_labels(templates, raw, &value)
                .into_iter()
                .filter_map(|(name, r)| match r {
                    Ok(v) => Some((name, v)),
                    Err(e) => {
                        tracing::error!(
                            aggrGroup = %group.key,
                            label = %name,
                            value = %raw.get(&name).map(String::as_str).unwrap_or_default(),
                            err = %e,
                            "failed to render route label"
                        );
                        None
                    }
                })
                .collect();
        LabelSet::from_strs(rendered.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    pub fn route(&self) -> &Arc<Route> {
        &self.route
    }

    fn shard(&self, id: GroupId) -> MutexGuard<'_, HashMap<GroupId, Arc<AggrGroup>>> {
        let h = id.1 .0 ^ (id.0 as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.shards[(h as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Routes an alert into the groups of every route it matches
    /// (`Dispatcher.processAlert`).
    pub fn insert(self: &Arc<Self>, alert: &Arc<Alert>) {
        for route in self.route.matching(&alert.labels) {
            self.insert_into(route, alert);
        }
    }

    fn insert_into(self: &Arc<Self>, route: Arc<Route>, alert: &Arc<Alert>) {
        // The group's identity without building its label set, which only
        // a new group needs: almost every alert joins an existing group.
        let group_fp = match &route.opts.group_by {
            GroupBy::All => alert.labels.fingerprint(),
            GroupBy::Labels(names) => alert.labels.fingerprint_of(|n| names.contains(n)),
        };
        let id = (route.index, group_fp);
        let mut shard = self.shard(id);
        if let Some(group) = shard.get(&id).cloned() {
            let mut st = group.lock();
            if !st.destroyed {
                insert_alert(&group, &mut st, alert, &self.clock);
                return;
            }
        }
        let labels = route.group_labels(&alert.labels);
        debug_assert_eq!(labels.fingerprint(), group_fp);
        let key: Arc<str> = Arc::from(group_key(&route, &labels));
        let group = Arc::new(AggrGroup {
            labels,
            route,
            key,
            id,
            state: Mutex::new(GroupState {
                alerts: HashMap::new(),
                has_flushed: false,
                destroyed: false,
            }),
            flush_now: Notify::new(),
            flush_now_pending: AtomicBool::new(false),
            marker: Arc::new(GroupMarker::default()),
            next_flush_ms: std::sync::atomic::AtomicI64::new(0),
            events: GroupEvents::new(),
        });
        {
            let mut st = group.lock();
            insert_alert(&group, &mut st, alert, &self.clock);
        }
        shard.insert(id, group.clone());
        drop(shard);
        self.metrics.aggregation_groups.inc();
        // Decided here, not when the task first runs: the hold may end
        // before then, and the group is still one made from stored alerts.
        let restored = !self.open.is_cancelled();
        let this = self.clone();
        let name = format!("aggregation group {}", group.key);
        self.tasks
            .spawn_flushing(name, async move { this.run_group(group, restored).await });
    }

    /// When a group made from stored alerts first flushes: `group_wait`
    /// after its earliest alert started (when Prometheus or amtool first
    /// sent it, which is when the group was made), at once if that is past,
    /// and never later than `group_wait` from now (a `startsAt` in the
    /// future).
    fn restored_first_flush(&self, group: &AggrGroup) -> tokio::time::Instant {
        let wait = group.route.opts.group_wait;
        let earliest = group.lock().alerts.values().map(|a| a.starts_at).min();
        let left = earliest
            .and_then(|start| start.checked_add(wait).ok())
            .map(|due| due.duration_since(self.clock.now()))
            .map_or(wait, |d| {
                if d.is_negative() {
                    Duration::ZERO
                } else {
                    d.unsigned_abs().min(wait)
                }
            });
        tokio::time::Instant::now() + left
    }

    /// The group's timer loop (`aggrGroup.run`).
    async fn run_group(self: Arc<Self>, group: Arc<AggrGroup>, restored: bool) {
        let opts = &group.route.opts;
        let mut next = (tokio::time::Instant::now() + opts.group_wait).max(self.not_before);
        // Held while a (re)load routes the stored alerts in; a "flush now"
        // asked meanwhile keeps its permit in `flush_now`.
        if !self.open.is_cancelled() {
            tokio::select! {
                _ = self.open.cancelled() => {}
                _ = self.cancel.cancelled() => {
                    self.metrics.aggregation_groups.dec();
                    return;
                }
            }
        }
        if restored {
            // Made from stored alerts, the group keeps the schedule it had
            // before the restart or reload, as near as the store tells it:
            // Alertmanager's would start `group_wait` over from the load,
            // so a restart during `group_wait` delays the first
            // notification by up to the whole wait.
            next = self.restored_first_flush(&group).max(self.not_before);
        }
        loop {
            // A due timer (group_wait 0, or an old alert) flushes without a
            // trip through the timer wheel, which would add up to 1ms.
            if next > tokio::time::Instant::now() {
                let wall = self
                    .clock
                    .now()
                    .checked_add(next.duration_since(tokio::time::Instant::now()))
                    .map_or(0, |t| t.as_millisecond());
                group.next_flush_ms.store(wall, Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep_until(next) => {}
                    _ = group.flush_now.notified() => {
                        if group.flush_now_pending.swap(false, Ordering::AcqRel) {
                            next = tokio::time::Instant::now().max(self.not_before);
                        }
                        continue;
                    }
                    _ = self.cancel.cancelled() => break,
                }
            }
            // Checked after every wake-up: a timer due at the same moment
            // as the stop must not start a flush.
            if self.cancel.is_cancelled() {
                break;
            }
            let now = self.clock.now();
            // Re-armed before flushing, so a slow flush does not shift the
            // schedule (Alertmanager resets its timer the same way).
            let started = tokio::time::Instant::now();
            group.next_flush_ms.store(0, Ordering::Relaxed);
            next = started + opts.group_interval;
            group.lock().has_flushed = true;
            // This flush serves any "flush now" asked before it: the wake-up
            // left behind must not flush a second time.
            group.flush_now_pending.store(false, Ordering::Release);
            // A clustered node also waits its turn before notifying.
            let peer_wait = self
                .cluster
                .as_ref()
                .map(|c| c.peer_wait())
                .unwrap_or_default();
            let deadline = started + opts.group_interval.max(Duration::from_secs(10)) + peer_wait;
            if self.flush(&group, now, deadline).await {
                break;
            }
        }
        self.metrics.aggregation_groups.dec();
    }

    /// One flush (`aggrGroup.flush`); returns true when the group emptied and
    /// was destroyed.
    async fn flush(
        &self,
        group: &Arc<AggrGroup>,
        now: Timestamp,
        deadline: tokio::time::Instant,
    ) -> bool {
        let mut alerts: Vec<Arc<Alert>> = {
            let st = group.lock();
            if st.alerts.is_empty() {
                return false;
            }
            st.alerts.values().cloned().collect()
        };
        // Firing alerts are sent without an end time so that they do not
        // resolve at the receiver as time moves on.
        for a in alerts.iter_mut() {
            if !a.resolved_at(now) {
                let mut c = (**a).clone();
                c.ends_at = crate::model::GO_ZERO_TIME;
                *a = Arc::new(c);
            }
        }
        sort_for_notification(&mut alerts);
        let route_labels = self.render_route_labels(group, &alerts, now);
        let mut ctx = NotifyCtx {
            group_key: group.key.clone(),
            group_labels: group.labels.clone(),
            route_labels,
            receiver: Arc::from(group.route.opts.receiver.as_str()),
            now,
            repeat_interval: group.route.opts.repeat_interval,
            deadline,
            cancel: self.flush_cancel.clone(),
            stopping: self.cancel.clone(),
            firing_hashes: Vec::new(),
            resolved_hashes: Vec::new(),
            reason: None,
            mute_time_intervals: group.route.opts.mute_time_intervals.clone(),
            active_time_intervals: group.route.opts.active_time_intervals.clone(),
            marker: group.marker.clone(),
            receiver_data: Default::default(),
            muted_resolved: Vec::new(),
            alertmanager_rules: false,
        };
        // A root span, as in Alertmanager: a flush serves many requests.
        let span = crate::otel::start(
            DISPATCH_SCOPE,
            "dispatch.AggregationGroup.flush",
            opentelemetry::trace::SpanKind::Internal,
            &opentelemetry::Context::new(),
            || {
                vec![
                    opentelemetry::KeyValue::new(
                        "alerting.aggregation_group.key",
                        group.key.to_string(),
                    ),
                    opentelemetry::KeyValue::new("alerting.alerts.count", alerts.len() as i64),
                ]
            },
        );
        let flush_id = group.events.next_flush.fetch_add(1, Ordering::Relaxed);
        let info = crate::eventrecorder::active().then(|| crate::eventrecorder::FlushInfo {
            group_uuid: group.events.uuid(),
            flush_id,
            matchers: group.route.matchers.0.clone(),
        });
        let result = crate::eventrecorder::in_flush(
            info,
            opentelemetry::context::FutureExt::with_context(
                self.stage.exec(&mut ctx, alerts.clone()),
                span.context().clone(),
            ),
        )
        .await;
        if result.is_err() {
            span.error("notification failed");
        }
        span.end();
        match result {
            Err(e) => {
                tracing::error!(aggrGroup = %group.key, err = %e, "Notify for alerts failed");
                false
            }
            Ok(_) => {
                if crate::eventrecorder::active() {
                    let info = group_info(group);
                    for a in alerts.iter().filter(|a| a.resolved_at(now)) {
                        crate::eventrecorder::record(|| {
                            crate::eventrecorder::events::alert_resolved(&info, a, now)
                        });
                    }
                }
                let mut st = group.lock();
                for a in alerts.iter().filter(|a| a.resolved_at(now)) {
                    // Keep an alert that was updated while we notified.
                    if st
                        .alerts
                        .get(&a.fingerprint)
                        .is_some_and(|cur| cur.updated_at == a.updated_at)
                    {
                        st.alerts.remove(&a.fingerprint);
                    }
                }
                if !st.alerts.is_empty() {
                    return false;
                }
                st.destroyed = true;
                drop(st);
                let mut shard = self.shard(group.id);
                if shard.get(&group.id).is_some_and(|g| Arc::ptr_eq(g, group)) {
                    shard.remove(&group.id);
                }
                true
            }
        }
    }

    /// The aggregation groups and their alerts, filtered, with groups in
    /// `Dispatcher.Groups` order for `GET /api/v2/alerts/groups`. Alerts are
    /// left unsorted: the caller sorts them (`sort_for_notification`) where
    /// it can spread the work over cores.
    pub fn groups(
        &self,
        mut route_filter: impl FnMut(&Route) -> bool,
        mut alert_filter: impl FnMut(&Alert) -> bool,
    ) -> Vec<GroupView> {
        let mut all: Vec<Arc<AggrGroup>> = Vec::new();
        for s in &self.shards {
            all.extend(
                s.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .values()
                    .cloned(),
            );
        }
        let mut out = Vec::new();
        for g in all {
            if !route_filter(&g.route) {
                continue;
            }
            let alerts: Vec<Arc<Alert>> = g
                .lock()
                .alerts
                .values()
                .filter(|a| alert_filter(a))
                .cloned()
                .collect();
            if alerts.is_empty() {
                continue;
            }
            // Rendered against every alert of the group, not only those the
            // query keeps, as Alertmanager's `ag.RouteLabels()`.
            let route_labels = if g.route.opts.labels.is_empty() {
                LabelSet::default()
            } else {
                let mut all: Vec<Arc<Alert>> = g.lock().alerts.values().cloned().collect();
                sort_for_notification(&mut all);
                self.render_route_labels(&g, &all, self.clock.now())
            };
            let next = g.next_flush_ms.load(Ordering::Relaxed);
            out.push(GroupView {
                has_flushed: g.lock().has_flushed,
                next_flush: (next != 0)
                    .then(|| Timestamp::from_millisecond(next).ok())
                    .flatten(),
                muted_by: g.marker.muted_by(),
                labels: g.labels.clone(),
                receiver: g.route.opts.receiver.clone(),
                route: g.route.clone(),
                route_labels,
                alerts,
            });
        }
        out.sort_by(|a, b| {
            if a.labels == b.labels {
                a.receiver.cmp(&b.receiver)
            } else if a.labels.before(&b.labels) {
                std::cmp::Ordering::Less
            } else {
                std::cmp::Ordering::Greater
            }
        });
        out
    }

    /// The time intervals muting an alert: those that muted the last flush
    /// of any of its groups. `routes` are the routes the alert matches.
    pub fn muted_by(&self, routes: &[Arc<Route>], labels: &LabelSet) -> Vec<String> {
        let mut out = Vec::new();
        for r in routes {
            if r.opts.mute_time_intervals.is_empty() && r.opts.active_time_intervals.is_empty() {
                continue;
            }
            let id = (r.index, r.group_labels(labels).fingerprint());
            let group = self.shard(id).get(&id).cloned();
            if let Some(g) = group {
                out.extend(g.marker.muted_by());
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// Stops every group timer; in-flight notifications are cancelled.
    pub fn stop(&self) {
        self.cancel.cancel();
        self.flush_cancel.cancel();
    }
}

fn insert_alert(group: &AggrGroup, st: &mut GroupState, alert: &Arc<Alert>, clock: &Clock) {
    // Concurrent posts of the same alert may arrive out of order; the group
    // keeps the most recently received version, as the store does.
    if st
        .alerts
        .get(&alert.fingerprint)
        .is_some_and(|cur| cur.updated_at > alert.updated_at)
    {
        return;
    }
    st.alerts.insert(alert.fingerprint, alert.clone());
    let span = crate::otel::start(
        DISPATCH_SCOPE,
        "dispatch.AggregationGroup.insert",
        opentelemetry::trace::SpanKind::Internal,
        &opentelemetry::Context::current(),
        || {
            vec![
                opentelemetry::KeyValue::new(
                    "alerting.alert.name",
                    alert.labels.get("alertname").unwrap_or("").to_string(),
                ),
                opentelemetry::KeyValue::new(
                    "alerting.alert.fingerprint",
                    alert.fingerprint.to_string(),
                ),
                opentelemetry::KeyValue::new(
                    "alerting.aggregation_group.key",
                    group.key.to_string(),
                ),
            ]
        },
    );
    crate::eventrecorder::record(|| {
        crate::eventrecorder::events::alert_grouped(&group_info(group), alert, clock.now())
    });
    span.end();
    // An alert older than group_wait that arrives before the first flush
    // (typically after a restart or reload) is flushed at once.
    if !st.has_flushed {
        let wait = group.route.opts.group_wait;
        if alert
            .starts_at
            .checked_add(wait)
            .is_ok_and(|t| t < clock.now())
        {
            group.flush_now_pending.store(true, Ordering::Release);
            group.flush_now.notify_one();
        }
    }
}

/// A group's key (Go's `aggrGroup.GroupKey`): its route's key and its
/// labels. The notification log is keyed by it.
pub fn group_key(route: &Route, labels: &LabelSet) -> String {
    format!("{}:{}", route.key, labels.go_string())
}

/// The instrumentation scope of the dispatcher's spans (Go's package).
const DISPATCH_SCOPE: &str = "github.com/prometheus/alertmanager/dispatch";

/// The group as the event recorder describes it.
fn group_info(group: &AggrGroup) -> crate::eventrecorder::events::GroupInfo<'_> {
    crate::eventrecorder::events::GroupInfo {
        group_key: &group.key,
        group_labels: &group.labels,
        receiver: &group.route.opts.receiver,
        matchers: &[],
        group_uuid: "",
    }
}

#[cfg(test)]
mod tests;
