//! The notification pipeline (`notify/notify.go`): a sequence of stages run
//! for each flush of an aggregation group.
//!
//! Per receiver the pipeline is: [gossip-settle in a cluster,] inhibit,
//! time-active, time-mute, silence, then a fan-out to every integration,
//! each running [wait,] dedup, [claim,] retry, set-notifies. A stage that
//! empties the alert list ends the pipeline without error, as in
//! Alertmanager.
//!
//! Each integration is a folder, `notify/<kind>/` (its config in
//! `config.rs`, its notifier in `mod.rs`), listed once in `registry.rs`;
//! `http.rs` is what the HTTP integrations share.

mod dedup;
pub mod discord;
pub mod email;
mod global;
pub mod http;
pub mod incidentio;
pub mod jira;
pub mod mattermost;
pub mod msteams;
pub mod msteamsv2;
mod mute;
pub mod opsgenie;
pub mod pagerduty;
pub mod pushover;
mod registry;
mod retry;
pub mod rocketchat;
pub mod slack;
pub mod sns;
pub mod telegram;
pub mod victorops;
pub mod webex;
pub mod webhook;
pub mod wechat;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

pub use dedup::{hash_alert, needs_update, DedupStage, NotificationReason};
pub use global::GlobalConfig;
pub use mute::{
    GroupMarker, MuteStage, MutingStages, TimeActiveStage, TimeIntervals, TimeMuteStage,
};
pub use registry::{
    integration_count, template_problems, BuildCtx, BuildError, IntegrationConfig, ReceiverConfig,
};
pub use retry::{RetryStage, SetNotifiesStage};

use crate::metrics::Metrics;
use crate::model::{Alert, Fingerprint, LabelSet, Muter};
use crate::nflog::{NotificationLog, ReceiverKey};

/// Alertmanager's failure reasons, the `reason` label of
/// `alertmanager_notifications_failed_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureReason {
    Other,
    ClientError,
    ServerError,
    AuthError,
    RateLimited,
    ContextCanceled,
    ContextDeadlineExceeded,
}

