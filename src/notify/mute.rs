//! The muting stages (`notify/notify.go`): `MuteStage` drops what a silence
//! or an inhibit rule mutes; `TimeActiveStage` and `TimeMuteStage` send
//! nothing outside a route's active intervals or inside one of its mute
//! intervals, and mark the group muted (shown as `mutedBy` in the API).

use std::collections::HashMap;
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

/// Drops the alerts a muter mutes (`MuteStage`): the inhibitor's rules or
/// the silences.
pub struct MuteStage {
    pub muter: Arc<dyn Muter>,
}

#[async_trait::async_trait]
impl Stage for MuteStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        mut alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        self.muter.retain_unmuted(&mut alerts, ctx.now);
        Ok(alerts)
    }
}

pub struct TimeActiveStage {
    pub intervals: TimeIntervals,
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
            return Ok(Vec::new());
        }
        Ok(alerts)
    }
}

pub struct TimeMuteStage {
    pub intervals: TimeIntervals,
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
            return Ok(Vec::new());
        }
        ctx.marker.set(Vec::new());
        Ok(alerts)
    }
}
