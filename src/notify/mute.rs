//! The muting stages (`notify/notify.go`): `MuteStage` drops what a silence
//! or an inhibit rule mutes; `TimeActiveStage` and `TimeMuteStage` send
//! nothing outside a route's active intervals or inside one of its mute
//! intervals, and mark the group muted (shown as `mutedBy` in the API).
//!
//! Herald's `--enable-feature=notify-resolved-when-muted`: in Alertmanager
//! an alert notified as firing and then silenced, inhibited or time-muted
//! never gets its resolved notification (the flush that sees it resolved
//! drops it, then the group forgets it), so the incident it opened at
//! PagerDuty or Opsgenie stays open (Alertmanager #226, #3664). With the
//! feature, the stages let such resolved alerts through, marked in
//! `NotifyCtx::muted_resolved`; whether one was notified firing is known
//! per integration, so each integration's dedup stage keeps a marked alert
//! only if its own notification-log entry lists it as firing. A muted
//! alert that still fires stays muted; one never notified stays unsent.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use jiff::Timestamp;

use super::{NotifyCtx, NotifyError, Stage};
use crate::model::{Alert, Muter};
use crate::timeinterval::TimeIntervalDef;

/// Per aggregation group: the time intervals that muted its last flush.
#[derive(Default, Debug)]
pub struct GroupMarker {
    muted_by: Mutex<Vec<String>>,
}

impl GroupMarker {
    pub fn muted_by(&self) -> Vec<String> {
        self.muted_by
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn set(&self, names: Vec<String>) {
        *self.muted_by.lock().unwrap_or_else(|e| e.into_inner()) = names;
    }
}

pub type TimeIntervals = Arc<HashMap<String, TimeIntervalDef>>;

/// The names among `names` whose interval contains `now`.
fn matching(intervals: &TimeIntervals, names: &[String], now: Timestamp) -> Vec<String> {
    names
        .iter()
        .filter(|n| intervals.get(n.as_str()).is_some_and(|ti| ti.contains(now)))
        .cloned()
        .collect()
}

/// What a time stage passes on when it mutes the whole flush: nothing, or
/// with the feature on the resolved alerts, marked.
fn muted_flush(
    ctx: &mut NotifyCtx,
    mut alerts: Vec<Arc<Alert>>,
    resolved_when_muted: bool,
) -> Vec<Arc<Alert>> {
    if !resolved_when_muted {
        return Vec::new();
    }
    alerts.retain(|a| a.resolved_at(ctx.now));
    ctx.muted_resolved
        .extend(alerts.iter().map(|a| a.fingerprint));
    alerts
}

/// Drops the alerts a muter mutes (`MuteStage`): the inhibitor's rules or
/// the silences.
pub struct MuteStage {
    pub muter: Arc<dyn Muter>,
    pub resolved_when_muted: bool,
}

#[async_trait::async_trait]
impl Stage for MuteStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        mut alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        if !self.resolved_when_muted {
            self.muter.retain_unmuted(&mut alerts, ctx.now);
            return Ok(alerts);
        }
        let mut unmuted = alerts.clone();
        self.muter.retain_unmuted(&mut unmuted, ctx.now);
        if unmuted.len() == alerts.len() {
            return Ok(alerts);
        }
        let unmuted: HashSet<_> = unmuted.iter().map(|a| a.fingerprint).collect();
        let now = ctx.now;
        let marked = &mut ctx.muted_resolved;
        alerts.retain(|a| {
            if unmuted.contains(&a.fingerprint) {
                true
            } else if a.resolved_at(now) {
                marked.push(a.fingerprint);
                true
            } else {
                false
            }
        });
        Ok(alerts)
    }
}

pub struct TimeActiveStage {
    pub intervals: TimeIntervals,
    pub resolved_when_muted: bool,
}

#[async_trait::async_trait]
impl Stage for TimeActiveStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        if ctx.active_time_intervals.is_empty() {
            return Ok(alerts);
        }
        if matching(&self.intervals, &ctx.active_time_intervals, ctx.now).is_empty() {
            // Outside every active interval: muted by all of them.
            tracing::debug!(aggrGroup = %ctx.group_key, "Notifications not sent, route is not within active time");
            ctx.marker.set(ctx.active_time_intervals.clone());
            return Ok(muted_flush(ctx, alerts, self.resolved_when_muted));
        }
        Ok(alerts)
    }
}

pub struct TimeMuteStage {
    pub intervals: TimeIntervals,
    pub resolved_when_muted: bool,
}

#[async_trait::async_trait]
impl Stage for TimeMuteStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let muted = matching(&self.intervals, &ctx.mute_time_intervals, ctx.now);
        if !muted.is_empty() {
            tracing::debug!(aggrGroup = %ctx.group_key, "Notifications not sent, route is within mute time");
            ctx.marker.set(muted);
            return Ok(muted_flush(ctx, alerts, self.resolved_when_muted));
        }
        ctx.marker.set(Vec::new());
        Ok(alerts)
    }
}

/// A receiver's muting stages, run in order as a `MultiStage` runs them,
/// which also record in the history a flush they mute whole: the stage
/// that took its last alert names the outcome (an alert inhibited and the
/// rest silenced is "silenced"), the record lists every alert of the
/// flush. Muting comes before the fan-out to the integrations, so the
/// record is the receiver's, with no integration.
pub struct MutingStages {
    pub stages: Vec<(crate::history::Outcome, Arc<dyn Stage>)>,
    pub history: Option<Arc<crate::history::Recorder>>,
}

#[async_trait::async_trait]
impl Stage for MutingStages {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        // Only kept when there is a history to write (the clone is of
        // pointers).
        let flushed = self.history.as_ref().map(|_| alerts.clone());
        let mut alerts = alerts;
        for (outcome, stage) in &self.stages {
            if alerts.is_empty() {
                return Ok(alerts);
            }
            alerts = stage.exec(ctx, alerts).await?;
            if alerts.is_empty() {
                if let (Some(history), Some(flushed)) = (&self.history, &flushed) {
                    let mut report = crate::history::Report::of(*outcome);
                    if *outcome == crate::history::Outcome::TimeMuted {
                        report.muted_by = ctx.marker.muted_by();
                    }
                    history.record(
                        &crate::history::Flush {
                            receiver: &ctx.receiver,
                            integration: None,
                            group_key: &ctx.group_key,
                            group_labels: &ctx.group_labels,
                            alerts: flushed,
                            now: ctx.now,
                        },
                        report,
                    );
                }
            }
        }
        Ok(alerts)
    }
}
