//! The retry and set-notifies stages (`notify/notify.go`): deliver with
//! exponential backoff until the flush deadline, then record what was sent.

use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;

use super::{FailureReason, Integration, NotifyCtx, NotifyError, Stage};
use crate::metrics::Metrics;
use crate::model::Alert;
use crate::nflog::NotificationLog;

/// cenkalti/backoff's defaults, which Alertmanager uses unchanged.
const INITIAL_INTERVAL: Duration = Duration::from_millis(500);
const MULTIPLIER: f64 = 1.5;
const RANDOMIZATION: f64 = 0.5;
const MAX_INTERVAL: Duration = Duration::from_secs(60);

/// The delay before retry `n` (0-based), with ±50% jitter.
pub fn backoff_delay(n: u32) -> Duration {
    let base = INITIAL_INTERVAL.as_secs_f64() * MULTIPLIER.powi(n as i32);
    let base = base.min(MAX_INTERVAL.as_secs_f64());
    let jitter = rand::rng().random_range(-RANDOMIZATION..=RANDOMIZATION);
    Duration::from_secs_f64(base * (1.0 + jitter))
}

/// How a delivery that did not fail ended.
enum Delivered {
    Sent,
    /// In a cluster, a peer notified the same alerts while this node
    /// retried.
    ByPeer,
}

/// The instrumentation scope of the notify stages' spans (Go's package).
const NOTIFY_SCOPE: &str = "github.com/prometheus/alertmanager/notify";

pub struct RetryStage {
    pub integration: Arc<Integration>,
    pub metrics: Arc<Metrics>,
    /// In a cluster, the log is checked before each retry: once a peer has
    /// notified these alerts (or a newer view), retrying would only repeat
    /// it or, worse, send a stale message after a newer one.
    pub cluster_nflog: Option<Arc<dyn NotificationLog>>,
    /// Where each delivery's outcome is recorded (`history`); `None` with
    /// `--notification-history.max-records=0`.
    pub history: Option<Arc<crate::history::Recorder>>,
}

impl RetryStage {
    fn label(&self) -> String {
        format!(
            "{}/{}[{}]",
            self.integration.key.group_name,
            self.integration.key.integration,
            self.integration.key.index
        )
    }

