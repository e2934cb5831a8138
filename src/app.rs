//! The running Alertmanager: state that lives across reloads (alert store,
//! notification log, metrics) and the parts a reload replaces (config,
//! routing tree, pipeline, dispatcher).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jiff::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, ConfigError, LoadedConfig};
use crate::dispatch::{Dispatcher, Route};
use crate::duration::format_go_duration;
use crate::inhibit::Inhibitor;
use crate::metrics::Metrics;
use crate::model::{Alert, Interner};
use crate::nflog::NotificationLog;
use crate::notify::{integration_count, Pipeline, PipelineDeps, PipelineError};
use crate::silence::{Limits, Silences};
use crate::storage::{DurableNotificationLog, Storage, StorageError};
use crate::store::AlertStore;
use crate::tasks::Tasks;

/// Settings from the command line that the core needs.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config_file: PathBuf,
    /// `--storage.path`: where the SQLite database lives.
    pub storage_path: PathBuf,
    pub external_url: String,
    pub retention: Duration,
    pub alerts_gc_interval: Duration,
    pub maintenance_interval: Duration,
    pub silence_limits: Limits,
    /// `--log.silences`: log every silence created, updated or expired here.
    pub log_silences: bool,
    /// `--alerts.per-alertname-limit` (0 = none).
    pub per_alertname_limit: usize,
    /// What one API request may carry (Herald's own flags).
    pub input_limits: InputLimits,
    /// `--dispatch.start-delay`: no group flushes before this long after
    /// start (reloads included: the delay counts from the process start).
    pub dispatch_start_delay: Duration,
    /// `--enable-feature=classic-mode`: label names restricted to
    /// `[a-zA-Z_][a-zA-Z0-9_]*` as before Alertmanager 0.27.
    pub classic_mode: bool,
    /// Set when `--cluster.peer` makes this node part of a cluster; the
    /// peer itself is started after the app (it gossips the app's state).
    pub cluster: Option<Arc<crate::cluster::ClusterHandle>>,
    /// The wall clock every decision by time reads.
    pub clock: Clock,
    /// `--enable-feature=event-recorder`: the config's `event_recorder:`
    /// outputs are written to.
    pub event_recorder: bool,
    /// `--enable-feature=notify-resolved-when-muted` (Herald's): see
    /// `notify::mute`.
    pub notify_resolved_when_muted: bool,
    /// `--notification-history.max-records` (Herald's): the most
    /// notification-history rows kept; 0 records nothing.
    pub history_max_records: usize,
}

/// Herald's limits on one API request, for a deployment open to clients it
/// does not trust; 0 is no limit, the default, since Alertmanager has none.
#[derive(Clone, Copy, Debug, Default)]
pub struct InputLimits {
    /// `--web.max-request-body-bytes`: larger bodies are answered 413.
    pub max_request_body_bytes: usize,
    /// `--alerts.max-alerts-per-request`: a longer list is refused whole.
    pub max_alerts_per_request: usize,
    /// `--alerts.max-labels-per-alert`: such an alert is refused, like one
    /// that fails Alertmanager's validation.
    pub max_labels_per_alert: usize,
    /// `--alerts.max-label-value-bytes`: likewise, for one label's value.
    pub max_label_value_bytes: usize,
}

/// What a config (re)load builds.
pub struct Runtime {
    pub config: LoadedConfig,
    pub route: Arc<Route>,
    pub inhibitor: Arc<Inhibitor>,
    pub dispatcher: Arc<Dispatcher>,
}