impl FailureReason {
    pub fn as_str(self) -> &'static str {
        match self {
            FailureReason::Other => "other",
            FailureReason::ClientError => "clientError",
            FailureReason::ServerError => "serverError",
            FailureReason::AuthError => "authError",
            FailureReason::RateLimited => "rateLimited",
            FailureReason::ContextCanceled => "contextCanceled",
            FailureReason::ContextDeadlineExceeded => "contextDeadlineExceeded",
        }
    }

    pub fn from_status(code: u16) -> FailureReason {
        match code {
            401 | 403 => FailureReason::AuthError,
            429 => FailureReason::RateLimited,
            400..=499 => FailureReason::ClientError,
            500..=599 => FailureReason::ServerError,
            _ => FailureReason::Other,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NotifyError {
    pub retryable: bool,
    pub reason: FailureReason,
    pub message: String,
    /// The receiver asked not to be called again before this long (HTTP 429
    /// `Retry-After`); the retry stage waits at least that.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for NotifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for NotifyError {}

impl NotifyError {
    /// A template that fails makes the notification fail for good: another
    /// try renders the same.
    pub(crate) fn template(e: impl fmt::Display) -> Self {
        NotifyError::new(false, FailureReason::Other, format!("template: {e}"))
    }

    pub fn new(retryable: bool, reason: FailureReason, message: impl Into<String>) -> Self {
        NotifyError {
            retryable,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// The template data of a notification (`notify.GetTemplateData`).
pub fn template_data(
    ctx: &NotifyCtx,
    alerts: &[Arc<Alert>],
    external_url: &str,
) -> crate::template::Value {
    notification_data(ctx, alerts, external_url).to_value()
}

/// The notification's data as a typed `Data`, for the integrations that
/// send it as JSON (webhook, incident.io) rather than only template it.
pub(crate) fn notification_data(
    ctx: &NotifyCtx,
    alerts: &[Arc<Alert>],
    external_url: &str,
) -> crate::template::Data {
    let mut data = crate::template::Data::new(
        &ctx.receiver,
        &ctx.group_labels,
        alerts,
        ctx.now,
        external_url,
    );
    data.route_labels = ctx.route_labels.clone();
    data.notification_reason = ctx.reason.map(|r| r.as_str());
    data
}

/// Go's `truncateAlerts`: the first `max_alerts` alerts (0 keeps all) and
/// how many were left out (`truncatedAlerts`).
pub(crate) fn truncate_alerts(alerts: &[Arc<Alert>], max_alerts: u64) -> (&[Arc<Alert>], u64) {
    match usize::try_from(max_alerts) {
        Ok(max) if max > 0 && alerts.len() > max => (&alerts[..max], (alerts.len() - max) as u64),
        _ => (alerts, 0),
    }
}

/// Go's `notify.Key.Hash`: the SHA-256 of the group key in hex. Services
/// that deduplicate by a key of their own (PagerDuty's `dedup_key`,
/// Opsgenie's alias, VictorOps' entity id, e-mail threads, Jira's label)
/// get this, so that Herald and Alertmanager name the same group alike.
pub(crate) fn group_key_hash(group_key: &str) -> String {
    use sha2::Digest;
    let hash = sha2::Sha256::digest(group_key.as_bytes());
    let mut out = String::with_capacity(64);
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// What Alertmanager carries in a `context.Context` through the pipeline.
#[derive(Clone)]
pub struct NotifyCtx {
    pub group_key: Arc<str>,
    pub group_labels: LabelSet,
    /// The group's route labels, rendered for this flush.
    pub route_labels: LabelSet,
    pub receiver: Arc<str>,
    /// The flush time: every decision in one flush uses the same clock.
    pub now: Timestamp,
    pub repeat_interval: Duration,
    /// The flush must finish by then (`max(group_interval, 10s)`).
    pub deadline: tokio::time::Instant,
    /// Cuts the flush wherever it is: a reload, or a stop's grace period
    /// running out.
    pub cancel: CancellationToken,
    /// Herald is stopping: an attempt under way may finish and be logged,
    /// but nothing new starts (no retry, no wait for this node's turn), so
    /// a failing receiver does not hold the stop for the whole grace period.
    pub stopping: CancellationToken,
    /// Set by the dedup stage for the set-notifies stage.
    pub firing_hashes: Vec<u64>,
    pub resolved_hashes: Vec<u64>,
    pub reason: Option<NotificationReason>,
    /// The route's time intervals (not inherited from parents).
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    /// Where the time stages record that they muted the group.
    pub marker: Arc<GroupMarker>,
    /// The integration's state in the notification log, put here by the
    /// dedup stage, changed by the notifier, logged by the set-notifies
    /// stage (Alertmanager's `nflog.Store`). Never locked across an await.
    pub receiver_data: Arc<std::sync::Mutex<crate::nflog::ReceiverData>>,
    /// Resolved alerts a mute stage let through only because of
    /// `--enable-feature=notify-resolved-when-muted`: the dedup stage keeps
    /// them only for an integration that notified them firing.
    pub muted_resolved: Vec<Fingerprint>,
    /// Set by the wait stage when an Alertmanager replica is a member of
    /// the cluster: the dedup decisions are then Alertmanager's alone
    /// (`dedup::decide`).
    pub alertmanager_rules: bool,
}

#[async_trait::async_trait]
pub trait Stage: Send + Sync {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError>;
}

/// Delivers one notification to one destination. Implementations report
/// whether a failure is worth retrying within this flush.
#[async_trait::async_trait]
pub trait Notifier: Send + Sync {
    async fn notify(&self, ctx: &NotifyCtx, alerts: &[Arc<Alert>]) -> Result<(), NotifyError>;
}

/// One entry of a receiver's `*_configs` list.
pub struct Integration {
    pub notifier: Arc<dyn Notifier>,
    pub key: ReceiverKey,
    pub send_resolved: bool,
}

/// Runs stages in order, stopping quietly once no alert is left.
pub struct MultiStage(pub Vec<Arc<dyn Stage>>);

#[async_trait::async_trait]
impl Stage for MultiStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        mut alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        for s in &self.0 {
            if alerts.is_empty() {
                return Ok(alerts);
            }
            alerts = s.exec(ctx, alerts).await?;
        }
        Ok(alerts)
    }
}

/// Runs each integration's stages concurrently; any failure fails the flush
/// (so resolved alerts stay for the next one), errors joined.
pub struct FanoutStage(pub Vec<MultiStage>);

#[async_trait::async_trait]
impl Stage for FanoutStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let runs = self.0.iter().map(|stage| {
            let mut c = ctx.clone();
            let a = alerts.clone();
            async move { stage.exec(&mut c, a).await }
        });
        let results = futures_util::future::join_all(runs).await;
        let errors: Vec<NotifyError> = results.into_iter().filter_map(Result::err).collect();
        match errors.first() {
            None => Ok(alerts),
            Some(first) => Err(NotifyError::new(
                false,
                first.reason,
                errors
                    .iter()
                    .map(|e| e.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}

/// What the stages of a pipeline share with the rest of Herald.
pub struct PipelineDeps {
    pub nflog: Arc<dyn NotificationLog>,
    pub metrics: Arc<Metrics>,
    pub external_url: String,
    /// `--data.retention`, capping notification-log entries.
    pub retention: Duration,
    /// The inhibit rules and the silences.
    pub inhibitor: Arc<dyn Muter>,
    pub silences: Arc<dyn Muter>,
    /// Set when this node is part of a cluster.
    pub cluster: Option<Arc<crate::cluster::ClusterHandle>>,
    /// Herald's extension: the mute stages let resolved alerts through,
    /// marked, and each integration's dedup stage sends those it had
    /// notified as firing (`notify::mute`).
    pub notify_resolved_when_muted: bool,
    /// The notification history's recording end; `None` when
    /// `--notification-history.max-records=0` turns it off.
    pub history: Option<Arc<crate::history::Recorder>>,
}

/// `GossipSettleStage`: no notification before the cluster has settled,
/// so a node that just started does not notify what its peers already did.
pub struct GossipSettleStage {
    pub cluster: Arc<crate::cluster::ClusterHandle>,
}

#[async_trait::async_trait]
impl Stage for GossipSettleStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        if let Some(p) = self.cluster.wait_peer(&ctx.cancel).await {
            p.wait_ready(&ctx.cancel).await;
        }
        Ok(alerts)
    }
}

/// The wait stage: this node holds each notification back
/// `position × --cluster.peer-timeout`, so the first node in the cluster
/// notifies and logs it and the others find it logged (fail open: if the
/// first node is gone, the next one notifies after its wait).
pub struct WaitStage {
    pub cluster: Arc<crate::cluster::ClusterHandle>,
}

#[async_trait::async_trait]
impl Stage for WaitStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let wait = self.cluster.peer_wait();
        if !wait.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.cancel.cancelled() => {}
                // Stopping before our turn: the peers notify instead.
                _ = ctx.stopping.cancelled() => return Ok(Vec::new()),
            }
        }
        // After the wait: the members as they are at the dedup check.
        ctx.alertmanager_rules = self.cluster.alertmanager_member();
        Ok(alerts)
    }
}

/// Herald's answer to duplicate notifications in a cluster while a receiver
/// fails: a node about to deliver tells its peers (a claim, sent to each);
/// a peer that reaches the same notification while the claim holds waits
/// for it to be logged instead of sending it again. If the claiming node
/// leaves the cluster or its claim runs out, the peer delivers (fail open).
pub struct ClaimStage {
    pub cluster: Arc<crate::cluster::ClusterHandle>,
    pub nflog: Arc<dyn NotificationLog>,
    pub integration: Arc<Integration>,
}

#[async_trait::async_trait]
impl Stage for ClaimStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let Some(peer) = self.cluster.peer() else {
            return Ok(alerts);
        };
        let key = crate::nflog::state_key(&ctx.group_key, &self.integration.key);
        let mut h = xxhash_rust::xxh64::Xxh64::new(0);
        for x in ctx
            .firing_hashes
            .iter()
            .chain([&0u64])
            .chain(&ctx.resolved_hashes)
        {
            h.update(&x.to_le_bytes());
        }
        let hash = h.digest();
        loop {
            if self.wait_for_claims(ctx, peer, &key, hash).await {
                // Delivered and logged by the claiming node.
                return Ok(Vec::new());
            }
            let left = ctx
                .deadline
                .saturating_duration_since(tokio::time::Instant::now());
            let until = Timestamp::now()
                .checked_add(left)
                .unwrap_or_else(|_| Timestamp::now());
            peer.claim(&key, hash, until);
            if peer.position() == 0 || tokio::time::Instant::now() >= ctx.deadline {
                return Ok(alerts);
            }
            // Two nodes may claim at once: the one first in position
            // order goes, the other waits for it.
            tokio::select! {
                _ = tokio::time::sleep(peer.claim_settle()) => {}
                _ = ctx.cancel.cancelled() => {}
            }
            if peer.other_claim(&key, hash, true).is_none() || ctx.cancel.is_cancelled() {
                return Ok(alerts);
            }
        }
    }
}