    /// `attempt` counts the attempts made, for the history.
    async fn attempt_until_deadline(
        &self,
        ctx: &NotifyCtx,
        sent: &[Arc<Alert>],
        attempts: &mut u32,
    ) -> Result<Delivered, NotifyError> {
        let name = self.integration.key.integration;
        let mut last: Option<NotifyError> = None;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            *attempts = attempt;
            let started = std::time::Instant::now();
            // Go's backoff ticker starts its timer when it hands out a tick,
            // that is when the attempt starts: the next attempt comes
            // `backoff` after this one began, or at once if it took longer.
            let attempt_started = tokio::time::Instant::now();
            let span = crate::otel::start(
                NOTIFY_SCOPE,
                "notify.Integration.Notify",
                opentelemetry::trace::SpanKind::Client,
                &opentelemetry::Context::current(),
                || {
                    vec![
                        opentelemetry::KeyValue::new("alerting.notify.integration.name", name),
                        opentelemetry::KeyValue::new("alerting.alerts.count", sent.len() as i64),
                    ]
                },
            );
            let notify = opentelemetry::context::FutureExt::with_context(
                self.integration.notifier.notify(ctx, sent),
                span.context().clone(),
            );
            let result = tokio::select! {
                r = notify => r,
                _ = tokio::time::sleep_until(ctx.deadline) => Err(NotifyError::new(false, FailureReason::ContextDeadlineExceeded, "context deadline exceeded")),
                _ = ctx.cancel.cancelled() => Err(NotifyError::new(false, FailureReason::ContextCanceled, "context canceled")),
            };
            self.metrics
                .observe_request(name, started.elapsed(), result.is_ok());
            if let Err(e) = &result {
                span.set_attribute(opentelemetry::KeyValue::new(
                    "alerting.notify.error.recoverable",
                    e.retryable,
                ));
                span.error(e.message.clone());
            }
            span.end();
            match result {
                Ok(()) => {
                    if attempt > 1 {
                        tracing::info!(receiver = %ctx.receiver, integration = %self.label(), attempts = attempt, "Notify success");
                    }
                    return Ok(Delivered::Sent);
                }
                // The flush's own deadline or cancellation (an
                // integration's `timeout` is retryable and goes on).
                Err(e)
                    if !e.retryable
                        && (e.reason == FailureReason::ContextDeadlineExceeded
                            || e.reason == FailureReason::ContextCanceled) =>
                {
                    return Err(self.give_up(last.unwrap_or(e), attempt));
                }
                Err(e) if !e.retryable => {
                    return Err(NotifyError::new(
                        false,
                        e.reason,
                        format!("{}: notify retry canceled due to unrecoverable error after {attempt} attempts: {e}", self.label()),
                    ));
                }
                Err(e) => {
                    if last.as_ref().is_none_or(|l| l.message != e.message) {
                        tracing::warn!(integration = %self.label(), attempts = attempt, err = %e, "Notify attempt failed, will retry later");
                    }
                    last = Some(e);
                }
            }
            // A receiver that said when to come back (429 Retry-After) is not
            // called sooner; the flush deadline still bounds the wait.
            let asked = last
                .as_ref()
                .and_then(|e| e.retry_after)
                .unwrap_or_default();
            let wake = (attempt_started + backoff_delay(attempt - 1))
                .max(tokio::time::Instant::now() + asked);
            tokio::select! {
                _ = tokio::time::sleep_until(wake.min(ctx.deadline)) => {}
                _ = ctx.cancel.cancelled() => {}
                _ = ctx.stopping.cancelled() => {}
            }
            let stopping = ctx.cancel.is_cancelled() || ctx.stopping.is_cancelled();
            if tokio::time::Instant::now() >= ctx.deadline || stopping {
                let reason = if stopping {
                    FailureReason::ContextCanceled
                } else {
                    FailureReason::ContextDeadlineExceeded
                };
                let e = last.unwrap_or_else(|| {
                    NotifyError::new(false, reason, "context deadline exceeded")
                });
                return Err(self.give_up(e, attempt));
            }
            if let Some(nflog) = &self.cluster_nflog {
                if super::dedup::covered_by_peer(nflog.as_ref(), ctx, &self.integration) {
                    tracing::debug!(integration = %self.label(), attempts = attempt, "a peer notified the group meanwhile; not retrying");
                    return Ok(Delivered::ByPeer);
                }
            }
        }
    }

    /// Records how the delivery ended.
    fn record(
        &self,
        ctx: &NotifyCtx,
        sent: &[Arc<Alert>],
        result: &Result<Delivered, NotifyError>,
        attempts: u32,
    ) {
        let Some(history) = &self.history else {
            return;
        };
        use crate::history::{Outcome, Report};
        let mut report = Report::of(match result {
            Ok(Delivered::Sent) => Outcome::Success,
            // What the receiver got came from the peer.
            Ok(Delivered::ByPeer) => Outcome::Deduplicated,
            Err(_) => Outcome::Failure,
        });
        report.reason = ctx.reason.map(|r| r.as_str());
        report.attempts = attempts;
        if let Err(e) = result {
            report.error = Some(&e.message);
            report.failure_reason = Some(e.reason.as_str());
        }
        history.record(
            &crate::history::Flush {
                receiver: &ctx.receiver,
                integration: Some((self.integration.key.integration, self.integration.key.index)),
                group_key: &ctx.group_key,
                group_labels: &ctx.group_labels,
                alerts: sent,
                now: ctx.now,
            },
            report,
        );
    }

    fn give_up(&self, e: NotifyError, attempts: u32) -> NotifyError {
        NotifyError::new(
            false,
            e.reason,
            format!(
                "{}: notify retry canceled after {attempts} attempts: {e}",
                self.label()
            ),
        )
    }
}