pub struct App {
    pub settings: Settings,
    pub store: AlertStore,
    /// Label strings shared by all stored alerts.
    pub interner: Interner,
    pub storage: Storage,
    pub metrics: Arc<Metrics>,
    pub nflog: Arc<dyn NotificationLog>,
    pub silences: Arc<Silences>,
    /// The notification history's records (`history::query` reads them),
    /// and the recording end the pipelines share across reloads (`None`
    /// when recording is off).
    pub(crate) history: Arc<dyn crate::history::HistoryStore>,
    history_recorder: Option<Arc<crate::history::Recorder>>,
    runtime: ArcSwap<Runtime>,
    pub started: Timestamp,
    /// No aggregation group flushes before this (`--dispatch.start-delay`).
    dispatch_start: tokio::time::Instant,
    limiter: Option<crate::limit::AlertNameLimiter>,
    /// Cancelled when a stop begins: the servers stop accepting and the
    /// group timers and maintenance loops end.
    pub shutdown: CancellationToken,
    /// Every background task, the dispatchers' group timers included.
    pub tasks: Tasks,
    reload_lock: tokio::sync::Mutex<()>,
    /// The `tracing:` block's tracer provider, swapped on reload.
    tracing: crate::otel::Manager,
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Tracing(#[from] crate::otel::OtelError),
    /// The blocking task loading the config panicked or was cancelled
    /// (the runtime shutting down).
    #[error("reload interrupted: {0}")]
    Interrupted(#[from] tokio::task::JoinError),
}

impl App {
    /// Loads the config and starts the dispatcher. Fails (and Herald does
    /// not start) on a bad config, as Alertmanager does.
    pub fn start(settings: Settings, shutdown: CancellationToken) -> Result<Arc<App>, ReloadError> {
        let silence_stats = crate::silence::SilenceStats::default();
        let nflog_stats = crate::nflog::NflogStats::default();
        let metrics = Arc::new(Metrics::with_stats(&silence_stats, &nflog_stats));
        let config = match Config::load_file(&settings.config_file) {
            Ok(c) => c,
            Err(e) => {
                metrics.config_loaded(0.0, false);
                return Err(e.into());
            }
        };
        let (storage, loaded) = Storage::open(&settings.storage_path)?;
        let nflog: Arc<dyn NotificationLog> = Arc::new(DurableNotificationLog::new(
            storage.clone(),
            loaded.nflog,
            nflog_stats,
        ));
        let mut silences = Silences::new(
            settings.retention,
            settings.silence_limits,
            Some(Arc::new(storage.clone())),
        );
        silences.stats = silence_stats;
        silences.logging = settings.log_silences;
        let silences = Arc::new(silences);
        silences.load(loaded.silences);
        let history: Arc<dyn crate::history::HistoryStore> = Arc::new(storage.clone());
        let history_recorder = crate::history::Recorder::new(
            history.clone(),
            settings.history_max_records,
            settings.clock.clone(),
            settings.cluster.clone(),
        );
        let tasks = Tasks::new();
        let dispatch_start = tokio::time::Instant::now() + settings.dispatch_start_delay;
        let runtime = Self::build(
            &config,
            &settings,
            &nflog,
            &metrics,
            &silences,
            &history_recorder,
            &shutdown,
            &tasks,
            dispatch_start,
        )?;
        let tracing = crate::otel::Manager::new();
        tracing.apply(config.config.tracing.as_ref(), config_dir(&settings))?;
        if settings.event_recorder {
            crate::eventrecorder::start(
                config
                    .config
                    .event_recorder
                    .as_ref()
                    .unwrap_or(&Default::default()),
            );
        }
        let limiter = crate::limit::AlertNameLimiter::new(settings.per_alertname_limit);
        if let Some(l) = &limiter {
            tracing::info!(limit = l.capacity(), "per alert name limit enabled");
        }
        metrics.set_per_alertname_limit(settings.per_alertname_limit);
        metrics.config_loaded(config.hash(), true);
        let started = settings.clock.now();
        let app = Arc::new(App {
            settings,
            store: AlertStore::default(),
            interner: loaded.interner,
            storage,
            metrics,
            nflog,
            silences,
            history,
            history_recorder,
            runtime: ArcSwap::from_pointee(runtime),
            started,
            dispatch_start,
            limiter,
            shutdown,
            tasks,
            reload_lock: tokio::sync::Mutex::new(()),
            tracing,
        });
        app.restore_alerts(loaded.alerts);
        app.clone().spawn_maintenance();
        Ok(app)
    }

    /// Puts the alerts from the database back: store, inhibitor, then
    /// dispatcher (old alerts flush at once, and the restored notification
    /// log keeps that flush from repeating what was already sent).
    fn restore_alerts(&self, alerts: Vec<Alert>) {
        let now = self.settings.clock.now();
        let rt = self.runtime.load();
        // Counted against `--alerts.per-alertname-limit` like posted ones,
        // so a lowered limit holds after a restart too.
        let stored: Vec<Arc<Alert>> = alerts
            .into_iter()
            .filter_map(|a| match &self.limiter {
                None => Some(self.store.put(a, now)),
                Some(l) => {
                    let name = a.labels.get("alertname").unwrap_or("").to_string();
                    self.store
                        .put_if(a, now, |a| l.admit(&name, a.fingerprint, a.ends_at, now))
                }
            })
            .map(|s| s.alert)
            .collect();
        for a in &stored {
            rt.inhibitor.observe(a);
        }
        for a in &stored {
            rt.dispatcher.insert(a);
        }
        rt.dispatcher.release();
        if !stored.is_empty() {
            tracing::info!(alerts = stored.len(), db = %self.storage.path().display(), "Restored alerts");
        }
    }

    #[allow(clippy::too_many_arguments)] // the long-lived parts a reload reuses
    fn build(
        config: &LoadedConfig,
        settings: &Settings,
        nflog: &Arc<dyn NotificationLog>,
        metrics: &Arc<Metrics>,
        silences: &Arc<Silences>,
        history: &Option<Arc<crate::history::Recorder>>,
        shutdown: &CancellationToken,
        tasks: &Tasks,
        dispatch_start: tokio::time::Instant,
    ) -> Result<Runtime, ReloadError> {
        let inhibitor = Arc::new(Inhibitor::new(&config.config.inhibit_rules));
        let deps = PipelineDeps {
            nflog: nflog.clone(),
            metrics: metrics.clone(),
            external_url: settings.external_url.clone(),
            retention: settings.retention,
            inhibitor: inhibitor.clone(),
            silences: silences.clone(),
            cluster: settings.cluster.clone(),
            notify_resolved_when_muted: settings.notify_resolved_when_muted,
            history: history.clone(),
        };
        let pipeline = Pipeline::build(
            &config.config.receivers,
            &config.config.templates,
            config.time_intervals(),
            &deps,
        )?;
        let route = Route::tree(config.root_route());
        log_config_warnings(&route, settings.retention);
        let templates = pipeline.templates.clone();
        let dispatcher = Dispatcher::new(
            route.clone(),
            Arc::new(pipeline),
            metrics.clone(),
            settings.clock.clone(),
            shutdown.child_token(),
            settings.cluster.clone(),
            tasks.clone(),
        )
        .not_before(dispatch_start)
        .held();
        dispatcher.set_templates(templates, settings.external_url.clone());
        metrics.set_configured(
            config.config.receivers.len(),
            integration_count(&config.config.receivers),
            config.config.inhibit_rules.len(),
        );
        Ok(Runtime {
            config: config.clone(),
            route,
            inhibitor,
            dispatcher,
        })
    }

    pub fn runtime(&self) -> arc_swap::Guard<Arc<Runtime>> {
        self.runtime.load()
    }

    /// Reloads the config file (SIGHUP, `POST /-/reload`). On any error the
    /// running config stays in place.
    ///
    /// The work (reading and parsing the file, building the tree, routing
    /// every stored alert into the new groups) runs on the blocking pool:
    /// with 1,000 routes and 100k alerts it is seconds of CPU that would
    /// otherwise stall a runtime worker and every request queued on it.
    pub async fn reload(self: &Arc<Self>) -> Result<(), ReloadError> {
        let _guard = self.reload_lock.lock().await;
        let app = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let c = Config::load_file(&app.settings.config_file)?;
            Self::build(
                &c,
                &app.settings,
                &app.nflog,
                &app.metrics,
                &app.silences,
                &app.history_recorder,
                &app.shutdown,
                &app.tasks,
                app.dispatch_start,
            )
        })
        .await
        .map_err(ReloadError::from)
        .and_then(|r| r);
        // Alertmanager applies the tracing block with the rest: a provider
        // that cannot be built fails the reload.
        let result = result.and_then(|r| {
            self.tracing
                .apply(r.config.config.tracing.as_ref(), config_dir(&self.settings))?;
            Ok(r)
        });
        let runtime = match result {
            Ok(r) => r,
            Err(e) => {
                self.metrics.config_loaded(0.0, false);
                tracing::error!(file = %self.settings.config_file.display(), err = %e, "Loading configuration file failed");
                return Err(e);
            }
        };
        let hash = runtime.config.hash();
        let new = Arc::new(runtime);
        // Swap so alerts posted from now on reach the new runtime, then feed
        // it everything stored (an alert posted meanwhile may be fed twice,
        // which is idempotent): nothing posted during the swap is missed.
        // The new dispatcher is held until the feed is done, so its
        // inhibitor knows every stored alert before any group flushes.
        let old = self.runtime.swap(new.clone());
        old.dispatcher.stop();
        let (app, fed) = (self.clone(), new.clone());
        if let Err(e) = tokio::task::spawn_blocking(move || app.feed(&fed)).await {
            tracing::error!(err = %e, "routing the stored alerts after a reload failed");
        }
        new.dispatcher.release();
        if self.settings.event_recorder {
            let cfg = new.config.config.event_recorder.clone().unwrap_or_default();
            // The writer thread switches outputs; waiting for it is a blocking wait.
            let _ = tokio::task::spawn_blocking(move || crate::eventrecorder::apply(&cfg)).await;
        }
        self.metrics.config_loaded(hash, true);
        tracing::info!(file = %self.settings.config_file.display(), "Completed loading of configuration file");
        Ok(())
    }