impl ClaimStage {
    /// Waits while a live peer's claim on the same notification holds;
    /// true when the peer has logged it (or a newer view) meanwhile, or
    /// when this node is stopping. Wakes
    /// when the peer's state changes here (a claim, a member, a merged
    /// log entry), when the claim runs out, or at the flush deadline.
    async fn wait_for_claims(
        &self,
        ctx: &NotifyCtx,
        peer: &crate::cluster::Peer,
        key: &str,
        hash: u64,
    ) -> bool {
        let mut changes = peer.changes();
        loop {
            // Marked seen before the checks: a change made while they run
            // wakes the wait below.
            changes.borrow_and_update();
            let Some(claim) = peer.other_claim(key, hash, false) else {
                return false;
            };
            // Stopping: the claiming node delivers; starting a delivery
            // now would be the duplicate the claim is there to prevent.
            if ctx.stopping.is_cancelled()
                || dedup::covered_by_peer(self.nflog.as_ref(), ctx, &self.integration)
            {
                return true;
            }
            if tokio::time::Instant::now() >= ctx.deadline || ctx.cancel.is_cancelled() {
                return false;
            }
            let claim_left = claim
                .until
                .duration_since(Timestamp::now())
                .try_into()
                .unwrap_or(Duration::ZERO);
            let wake = ctx.deadline.min(tokio::time::Instant::now() + claim_left);
            tokio::select! {
                // Never an error: the sender lives as long as `peer`.
                _ = changes.changed() => {}
                _ = tokio::time::sleep_until(wake) => {}
                _ = ctx.cancel.cancelled() => {}
                _ = ctx.stopping.cancelled() => {}
            }
        }
    }
}