#[async_trait::async_trait]
impl Stage for RetryStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let name = self.integration.key.integration;
        self.metrics.notifications_total(name);
        // Without send_resolved, a flush with only resolved alerts counts
        // as delivered (so the log records the resolution) but sends
        // nothing; otherwise resolved alerts are left out of the message.
        let sent: Vec<Arc<Alert>> = if self.integration.send_resolved {
            alerts.clone()
        } else {
            if ctx.firing_hashes.is_empty() {
                return Ok(alerts);
            }
            alerts
                .iter()
                .filter(|a| !a.resolved_at(ctx.now))
                .cloned()
                .collect()
        };
        let span = crate::otel::start(
            NOTIFY_SCOPE,
            "notify.RetryStage.Exec",
            opentelemetry::trace::SpanKind::Internal,
            &opentelemetry::Context::current(),
            || {
                vec![
                    opentelemetry::KeyValue::new(
                        "alerting.group.name",
                        self.integration.key.group_name.clone(),
                    ),
                    opentelemetry::KeyValue::new("alerting.integration.name", name),
                    opentelemetry::KeyValue::new("alerting.alerts.count", alerts.len() as i64),
                ]
            },
        );
        let mut attempts = 0;
        let result = opentelemetry::context::FutureExt::with_context(
            self.attempt_until_deadline(ctx, &sent, &mut attempts),
            span.context().clone(),
        )
        .await;
        self.record(ctx, &sent, &result, attempts);
        match result {
            Ok(_) => {
                span.end();
                crate::eventrecorder::record(|| {
                    let flush = crate::eventrecorder::flush_info();
                    crate::eventrecorder::events::notification(
                        &crate::eventrecorder::events::Notification {
                            group: crate::eventrecorder::events::GroupInfo {
                                group_key: &ctx.group_key,
                                group_labels: &ctx.group_labels,
                                receiver: &ctx.receiver,
                                matchers: flush.as_ref().map_or(&[], |f| &f.matchers),
                                group_uuid: flush.as_ref().map_or("", |f| &f.group_uuid),
                            },
                            sent: &sent,
                            firing: &ctx.firing_hashes,
                            resolved: &ctx.resolved_hashes,
                            repeat_interval: ctx.repeat_interval,
                            reason: ctx.reason,
                            integration: name,
                            index: self.integration.key.index,
                            flush_id: flush.as_ref().map_or(0, |f| f.flush_id),
                            now: ctx.now,
                        },
                    )
                });
                Ok(alerts)
            }
            Err(e) => {
                span.error(e.message.clone());
                span.end();
                self.metrics.notification_failed(name, e.reason.as_str());
                Err(e)
            }
        }
    }
}

pub struct SetNotifiesStage {
    pub nflog: Arc<dyn NotificationLog>,
    pub integration: Arc<Integration>,
    /// `--data.retention`, which caps how long an entry is kept.
    pub retention: Duration,
}