    /// Hands every stored alert to a reloaded runtime's inhibitor and
    /// dispatcher, once each. Runs on the blocking pool, on one thread: a
    /// split over both cores measured slower under load (the routes'
    /// regexes then come from `regex`'s shared pool's slow path, which took
    /// 4.4% of the samples, `Pool::get_slow` and `put_value`).
    fn feed(&self, rt: &Runtime) {
        for a in self.store.snapshot() {
            rt.inhibitor.observe(&a);
            rt.dispatcher.insert(&a);
        }
    }

    /// At the end of a stop, after the last flush: records the shutdown
    /// event, lets the recorder's outputs and the span exporter send what
    /// they hold.
    pub async fn stop_telemetry(&self) {
        if self.settings.event_recorder {
            let _ = tokio::task::spawn_blocking(crate::eventrecorder::stop).await;
        }
        self.tracing.stop().await;
    }

    /// Stores an alert (its strings already taken from `self.interner`) and
    /// hands it to the dispatcher; `None` when `--alerts.per-alertname-limit`
    /// refused it (logged and counted, as Alertmanager does).
    /// The caller makes it durable (`Storage::put_alerts`) before it
    /// acknowledges the alert.
    pub fn put_alert(&self, alert: Alert, now: Timestamp) -> Option<Arc<Alert>> {
        let stored = match &self.limiter {
            None => self.store.put(alert, now),
            Some(l) => {
                let name = alert.labels.get("alertname").unwrap_or("").to_string();
                match self.store.put_if(alert, now, |a| {
                    l.admit(&name, a.fingerprint, a.ends_at, now)
                }) {
                    Some(s) => s,
                    None => {
                        tracing::warn!(alertname = %name, err = "alert limited", "error on set alert");
                        self.metrics.alert_limited();
                        return None;
                    }
                }
            }
        };
        if !stored.existed {
            crate::eventrecorder::record(|| {
                crate::eventrecorder::events::alert_created(&stored.alert, now)
            });
        }
        let rt = self.runtime.load();
        rt.inhibitor.observe(&stored.alert);
        rt.dispatcher.insert(&stored.alert);
        Some(stored.alert)
    }