/// The notification stages of every receiver that a route uses.
pub struct Pipeline {
    receivers: HashMap<String, Arc<dyn Stage>>,
    /// The loaded templates, which the dispatcher renders route labels with.
    pub templates: Arc<crate::template::Templates>,
}

/// Why a config's pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("loading templates: {0}")]
    Templates(String),
    #[error("receiver {name:?}: {source}")]
    Receiver { name: String, source: BuildError },
}

impl Pipeline {
    /// Builds the integrations of every receiver and wraps them in their
    /// stages. `templates` are the config's template globs; `intervals`
    /// its `time_intervals` and `mute_time_intervals`.
    pub fn build(
        receivers: &[ReceiverConfig],
        templates: &[String],
        intervals: TimeIntervals,
        deps: &PipelineDeps,
    ) -> Result<Pipeline, PipelineError> {
        let templates = Arc::new(
            crate::template::Templates::load(templates)
                .map_err(|e| PipelineError::Templates(e.to_string()))?,
        );
        for problem in template_problems(receivers, &templates) {
            tracing::warn!(err = %problem, "Template does not parse: notifications using it will fail");
        }
        let ctx = BuildCtx {
            templates: &templates,
            external_url: &deps.external_url,
        };
        let mut stages = HashMap::new();
        for rc in receivers {
            let mut index = registry::KindIndex::default();
            let mut per_integration = Vec::new();
            for (kind, config) in rc.integrations() {
                let notifier = config
                    .build(&ctx)
                    .map_err(|source| PipelineError::Receiver {
                        name: rc.name.clone(),
                        source,
                    })?;
                let integration = Arc::new(Integration {
                    notifier,
                    key: ReceiverKey {
                        group_name: rc.name.clone(),
                        integration: kind,
                        index: index.next(kind),
                    },
                    send_resolved: config.send_resolved(),
                });
                deps.metrics.init_integration(kind);
                per_integration.push(integration_stages(integration, deps));
            }
            stages.insert(
                rc.name.clone(),
                receiver_stage(per_integration, &intervals, deps),
            );
        }
        Ok(Pipeline {
            receivers: stages,
            templates,
        })
    }
}