#[async_trait::async_trait]
impl Stage for SetNotifiesStage {
    async fn exec(
        &self,
        ctx: &mut NotifyCtx,
        alerts: Vec<Arc<Alert>>,
    ) -> Result<Vec<Arc<Alert>>, NotifyError> {
        let expiry = (ctx.repeat_interval * 2).min(self.retention);
        // Cloned out: the lock is not held across the commit.
        let receiver_data = ctx
            .receiver_data
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        // Herald stamps an entry with its flush time, which its own rules
        // compare. Beside Alertmanager nodes it stamps the time it logs, as
        // they do: the log keeps the latest entry, and a delivery that
        // retried past a peer's newer notification must be what the log
        // says the receiver heard last, or nobody repairs it (the soak's
        // mixed cluster left resolved alerts firing at the receiver).
        let stamp = if ctx.alertmanager_rules {
            jiff::Timestamp::now().max(ctx.now)
        } else {
            ctx.now
        };
        // The durable log resolves once its entry is committed.
        self.nflog
            .log(
                &ctx.group_key,
                &self.integration.key,
                ctx.firing_hashes.clone(),
                ctx.resolved_hashes.clone(),
                receiver_data,
                stamp,
                expiry,
            )
            .await
            .map_err(|e| NotifyError::new(false, FailureReason::Other, e.to_string()))?;
        Ok(alerts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nflog::{MemNotificationLog, ReceiverKey};
    use std::sync::atomic::{AtomicU32, Ordering};

    /// A receiver that always fails (retryably) and counts the attempts.
    struct Failing(Arc<AtomicU32>);

    #[async_trait::async_trait]
    impl super::super::Notifier for Failing {
        async fn notify(
            &self,
            _ctx: &NotifyCtx,
            _alerts: &[Arc<Alert>],
        ) -> Result<(), NotifyError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(NotifyError::new(true, FailureReason::Other, "down"))
        }
    }

    /// A flush of one firing alert (hash 1) to receiver `r`.
    fn firing_ctx(
        now: jiff::Timestamp,
        deadline_in: Duration,
        stopping: tokio_util::sync::CancellationToken,
    ) -> NotifyCtx {
        NotifyCtx {
            group_key: "{}:{}".into(),
            group_labels: Default::default(),
            route_labels: Default::default(),
            receiver: "r".into(),
            now,
            repeat_interval: Duration::from_secs(3600),
            deadline: tokio::time::Instant::now() + deadline_in,
            cancel: Default::default(),
            stopping,
            firing_hashes: vec![1],
            resolved_hashes: vec![],
            reason: None,
            mute_time_intervals: vec![],
            active_time_intervals: vec![],
            marker: Default::default(),
            receiver_data: Default::default(),
            muted_resolved: Vec::new(),
            alertmanager_rules: false,
        }
    }

    /// Beside Alertmanager nodes, an entry says when it was logged (as
    /// theirs do), so a delivery that retried past a peer's notification
    /// is the newest entry; among Herald nodes it says when its flush was.
    #[tokio::test]
    async fn entries_are_stamped_with_the_log_time_beside_alertmanager() {
        let key = ReceiverKey {
            group_name: "r".into(),
            integration: "webhook",
            index: 0,
        };
        let flushed = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(8);
        for (am, stamped_late) in [(false, false), (true, true)] {
            let nflog = Arc::new(MemNotificationLog::default());
            let stage = SetNotifiesStage {
                nflog: nflog.clone(),
                integration: Arc::new(Integration {
                    notifier: Arc::new(Failing(Default::default())),
                    key: key.clone(),
                    send_resolved: true,
                }),
                retention: Duration::from_secs(3600),
            };
            let mut ctx = firing_ctx(flushed, Duration::from_secs(60), Default::default());
            ctx.alertmanager_rules = am;
            stage.exec(&mut ctx, Vec::new()).await.unwrap();
            let e = nflog.query("{}:{}", &key).unwrap();
            assert_eq!(
                e.timestamp > flushed,
                stamped_late,
                "alertmanager rules: {am}"
            );
        }
    }

    /// A clustered node retrying a failing receiver stops once a peer's
    /// notification of the same alerts reaches its log, instead of
    /// retrying until the flush deadline.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_clustered_retry_stops_when_a_peer_has_notified() {
        let attempts = Arc::new(AtomicU32::new(0));
        let key = ReceiverKey {
            group_name: "r".into(),
            integration: "webhook",
            index: 0,
        };
        let nflog = Arc::new(MemNotificationLog::default());
        let stage = RetryStage {
            integration: Arc::new(Integration {
                notifier: Arc::new(Failing(attempts.clone())),
                key: key.clone(),
                send_resolved: true,
            }),
            metrics: Arc::new(Metrics::new()),
            cluster_nflog: Some(nflog.clone()),
            history: None,
        };
        let now = jiff::Timestamp::now();
        let mut ctx = firing_ctx(now, Duration::from_secs(60), Default::default());
        let started = tokio::time::Instant::now();
        let run = tokio::spawn(async move { stage.exec(&mut ctx, Vec::new()).await.is_ok() });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while attempts.load(Ordering::SeqCst) == 0 {
            assert!(std::time::Instant::now() < deadline, "no first attempt");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // A peer delivered the same alerts (its entry arrives by gossip).
        nflog
            .log(
                "{}:{}",
                &key,
                vec![1],
                vec![],
                Default::default(),
                now,
                Duration::from_secs(600),
            )
            .await
            .unwrap();
        assert!(run.await.unwrap(), "covered by the peer: done");
        assert!(attempts.load(Ordering::SeqCst) <= 2);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "well before the deadline"
        );
    }