    /// Background upkeep, each on its own interval until shutdown: the
    /// alert GC (store, disk log, inhibitor sources, unused strings) and
    /// the maintenance of the notification log and silences.
    fn spawn_maintenance(self: Arc<Self>) {
        self.every("alert GC", self.settings.alerts_gc_interval, |app, now| {
            let removed = app.store.gc(now);
            if let Some(l) = &app.limiter {
                l.gc(now);
            }
            app.storage.compact_alerts(now);
            app.runtime().inhibitor.gc(now);
            let strings = app.interner.gc();
            tracing::debug!(alerts = removed.len(), strings, "alert GC");
        });
        self.every(
            "maintenance",
            self.settings.maintenance_interval,
            |app, now| {
                app.metrics.nflog_gc(app.nflog.gc(now));
                app.silences.gc(now);
                app.storage
                    .expire_history(crate::history::expiry_cutoff(now, app.settings.retention));
            },
        );
    }

    /// Runs `task` every `period` (not at start) until shutdown.
    fn every(
        self: &Arc<Self>,
        name: &'static str,
        period: Duration,
        task: impl Fn(&App, Timestamp) + Send + 'static,
    ) {
        let app = self.clone();
        self.tasks.spawn(name, async move {
            let mut tick = tokio::time::interval(period.max(Duration::from_millis(100)));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => task(&app, app.settings.clock.now()),
                    _ = app.shutdown.cancelled() => break,
                }
            }
        });
    }
}

