//! The notification pipeline (`notify/notify.go`): a sequence of stages run
//! for each flush of an aggregation group.
//!
//! Per receiver the pipeline is: [inhibit, time-active, time-mute, silence —
//! added with the silences issue] then a fan-out to every integration, each
//! running wait → dedup → retry → set-notifies. A stage that empties the
//! alert list ends the pipeline without error, as in Alertmanager.

mod dedup;
pub mod email;
mod mute;
mod retry;
pub mod slack;
pub mod webhook;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

pub use dedup::{hash_alert, needs_update, DedupStage, NotificationReason};
pub use mute::{
    GroupMarker, InhibitStage, SilenceStage, TimeActiveStage, TimeIntervals, TimeMuteStage,
};
pub use retry::{RetryStage, SetNotifiesStage};

use crate::config::LoadedConfig;
use crate::inhibit::Inhibitor;
use crate::metrics::Metrics;
use crate::model::{Alert, LabelSet};
use crate::nflog::{NotificationLog, ReceiverKey};
use crate::silence::Silences;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

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
    pub fn new(retryable: bool, reason: FailureReason, message: impl Into<String>) -> Self {
        NotifyError {
            retryable,
            reason,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// Every template text of the receivers' e-mail and Slack configs that does
/// not parse, as `receivers[i].slack_configs[j].title: <error>`.
/// Alertmanager finds these only when a notification fails; Herald reports
/// them at load (a warning) and in `check-config` (a failure).
pub fn template_problems(
    config: &LoadedConfig,
    templates: &crate::template::Templates,
) -> Vec<String> {
    let mut texts: Vec<(String, &str)> = Vec::new();
    for (r, rc) in config.config.receivers.iter().enumerate() {
        for (i, e) in rc.email_configs.iter().enumerate() {
            let f = format!("receivers[{r}].email_configs[{i}]");
            for (name, text) in [
                ("to", e.to.as_ref().map_or("", |t| t.0.as_str())),
                ("from", e.from.as_deref().unwrap_or("")),
                ("html", &e.html),
                ("text", &e.text),
            ] {
                texts.push((format!("{f}.{name}"), text));
            }
            for (h, text) in &e.headers {
                texts.push((format!("{f}.headers.{h}"), text));
            }
        }
        for (i, c) in rc.slack_configs.iter().enumerate() {
            let f = format!("receivers[{r}].slack_configs[{i}]");
            for (name, text) in [
                ("channel", &c.channel),
                ("username", &c.username),
                ("color", &c.color),
                ("title", &c.title),
                ("title_link", &c.title_link),
                ("pretext", &c.pretext),
                ("text", &c.text),
                ("footer", &c.footer),
                ("fallback", &c.fallback),
                ("callback_id", &c.callback_id),
                ("icon_emoji", &c.icon_emoji),
                ("icon_url", &c.icon_url),
                ("image_url", &c.image_url),
                ("thumb_url", &c.thumb_url),
            ] {
                texts.push((format!("{f}.{name}"), text.as_str()));
            }
            for (j, fl) in c.fields.iter().enumerate() {
                texts.push((format!("{f}.fields[{j}].title"), &fl.title));
                texts.push((format!("{f}.fields[{j}].value"), &fl.value));
            }
        }
    }
    texts
        .into_iter()
        .filter_map(|(field, text)| {
            templates
                .check_text(text)
                .err()
                .map(|e| format!("{field}: {e}"))
        })
        .collect()
}

/// The template data of a notification (`notify.GetTemplateData`).
pub fn template_data(
    ctx: &NotifyCtx,
    alerts: &[Arc<Alert>],
    external_url: &str,
) -> crate::template::Value {
    crate::template::Data::new(
        &ctx.receiver,
        &ctx.group_labels,
        alerts,
        ctx.now,
        external_url,
    )
    .to_value()
}

/// What Alertmanager carries in a `context.Context` through the pipeline.
#[derive(Clone)]
pub struct NotifyCtx {
    pub group_key: Arc<str>,
    pub group_labels: LabelSet,
    pub receiver: Arc<str>,
    /// The flush time: every decision in one flush uses the same clock.
    pub now: Timestamp,
    pub repeat_interval: Duration,
    /// The flush must finish by then (`max(group_interval, 10s)`).
    pub deadline: tokio::time::Instant,
    pub cancel: CancellationToken,
    /// Set by the dedup stage for the set-notifies stage.
    pub firing_hashes: Vec<u64>,
    pub resolved_hashes: Vec<u64>,
    pub reason: Option<NotificationReason>,
    /// The route's time intervals (not inherited from parents).
    pub mute_time_intervals: Vec<String>,
    pub active_time_intervals: Vec<String>,
    /// Where the time stages record that they muted the group.
    pub marker: Arc<GroupMarker>,
}

pub trait Stage: Send + Sync {
    fn exec<'a>(
        &'a self,
        ctx: &'a mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Alert>>, NotifyError>>;
}

/// Delivers one notification to one destination. Implementations report
/// whether a failure is worth retrying within this flush.
pub trait Notifier: Send + Sync {
    fn notify<'a>(
        &'a self,
        ctx: &'a NotifyCtx,
        alerts: &'a [Arc<Alert>],
    ) -> BoxFuture<'a, Result<(), NotifyError>>;
}

/// One entry of a receiver's `*_configs` list.
pub struct Integration {
    pub notifier: Arc<dyn Notifier>,
    pub key: ReceiverKey,
    pub send_resolved: bool,
}

/// Runs stages in order, stopping quietly once no alert is left.
pub struct MultiStage(pub Vec<Arc<dyn Stage>>);

impl Stage for MultiStage {
    fn exec<'a>(
        &'a self,
        ctx: &'a mut NotifyCtx,
        mut alerts: Vec<Arc<Alert>>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Alert>>, NotifyError>> {
        Box::pin(async move {
            for s in &self.0 {
                if alerts.is_empty() {
                    return Ok(alerts);
                }
                alerts = s.exec(ctx, alerts).await?;
            }
            Ok(alerts)
        })
    }
}

/// Runs each integration's stages concurrently; any failure fails the flush
/// (so resolved alerts stay for the next one), errors joined.
pub struct FanoutStage(pub Vec<MultiStage>);

impl Stage for FanoutStage {
    fn exec<'a>(
        &'a self,
        ctx: &'a mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Alert>>, NotifyError>> {
        Box::pin(async move {
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
        })
    }
}