    /// Stopping Herald ends a retry loop at its next backoff: the attempt
    /// under way finishes, no new one starts, so a receiver that is down
    /// does not hold the stop for the whole grace period.
    #[tokio::test(start_paused = true)]
    async fn a_stop_ends_the_retries_after_the_attempt_under_way() {
        let attempts = Arc::new(AtomicU32::new(0));
        let stage = RetryStage {
            integration: Arc::new(Integration {
                notifier: Arc::new(Failing(attempts.clone())),
                key: ReceiverKey {
                    group_name: "r".into(),
                    integration: "webhook",
                    index: 0,
                },
                send_resolved: true,
            }),
            metrics: Arc::new(Metrics::new()),
            cluster_nflog: None,
            history: None,
        };
        let stopping = tokio_util::sync::CancellationToken::new();
        let mut ctx = firing_ctx(
            jiff::Timestamp::now(),
            Duration::from_secs(300),
            stopping.clone(),
        );
        let started = tokio::time::Instant::now();
        let stop = async {
            // Long enough for a few retries on the paused clock.
            tokio::time::sleep(Duration::from_secs(5)).await;
            stopping.cancel();
        };
        let (result, ()) = tokio::join!(stage.exec(&mut ctx, Vec::new()), stop);
        // The flush fails with the receiver's last error, as a reload's
        // cancellation does.
        assert_eq!(result.unwrap_err().reason, FailureReason::Other);
        let tried = attempts.load(Ordering::SeqCst);
        assert!((2..10).contains(&tried), "{tried} attempts");
        assert_eq!(
            started.elapsed(),
            Duration::from_secs(5),
            "ends at the stop"
        );
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert_eq!(attempts.load(Ordering::SeqCst), tried, "nothing after it");
    }

    /// A receiver that fails slowly, recording when each attempt started.
    struct SlowFailing(Arc<std::sync::Mutex<Vec<tokio::time::Instant>>>, Duration);

    #[async_trait::async_trait]
    impl super::super::Notifier for SlowFailing {
        async fn notify(
            &self,
            _ctx: &NotifyCtx,
            _alerts: &[Arc<Alert>],
        ) -> Result<(), NotifyError> {
            self.0.lock().unwrap().push(tokio::time::Instant::now());
            tokio::time::sleep(self.1).await;
            Err(NotifyError::new(true, FailureReason::Other, "timeout"))
        }
    }

    /// The backoff runs from the start of an attempt, as Go's backoff
    /// ticker does: an attempt that took longer than the backoff (a
    /// receiver hitting its `timeout`) is retried as soon as it ends, not a
    /// whole backoff later. Alertmanager's acceptance test
    /// `TestWebhookTimeout` depends on this timing.
    #[tokio::test(start_paused = true)]
    async fn the_backoff_counts_from_the_start_of_an_attempt() {
        let starts = Arc::new(std::sync::Mutex::new(Vec::new()));
        let stage = RetryStage {
            integration: Arc::new(Integration {
                notifier: Arc::new(SlowFailing(starts.clone(), Duration::from_secs(1))),
                key: ReceiverKey {
                    group_name: "r".into(),
                    integration: "webhook",
                    index: 0,
                },
                send_resolved: true,
            }),
            metrics: Arc::new(Metrics::new()),
            cluster_nflog: None,
            history: None,
        };
        let mut ctx = firing_ctx(
            jiff::Timestamp::now(),
            Duration::from_millis(3500),
            Default::default(),
        );
        assert!(stage.exec(&mut ctx, Vec::new()).await.is_err());
        let starts = starts.lock().unwrap();
        // Backoffs of 0.25-0.75 s and 0.375-1.125 s are shorter than or
        // close to the 1 s attempts: the second attempt starts right at
        // the end of the first, the third at most 1.125 s after the second.
        assert!(starts.len() >= 3, "{} attempts", starts.len());
        assert_eq!(starts[1] - starts[0], Duration::from_secs(1));
        let third = starts[2] - starts[1];
        assert!(
            (Duration::from_secs(1)..=Duration::from_millis(1125)).contains(&third),
            "{third:?}"
        );
    }

    #[test]
    fn backoff_grows_and_caps() {
        for _ in 0..50 {
            let d0 = backoff_delay(0).as_secs_f64();
            assert!((0.25..=0.75).contains(&d0), "{d0}");
            let d3 = backoff_delay(3).as_secs_f64();
            assert!((0.5 * 1.6875..=1.5 * 1.6875).contains(&d3), "{d3}");
            assert!(backoff_delay(40).as_secs_f64() <= 90.0);
        }
    }
}