#[cfg(test)]
impl Pipeline {
    /// A pipeline whose one receiver `name` delivers to `notifiers` (kind,
    /// notifier, `send_resolved`), its stages assembled as `build`
    /// assembles a config's: what in-process tests run on.
    pub(crate) fn with_notifiers(
        name: &str,
        notifiers: Vec<(&'static str, Arc<dyn Notifier>, bool)>,
        intervals: TimeIntervals,
        deps: &PipelineDeps,
    ) -> Pipeline {
        let mut index = registry::KindIndex::default();
        let integrations = notifiers
            .into_iter()
            .map(|(kind, notifier, send_resolved)| {
                let key = ReceiverKey {
                    group_name: name.to_string(),
                    integration: kind,
                    index: index.next(kind),
                };
                integration_stages(
                    Arc::new(Integration {
                        notifier,
                        key,
                        send_resolved,
                    }),
                    deps,
                )
            })
            .collect();
        let receivers = HashMap::from([(
            name.to_string(),
            receiver_stage(integrations, &intervals, deps),
        )]);
        Pipeline {
            receivers,
            templates: Arc::new(crate::template::Templates::alertmanager()),
        }
    }
}

/// The receiver's pipeline for a flush of one of its groups. `Ok` means
/// the flush succeeded, even if nothing needed sending.
#[async_trait::async_trait]
impl Stage for Pipeline {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let Some(stage) = self.receivers.get(ctx.receiver.as_ref()) else {
            return Err(NotifyError::new(
                false,
                FailureReason::Other,
                format!("unknown receiver {:?}", ctx.receiver),
            ));
        };
        stage.exec(ctx, alerts).await
    }
}

/// One integration's stages: [wait,] dedup, [claim,] retry, set-notifies.
fn integration_stages(integration: Arc<Integration>, deps: &PipelineDeps) -> MultiStage {
    let nflog = &deps.nflog;
    let mut stages: Vec<Arc<dyn Stage>> = Vec::new();
    if let Some(c) = &deps.cluster {
        stages.push(Arc::new(WaitStage { cluster: c.clone() }));
    }
    stages.push(Arc::new(DedupStage {
        nflog: nflog.clone(),
        integration: integration.clone(),
        history: deps.history.clone(),
    }));
    if let Some(c) = &deps.cluster {
        stages.push(Arc::new(ClaimStage {
            cluster: c.clone(),
            nflog: nflog.clone(),
            integration: integration.clone(),
        }));
    }
    stages.push(Arc::new(RetryStage {
        integration: integration.clone(),
        metrics: deps.metrics.clone(),
        cluster_nflog: deps.cluster.as_ref().map(|_| nflog.clone()),
        history: deps.history.clone(),
    }));
    stages.push(Arc::new(SetNotifiesStage {
        nflog: nflog.clone(),
        integration,
        retention: deps.retention,
    }));
    MultiStage(stages)
}

/// A receiver's stages: [gossip-settle,] inhibit, time-active, time-mute,
/// silence, then the integrations side by side.
fn receiver_stage(
    integrations: Vec<MultiStage>,
    intervals: &TimeIntervals,
    deps: &PipelineDeps,
) -> Arc<dyn Stage> {
    let mut stages: Vec<Arc<dyn Stage>> = Vec::new();
    if let Some(c) = &deps.cluster {
        stages.push(Arc::new(GossipSettleStage { cluster: c.clone() }));
    }
    use crate::history::Outcome;
    let muting = MutingStages {
        stages: vec![
            (
                Outcome::Inhibited,
                Arc::new(MuteStage {
                    muter: deps.inhibitor.clone(),
                    resolved_when_muted: deps.notify_resolved_when_muted,
                }) as Arc<dyn Stage>,
            ),
            (
                Outcome::TimeMuted,
                Arc::new(TimeActiveStage {
                    intervals: intervals.clone(),
                    resolved_when_muted: deps.notify_resolved_when_muted,
                }),
            ),
            (
                Outcome::TimeMuted,
                Arc::new(TimeMuteStage {
                    intervals: intervals.clone(),
                    resolved_when_muted: deps.notify_resolved_when_muted,
                }),
            ),
            (
                Outcome::Silenced,
                Arc::new(MuteStage {
                    muter: deps.silences.clone(),
                    resolved_when_muted: deps.notify_resolved_when_muted,
                }),
            ),
        ],
        history: deps.history.clone(),
    };
    stages.extend([
        Arc::new(muting) as Arc<dyn Stage>,
        Arc::new(FanoutStage(integrations)),
    ]);
    Arc::new(MultiStage(stages))
}