/// What the stages of a pipeline share with the rest of Herald.
pub struct PipelineDeps {
    pub nflog: Arc<dyn NotificationLog>,
    pub metrics: Arc<Metrics>,
    pub external_url: String,
    /// `--data.retention`, capping notification-log entries.
    pub retention: Duration,
    pub inhibitor: Arc<Inhibitor>,
    pub silences: Arc<Silences>,
    /// Set when this node is part of a cluster.
    pub cluster: Option<Arc<crate::cluster::ClusterHandle>>,
}

/// `GossipSettleStage`: no notification before the cluster has settled,
/// so a node that just started does not notify what its peers already did.
pub struct GossipSettleStage {
    pub cluster: Arc<crate::cluster::ClusterHandle>,
}

impl Stage for GossipSettleStage {
    fn exec<'a>(
        &'a self,
        ctx: &'a mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Alert>>, NotifyError>> {
        Box::pin(async move {
            loop {
                if let Some(p) = self.cluster.peer() {
                    p.wait_ready(&ctx.cancel).await;
                    break;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = ctx.cancel.cancelled() => break,
                }
            }
            Ok(alerts)
        })
    }
}

/// The wait stage: this node holds each notification back
/// `position × --cluster.peer-timeout`, so the first node in the cluster
/// notifies and logs it and the others find it logged (fail open: if the
/// first node is gone, the next one notifies after its wait).
pub struct WaitStage {
    pub cluster: Arc<crate::cluster::ClusterHandle>,
}

impl Stage for WaitStage {
    fn exec<'a>(
        &'a self,
        ctx: &'a mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Alert>>, NotifyError>> {
        Box::pin(async move {
            let wait = self.cluster.peer_wait();
            if !wait.is_zero() {
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = ctx.cancel.cancelled() => {}
                }
            }
            Ok(alerts)
        })
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

impl Stage for ClaimStage {
    fn exec<'a>(
        &'a self,
        ctx: &'a mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> BoxFuture<'a, Result<Vec<Arc<Alert>>, NotifyError>> {
        Box::pin(async move {
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
        })
    }
}

impl ClaimStage {
    /// Waits while a live peer's claim on the same notification holds;
    /// true when the peer has logged it (or a newer view) meanwhile.
    async fn wait_for_claims(
        &self,
        ctx: &NotifyCtx,
        peer: &crate::cluster::Peer,
        key: &str,
        hash: u64,
    ) -> bool {
        while peer.other_claim(key, hash, false).is_some() {
            if dedup::covered_by_peer(self.nflog.as_ref(), ctx, &self.integration) {
                return true;
            }
            if tokio::time::Instant::now() >= ctx.deadline || ctx.cancel.is_cancelled() {
                return false;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = ctx.cancel.cancelled() => {}
            }
        }
        false
    }
}

/// The notification stages of every receiver that a route uses.
pub struct Pipeline {
    receivers: HashMap<String, Arc<dyn Stage>>,
}