/// The config file's directory, which the `tracing:` TLS files are
/// relative to.
fn config_dir(settings: &Settings) -> &std::path::Path {
    settings
        .config_file
        .parent()
        .unwrap_or(std::path::Path::new(""))
}

/// Alertmanager's own warnings about timers that will not behave as the
/// config suggests.
fn log_config_warnings(route: &Arc<Route>, retention: Duration) {
    for r in route.walk() {
        if r.opts.repeat_interval > retention {
            tracing::warn!(route = %r.key, repeat_interval = %format_go_duration(r.opts.repeat_interval), retention = %format_go_duration(retention),
                "repeat_interval is greater than the data retention period. It can lead to notifications being repeated more often than expected.");
        }
        if r.opts.repeat_interval < r.opts.group_interval {
            tracing::warn!(route = %r.key, repeat_interval = %format_go_duration(r.opts.repeat_interval), group_interval = %format_go_duration(r.opts.group_interval),
                "repeat_interval is less than group_interval. Notifications will not repeat until the next group_interval.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LabelSet;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    const CONFIG: &str = "route:\n  receiver: none\n  group_by: [alertname]\n  group_wait: 1h\n  routes:\n    - matchers: ['instance=~\"host-1.*\"']\n      receiver: none\n      continue: true\n    - matchers: ['team=\"a\"']\n      receiver: none\nreceivers:\n  - name: none\n";

    fn settings(dir: &std::path::Path) -> Settings {
        let config_file = dir.join("herald.yml");
        std::fs::write(&config_file, CONFIG).expect("config written");
        Settings {
            config_file,
            storage_path: dir.join("data"),
            external_url: "http://herald.test".into(),
            retention: Duration::from_secs(3600),
            alerts_gc_interval: Duration::from_secs(3600),
            maintenance_interval: Duration::from_secs(3600),
            silence_limits: Limits::default(),
            log_silences: false,
            per_alertname_limit: 0,
            input_limits: InputLimits::default(),
            dispatch_start_delay: Duration::ZERO,
            classic_mode: false,
            cluster: None,
            clock: Clock::system(),
            event_recorder: false,
            notify_resolved_when_muted: false,
            history_max_records: 100,
        }
    }

    fn group_count(app: &App) -> (usize, usize) {
        let groups = app.runtime().dispatcher.groups(|_| true, |_| true);
        (groups.len(), groups.iter().map(|g| g.alerts.len()).sum())
    }

    /// On a one-thread runtime a reload that did its work in place would
    /// run from start to end in one poll; a task polled alongside it must
    /// get the thread while the stored alerts are routed off it, and the
    /// reload still answers only once every alert is in its new groups.
    #[tokio::test(flavor = "current_thread")]
    async fn reload_routes_the_store_off_the_runtime() {
        let dir = tempfile::tempdir().expect("temp dir");
        let app = App::start(settings(dir.path()), CancellationToken::new()).expect("app starts");
        let now = app.settings.clock.now();
        let alerts = 20_000;
        for i in 0..alerts {
            let mut a = crate::model::test_alert(
                now.as_second(),
                now.as_second() + 3600,
                now.as_second(),
                false,
            );
            let (name, instance, team) = (
                format!("A{}", i % 10),
                format!("host-{i}"),
                ["a", "b"][i % 2],
            );
            a.labels = LabelSet::from_strs([
                ("alertname", name.as_str()),
                ("instance", instance.as_str()),
                ("team", team),
            ]);
            a.fingerprint = a.labels.fingerprint();
            assert!(app.put_alert(a, now).is_some());
        }
        let before = group_count(&app);
        let done = AtomicBool::new(false);
        let ticks = AtomicUsize::new(0);
        let reload = async {
            let r = app.reload().await;
            done.store(true, Ordering::SeqCst);
            r
        };
        let ticker = async {
            while !done.load(Ordering::SeqCst) {
                ticks.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
            }
        };
        let (result, ()) = tokio::join!(reload, ticker);
        result.expect("reload succeeds");
        assert!(
            ticks.load(Ordering::SeqCst) > 0,
            "the runtime ran nothing else during the reload"
        );
        // Every stored alert is in the new dispatcher's groups, as in the
        // old one's.
        assert!(before.1 >= alerts, "{before:?}");
        assert_eq!(group_count(&app), before);
        app.shutdown.cancel();
        app.runtime().dispatcher.stop();
        assert_eq!(app.tasks.stop(Duration::from_secs(5)).await, 0);
    }
}