impl Pipeline {
    /// Builds the integrations of every receiver in the config and wraps them
    /// in their stages.
    pub fn build(config: &LoadedConfig, deps: &PipelineDeps) -> Result<Pipeline, String> {
        let PipelineDeps {
            nflog,
            metrics,
            external_url,
            retention,
            inhibitor,
            silences,
            cluster,
        } = deps;
        let retention = *retention;
        let mut receivers: HashMap<String, Arc<dyn Stage>> = HashMap::new();
        // Top-level time_intervals and the deprecated mute_time_intervals
        // share one namespace (names are unique across both).
        let intervals: TimeIntervals = Arc::new(
            config
                .config
                .time_intervals
                .iter()
                .chain(&config.config.mute_time_intervals)
                .map(|ti| (ti.name.clone(), ti.clone()))
                .collect(),
        );
        let templates = Arc::new(
            crate::template::Templates::load(&config.config.templates)
                .map_err(|e| format!("loading templates: {e}"))?,
        );
        for problem in template_problems(config, &templates) {
            tracing::warn!(err = %problem, "Template does not parse: notifications using it will fail");
        }
        for rc in &config.config.receivers {
            let mut notifiers: Vec<(&'static str, Arc<dyn Notifier>, bool)> = Vec::new();
            let named = |e: String| format!("receiver {:?}: {e}", rc.name);
            for wc in &rc.webhook_configs {
                let n = webhook::Webhook::new(wc, external_url).map_err(named)?;
                notifiers.push(("webhook", Arc::new(n), wc.send_resolved));
            }
            for ec in &rc.email_configs {
                let n = email::Email::new(ec, templates.clone(), external_url).map_err(named)?;
                notifiers.push(("email", Arc::new(n), ec.send_resolved));
            }
            for sc in &rc.slack_configs {
                let n = slack::Slack::new(sc, templates.clone(), external_url).map_err(named)?;
                notifiers.push(("slack", Arc::new(n), sc.send_resolved));
            }
            let mut per_integration = Vec::new();
            let mut index: HashMap<&'static str, usize> = HashMap::new();
            for (kind, notifier, send_resolved) in notifiers {
                let i = index.entry(kind).or_default();
                let integration = Arc::new(Integration {
                    notifier,
                    key: ReceiverKey {
                        group_name: rc.name.clone(),
                        integration: kind,
                        index: *i,
                    },
                    send_resolved,
                });
                *i += 1;
                metrics.init_integration(kind);
                let mut stages: Vec<Arc<dyn Stage>> = Vec::new();
                if let Some(c) = cluster {
                    stages.push(Arc::new(WaitStage { cluster: c.clone() }));
                }
                stages.push(Arc::new(DedupStage {
                    nflog: nflog.clone(),
                    integration: integration.clone(),
                }));
                if let Some(c) = cluster {
                    stages.push(Arc::new(ClaimStage {
                        cluster: c.clone(),
                        nflog: nflog.clone(),
                        integration: integration.clone(),
                    }));
                }
                stages.extend([
                    Arc::new(RetryStage {
                        integration: integration.clone(),
                        metrics: metrics.clone(),
                        cluster_nflog: cluster.as_ref().map(|_| nflog.clone()),
                    }) as Arc<dyn Stage>,
                    Arc::new(SetNotifiesStage {
                        nflog: nflog.clone(),
                        integration,
                        retention,
                    }) as Arc<dyn Stage>,
                ]);
                per_integration.push(MultiStage(stages));
            }
            let mut stages: Vec<Arc<dyn Stage>> = Vec::new();
            if let Some(c) = cluster {
                stages.push(Arc::new(GossipSettleStage { cluster: c.clone() }));
            }
            receivers.insert(
                rc.name.clone(),
                Arc::new(MultiStage(
                    stages
                        .into_iter()
                        .chain([
                            Arc::new(InhibitStage {
                                inhibitor: inhibitor.clone(),
                            }) as Arc<dyn Stage>,
                            Arc::new(TimeActiveStage {
                                intervals: intervals.clone(),
                            }),
                            Arc::new(TimeMuteStage {
                                intervals: intervals.clone(),
                            }),
                            Arc::new(SilenceStage {
                                silences: silences.clone(),
                            }),
                            Arc::new(FanoutStage(per_integration)) as Arc<dyn Stage>,
                        ])
                        .collect(),
                )),
            );
        }
        Ok(Pipeline { receivers })
    }

    /// Runs the receiver's pipeline. `Ok` means the flush succeeded, even if
    /// nothing needed sending.
    pub async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<(), NotifyError> {
        let Some(stage) = self.receivers.get(ctx.receiver.as_ref()) else {
            return Err(NotifyError::new(
                false,
                FailureReason::Other,
                format!("unknown receiver {:?}", ctx.receiver),
            ));
        };
        stage.exec(ctx, alerts).await.map(|_| ())
    }
}
