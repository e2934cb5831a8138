//! `/metrics` with Alertmanager's metric names and labels, so existing
//! dashboards and alerting rules on Alertmanager keep working on Herald.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

fn l1(k: &'static str, v: &str) -> Labels {
    vec![(k, v.to_string())]
}

pub struct Metrics {
    registry: Registry,
    alerts_received: Family<Labels, Counter>,
    alerts_invalid: Family<Labels, Counter>,
    notifications: Family<Labels, Counter>,
    notifications_failed: Family<Labels, Counter>,
    notification_requests: Family<Labels, Counter>,
    notification_requests_failed: Family<Labels, Counter>,
    notification_latency: Family<Labels, Histogram>,
    pub aggregation_groups: Gauge,
    alerts: Family<Labels, Gauge>,
    silences: Family<Labels, Gauge>,
    config_hash: Gauge<f64, AtomicU64>,
    config_last_reload_successful: Gauge,
    config_last_reload_success_timestamp: Gauge<f64, AtomicU64>,
    http_request_duration: Family<Labels, Histogram>,
    http_response_size: Family<Labels, Histogram>,
    receivers: Gauge,
    integrations: Gauge,
    inhibition_rules: Gauge,
    get_in_flight: Family<Labels, Gauge>,
    get_limit_exceeded: Family<Labels, Counter>,
    nflog_gc_removed: Counter,
    cluster: ClusterGauges,
    alerts_limited: Counter,
    per_alert_limit: Gauge,
    storage_write_failures: Family<Labels, Counter>,
}

fn latency_histogram() -> Histogram {
    Histogram::new([1.0, 5.0, 10.0, 15.0, 20.0])
}

fn http_histogram() -> Histogram {
    Histogram::new([0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 20.0, 60.0])
}

fn size_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        100.0, 10.0, 7,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The cluster's gauges and counters, refreshed at scrape time from the
/// peer's own counters.
#[derive(Default)]
struct ClusterGauges {
    enabled: Gauge,
    members: Gauge,
    failed: Gauge,
    position: Gauge,
    health: Gauge,
    received: Counter,
    sent: Counter,
    invalid: Counter,
    pushpull: Counter,
    tls_packet_bytes_sent: Counter,
    tls_packet_bytes_received: Counter,
    tls_streams_sent: Counter,
    tls_streams_received: Counter,
    tls_read_errors: Counter,
    tls_write_errors: Family<Labels, Counter>,
}

/// A cluster peer's state for `/metrics`.
pub struct ClusterSample {
    pub members: usize,
    pub failed: usize,
    pub position: usize,
    /// memberlist's awareness score, as Alertmanager exports it: 0 while
    /// this node's probes are answered, up to 7 when it seems slow itself.
    pub health: u64,
    pub received: u64,
    pub sent: u64,
    pub invalid: u64,
    pub pushpull: u64,
    /// With `--cluster.tls-config`, the TLS transport's counters.
    pub tls: Option<std::sync::Arc<crate::cluster::transport::TlsStats>>,
}

impl Metrics {
    /// Refreshes the cluster metrics (counters move by what the peer's own
    /// counters moved since the last scrape).
    pub fn set_cluster(&self, c: &ClusterSample) {
        let g = &self.cluster;
        g.enabled.set(1);
        g.members.set(c.members as i64);
        g.failed.set(c.failed as i64);
        g.position.set(c.position as i64);
        g.health.set(c.health as i64);
        let mut counters = vec![
            (g.received.clone(), c.received),
            (g.sent.clone(), c.sent),
            (g.invalid.clone(), c.invalid),
            (g.pushpull.clone(), c.pushpull),
        ];
        if let Some(t) = &c.tls {
            use std::sync::atomic::Ordering::Relaxed;
            let write_errors = |kind: &str| {
                g.tls_write_errors
                    .get_or_create(&vec![("connection_type", kind.to_string())])
                    .clone()
            };
            counters.extend([
                (
                    g.tls_packet_bytes_sent.clone(),
                    t.packet_bytes_sent.load(Relaxed),
                ),
                (
                    g.tls_packet_bytes_received.clone(),
                    t.packet_bytes_received.load(Relaxed),
                ),
                (g.tls_streams_sent.clone(), t.streams_sent.load(Relaxed)),
                (
                    g.tls_streams_received.clone(),
                    t.streams_received.load(Relaxed),
                ),
                (g.tls_read_errors.clone(), t.read_errors.load(Relaxed)),
                (write_errors("packet"), t.packet_write_errors.load(Relaxed)),
                (write_errors("stream"), t.stream_write_errors.load(Relaxed)),
            ]);
        }
        for (counter, now) in counters {
            let before = counter.get();
            if now > before {
                counter.inc_by(now - before);
            }
        }
    }

    pub fn new() -> Metrics {
        Self::with_stats(
            &crate::silence::SilenceStats::default(),
            &crate::nflog::NflogStats::default(),
        )
    }

    /// Registers the counters the silences and the notification log keep
    /// themselves alongside Herald's metrics.
    pub fn with_stats(
        silence_stats: &crate::silence::SilenceStats,
        nflog_stats: &crate::nflog::NflogStats,
    ) -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            alerts_received: Family::default(),
            alerts_invalid: Family::default(),
            notifications: Family::default(),
            notifications_failed: Family::default(),
            notification_requests: Family::default(),
            notification_requests_failed: Family::default(),
            notification_latency: Family::new_with_constructor(latency_histogram),
            aggregation_groups: Gauge::default(),
            alerts: Family::default(),
            silences: Family::default(),
            config_hash: Gauge::default(),
            config_last_reload_successful: Gauge::default(),
            config_last_reload_success_timestamp: Gauge::default(),
            http_request_duration: Family::new_with_constructor(http_histogram),
            http_response_size: Family::new_with_constructor(size_histogram),
            receivers: Gauge::default(),
            integrations: Gauge::default(),
            inhibition_rules: Gauge::default(),
            get_in_flight: Family::default(),
            get_limit_exceeded: Family::default(),
            nflog_gc_removed: Counter::default(),
            cluster: ClusterGauges::default(),
            alerts_limited: Counter::default(),
            per_alert_limit: Gauge::default(),
            storage_write_failures: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "alertmanager_alerts_received",
            "The total number of received alerts.",
            m.alerts_received.clone(),
        );
        r.register(
            "alertmanager_alerts_invalid",
            "The total number of received alerts that were invalid.",
            m.alerts_invalid.clone(),
        );
        r.register(
            "alertmanager_notifications",
            "The total number of attempted notifications.",
            m.notifications.clone(),
        );
        r.register(
            "alertmanager_notifications_failed",
            "The total number of failed notifications.",
            m.notifications_failed.clone(),
        );
        r.register(
            "alertmanager_notification_requests",
            "The total number of attempted notification requests.",
            m.notification_requests.clone(),
        );
        r.register(
            "alertmanager_notification_requests_failed",
            "The total number of failed notification requests.",
            m.notification_requests_failed.clone(),
        );
        r.register(
            "alertmanager_notification_latency_seconds",
            "The latency of notifications in seconds.",
            m.notification_latency.clone(),
        );
        r.register(
            "alertmanager_dispatcher_aggregation_groups",
            "Number of active aggregation groups",
            m.aggregation_groups.clone(),
        );
        r.register(
            "alertmanager_alerts",
            "How many alerts by state.",
            m.alerts.clone(),
        );
        r.register(
            "alertmanager_config_hash",
            "Hash of the currently loaded alertmanager configuration.",
            m.config_hash.clone(),
        );
        r.register(
            "alertmanager_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
            m.config_last_reload_successful.clone(),
        );
        r.register(
            "alertmanager_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
            m.config_last_reload_success_timestamp.clone(),
        );
        r.register(
            "alertmanager_http_request_duration_seconds",
            "Histogram of latencies for HTTP requests.",
            m.http_request_duration.clone(),
        );
        r.register(
            "alertmanager_http_response_size_bytes",
            "Histogram of response size for HTTP requests.",
            m.http_response_size.clone(),
        );
        r.register(
            "alertmanager_silences",
            "How many silences by state.",
            m.silences.clone(),
        );
        r.register(
            "alertmanager_silences_queries",
            "How many silence queries were received.",
            silence_stats.queries.clone(),
        );
        r.register(
            "alertmanager_silences_query_duration_seconds",
            "Duration of silence query evaluation.",
            silence_stats.query_duration.clone(),
        );
        r.register(
            "alertmanager_nflog_queries",
            "Number of notification log queries were received.",
            nflog_stats.queries.clone(),
        );
        r.register(
            "alertmanager_nflog_query_duration_seconds",
            "Duration of notification log query evaluation.",
            nflog_stats.query_duration.clone(),
        );
        r.register(
            "alertmanager_nflog_entries_written",
            "Notification log entries recorded, after they are on disk (Herald only).",
            nflog_stats.entries_written.clone(),
        );
        r.register(
            "alertmanager_nflog_gc_duration_seconds",
            "Duration of the last notification log garbage collection cycle.",
            nflog_stats.gc_duration.clone(),
        );
        r.register(
            "alertmanager_silences_gc_duration_seconds",
            "Duration of the last silence garbage collection cycle.",
            silence_stats.gc_duration.clone(),
        );
        r.register(
            "alertmanager_receivers",
            "Number of configured receivers.",
            m.receivers.clone(),
        );
        r.register(
            "alertmanager_integrations",
            "Number of configured integrations.",
            m.integrations.clone(),
        );
        r.register(
            "alertmanager_inhibition_rules",
            "Number of configured inhibition rules.",
            m.inhibition_rules.clone(),
        );
        r.register(
            "alertmanager_http_requests_in_flight",
            "Current number of HTTP requests being processed.",
            m.get_in_flight.clone(),
        );
        r.register(
            "alertmanager_http_concurrency_limit_exceeded",
            "Total number of times an HTTP request failed because the concurrency limit was reached.",
            m.get_limit_exceeded.clone(),
        );
        // Alertmanager's are constant-labelled series that exist from the start.
        let _ = m.get_in_flight.get_or_create(&l1("method", "get"));
        let _ = m.get_limit_exceeded.get_or_create(&l1("method", "get"));
        r.register(
            "alertmanager_nflog_gc_removed",
            "Notification log entries removed by garbage collection.",
            m.nflog_gc_removed.clone(),
        );
        let branch = option_env!("HERALD_BRANCH")
            .unwrap_or("unknown")
            .to_string();
        let build_info: Family<Labels, Gauge> = Family::default();
        // Alertmanager's labels (prometheus/common `version.NewCollector`),
        // with the release Herald implements as the version.
        build_info
            .get_or_create(&vec![
                ("branch", branch.clone()),
                ("goarch", go_arch().to_string()),
                ("goos", std::env::consts::OS.to_string()),
                ("goversion", "none (herald, rust)".to_string()),
                ("revision", crate::herald_revision()),
                ("tags", "unknown".to_string()),
                ("version", crate::ALERTMANAGER_VERSION.to_string()),
            ])
            .set(1);
        r.register(
            "alertmanager_build_info",
            "A metric with a constant '1' value labeled by version, revision, branch, goversion from which alertmanager was built, and the goos and goarch for the build.",
            build_info,
        );
        let herald_info: Family<Labels, Gauge> = Family::default();
        herald_info
            .get_or_create(&vec![
                ("branch", branch),
                (
                    "revision",
                    option_env!("HERALD_REVISION")
                        .unwrap_or("unknown")
                        .to_string(),
                ),
                ("version", env!("CARGO_PKG_VERSION").to_string()),
            ])
            .set(1);
        r.register(
            "herald_storage_write_failures",
            "Changes (alert batches, silence changes, notification log entries) that failed to commit to the database, by reason (Herald only).",
            m.storage_write_failures.clone(),
        );
        for reason in crate::write_error::WriteError::REASONS {
            let _ = m
                .storage_write_failures
                .get_or_create(&l1("reason", reason));
        }
        r.register(
            "herald_build_info",
            "A metric with a constant '1' value labeled by Herald's own version, revision and branch.",
            herald_info,
        );
        r.register(
            "alertmanager_cluster_enabled",
            "Indicates whether the clustering is enabled or not.",
            m.cluster.enabled.clone(),
        );
        r.register(
            "alertmanager_cluster_members",
            "Number indicating current number of members in cluster.",
            m.cluster.members.clone(),
        );
        r.register(
            "alertmanager_cluster_failed_peers",
            "Number indicating the current number of failed peers in the cluster.",
            m.cluster.failed.clone(),
        );
        r.register(
            "alertmanager_peer_position",
            "Position the Alertmanager instance believes it's in. The position determines a peer's behavior in the cluster.",
            m.cluster.position.clone(),
        );
        r.register(
            "alertmanager_cluster_health_score",
            "Health score of the cluster. Lower values are better and zero means 'totally healthy'.",
            m.cluster.health.clone(),
        );
        r.register(
            "alertmanager_cluster_messages_received",
            "Total number of cluster messages received.",
            m.cluster.received.clone(),
        );
        r.register(
            "alertmanager_cluster_messages_sent",
            "Total number of cluster messages sent.",
            m.cluster.sent.clone(),
        );
        r.register(
            "alertmanager_cluster_messages_invalid",
            "Cluster packets dropped: undecodable or from another cluster label (Herald only).",
            m.cluster.invalid.clone(),
        );
        r.register(
            "alertmanager_cluster_pushpull_exchanges",
            "Full-state exchanges with peers (Herald only).",
            m.cluster.pushpull.clone(),
        );
        // Alertmanager's TLS transport counters (zero without
        // `--cluster.tls-config`).
        for (name, help, counter) in [
            (
                "alertmanager_tls_transport_packet_bytes_sent",
                "The number of packet bytes sent to outgoing connections (excluding internal metadata).",
                &m.cluster.tls_packet_bytes_sent,
            ),
            (
                "alertmanager_tls_transport_packet_bytes_received",
                "The number of packet bytes received from incoming connections (excluding internal metadata).",
                &m.cluster.tls_packet_bytes_received,
            ),
            (
                "alertmanager_tls_transport_stream_connections_sent",
                "The number of stream connections sent.",
                &m.cluster.tls_streams_sent,
            ),
            (
                "alertmanager_tls_transport_stream_connections_received",
                "The number of stream connections received.",
                &m.cluster.tls_streams_received,
            ),
            (
                "alertmanager_tls_transport_read_errors",
                "The number of errors encountered while reading from incoming connections.",
                &m.cluster.tls_read_errors,
            ),
        ] {
            r.register(name, help, counter.clone());
        }
        r.register(
            "alertmanager_tls_transport_write_errors",
            "The number of errors encountered while writing to outgoing connections.",
            m.cluster.tls_write_errors.clone(),
        );
        r.register(
            "alertmanager_alerts_limited",
            "Total number of alerts that were dropped due to per alert name limit",
            m.alerts_limited.clone(),
        );
        r.register(
            "alertmanager_alerts_per_alert_limit",
            "Current limit on number of alerts per alert name",
            m.per_alert_limit.clone(),
        );
        let m = Metrics { registry: r, ..m };
        // Alertmanager creates these at start-up, so dashboards and
        // `rate()` see zeros before the first alert or notification.
        for status in ["firing", "resolved"] {
            let _ = m.alerts_received.get_or_create(&vec![
                ("status", status.to_string()),
                ("version", "v2".to_string()),
            ]);
        }
        let _ = m.alerts_invalid.get_or_create(&l1("version", "v2"));
        for integration in ALERTMANAGER_INTEGRATIONS {
            m.init_integration(integration);
        }
        m
    }

    /// Moves `herald_storage_write_failures_total` up to the storage
    /// writer's own counts (taken at scrape time).
    pub fn set_storage_write_failures(&self, counts: &[(&'static str, u64)]) {
        for (reason, now) in counts {
            let c = self
                .storage_write_failures
                .get_or_create(&l1("reason", reason));
            let before = c.get();
            if *now > before {
                c.inc_by(now - before);
            }
        }
    }

    /// An alert refused by `--alerts.per-alertname-limit`.
    pub fn alert_limited(&self) {
        self.alerts_limited.inc();
    }

    pub fn set_per_alertname_limit(&self, limit: usize) {
        self.per_alert_limit
            .set(i64::try_from(limit).unwrap_or(i64::MAX));
    }

    pub fn alert_received(&self, firing: bool) {
        let status = if firing { "firing" } else { "resolved" };
        self.alerts_received
            .get_or_create(&vec![
                ("status", status.to_string()),
                ("version", "v2".to_string()),
            ])
            .inc();
    }

    /// A request's counts at once: `alert_received` per alert built two
    /// label strings and looked the series up for every alert of a batch.
    pub fn alerts_received(&self, firing: u64, resolved: u64, invalid: u64) {
        for (status, n) in [("firing", firing), ("resolved", resolved)] {
            if n > 0 {
                self.alerts_received
                    .get_or_create(&vec![
                        ("status", status.to_string()),
                        ("version", "v2".to_string()),
                    ])
                    .inc_by(n);
            }
        }
        if invalid > 0 {
            self.alerts_invalid
                .get_or_create(&l1("version", "v2"))
                .inc_by(invalid);
        }
    }

    pub fn alert_invalid(&self) {
        self.alerts_invalid
            .get_or_create(&l1("version", "v2"))
            .inc();
    }

    /// Creates an integration's series at zero, as Alertmanager does, so
    /// `rate()` works from the first failure.
    pub fn init_integration(&self, name: &str) {
        let _ = self.notifications.get_or_create(&l1("integration", name));
        let _ = self
            .notification_requests
            .get_or_create(&l1("integration", name));
        let _ = self
            .notification_requests_failed
            .get_or_create(&l1("integration", name));
        for reason in [
            "other",
            "clientError",
            "serverError",
            "authError",
            "rateLimited",
            "contextCanceled",
            "contextDeadlineExceeded",
        ] {
            let _ = self.notifications_failed.get_or_create(&vec![
                ("integration", name.to_string()),
                ("reason", reason.to_string()),
            ]);
        }
        let _ = self
            .notification_latency
            .get_or_create(&l1("integration", name));
    }

    pub fn notifications_total(&self, integration: &str) {
        self.notifications
            .get_or_create(&l1("integration", integration))
            .inc();
    }

    pub fn notification_failed(&self, integration: &str, reason: &str) {
        self.notifications_failed
            .get_or_create(&vec![
                ("integration", integration.to_string()),
                ("reason", reason.to_string()),
            ])
            .inc();
    }

    pub fn observe_request(&self, integration: &str, took: Duration, ok: bool) {
        self.notification_requests
            .get_or_create(&l1("integration", integration))
            .inc();
        if !ok {
            self.notification_requests_failed
                .get_or_create(&l1("integration", integration))
                .inc();
        }
        self.notification_latency
            .get_or_create(&l1("integration", integration))
            .observe(took.as_secs_f64());
    }

    /// One answered HTTP request. The duration carries the status `code`
    /// as Alertmanager's does; the response size does not (nor does Go's).
    pub fn observe_http(
        &self,
        handler: &str,
        method: &str,
        code: u16,
        took: Duration,
        size: Option<u64>,
    ) {
        let mut labels = vec![
            ("handler", handler.to_string()),
            ("method", method.to_ascii_lowercase()),
        ];
        if let Some(n) = size {
            self.http_response_size
                .get_or_create(&labels)
                .observe(n as f64);
        }
        labels.push(("code", code.to_string()));
        self.http_request_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A GET admitted under `--web.get-concurrency` starts (+1) or ends (-1).
    pub fn get_in_flight(&self, delta: i64) {
        self.get_in_flight
            .get_or_create(&l1("method", "get"))
            .inc_by(delta);
    }

    /// A GET refused because `--web.get-concurrency` was reached.
    pub fn get_limit_exceeded(&self) {
        self.get_limit_exceeded
            .get_or_create(&l1("method", "get"))
            .inc();
    }

    pub fn set_configured(&self, receivers: usize, integrations: usize, inhibition_rules: usize) {
        self.receivers.set(receivers as i64);
        self.integrations.set(integrations as i64);
        self.inhibition_rules.set(inhibition_rules as i64);
    }

    pub fn set_alert_counts(&self, active: i64, suppressed: i64, unprocessed: i64) {
        self.alerts
            .get_or_create(&l1("state", "active"))
            .set(active);
        self.alerts
            .get_or_create(&l1("state", "suppressed"))
            .set(suppressed);
        self.alerts
            .get_or_create(&l1("state", "unprocessed"))
            .set(unprocessed);
    }

    pub fn set_silence_counts(&self, counts: &[(crate::silence::SilenceState, usize)]) {
        for (state, n) in counts {
            self.silences
                .get_or_create(&l1("state", state.as_str()))
                .set(*n as i64);
        }
    }

    pub fn config_loaded(&self, hash: f64, ok: bool) {
        self.config_last_reload_successful.set(i64::from(ok));
        if ok {
            self.config_hash.set(hash);
            let now = jiff::Timestamp::now().as_millisecond() as f64 / 1000.0;
            self.config_last_reload_success_timestamp.set(now);
        }
    }

    pub fn nflog_gc(&self, removed: usize) {
        self.nflog_gc_removed.inc_by(removed as u64);
    }

    /// The exposition text, with the `process_*` metrics Prometheus' Go
    /// client adds (dashboards chart Alertmanager's memory and CPU with them).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        let mut process = process_metrics();
        if let Some(events) = crate::eventrecorder::render_metrics() {
            process.push_str(&events);
        }
        match out.rfind("# EOF") {
            Some(pos) => out.insert_str(pos, &process),
            None => out.push_str(&process),
        }
        out
    }
}

/// `process_*` metrics read from /proc (Linux only; empty elsewhere).
fn process_metrics() -> String {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return String::new();
    };
    // Fields after the command name, which may contain spaces, in parens.
    let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
        return String::new();
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Linux reports CPU times in clock ticks; 100 Hz on every common kernel.
    let ticks = 100.0;
    let page = 4096.0;
    let cpu = (num(11) + num(12)) / ticks;
    let start_ticks = num(19);
    let vsize = num(20);
    let rss = num(21) * page;
    let boot = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("btime"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    let fds = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let max_fds = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3)?.parse::<f64>().ok())
        })
        .unwrap_or(0.0);
    format!(
        "# HELP process_cpu_seconds Total user and system CPU time spent in seconds.\n# TYPE process_cpu_seconds counter\nprocess_cpu_seconds_total {cpu}\n\
# HELP process_resident_memory_bytes Resident memory size in bytes.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}\n\
# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n# TYPE process_virtual_memory_bytes gauge\nprocess_virtual_memory_bytes {vsize}\n\
# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {}\n\
# HELP process_open_fds Number of open file descriptors.\n# TYPE process_open_fds gauge\nprocess_open_fds {fds}\n\
# HELP process_max_fds Maximum number of open file descriptors.\n# TYPE process_max_fds gauge\nprocess_max_fds {max_fds}\n",
        boot + start_ticks / ticks
    )
}

/// Every integration 0.34 initialises its notification series for
/// (`notify.Metrics.InitializeFor` without receiver names in metrics),
/// configured or not.
const ALERTMANAGER_INTEGRATIONS: [&str; 18] = [
    "email",
    "pagerduty",
    "wechat",
    "pushover",
    "slack",
    "opsgenie",
    "webhook",
    "victorops",
    "sns",
    "telegram",
    "discord",
    "webex",
    "msteams",
    "msteamsv2",
    "incidentio",
    "jira",
    "rocketchat",
    "mattermost",
];

/// Go's name for the build's architecture (`runtime.GOARCH`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_alertmanager_creates_at_start_exist_at_zero() {
        let text = Metrics::new().render();
        for needle in [
            r#"alertmanager_alerts_received_total{status="resolved",version="v2"} 0"#,
            r#"alertmanager_alerts_invalid_total{version="v2"} 0"#,
            r#"alertmanager_notifications_total{integration="jira"} 0"#,
            r#"alertmanager_notifications_failed_total{integration="sns",reason="contextCanceled"} 0"#,
            r#"alertmanager_notification_latency_seconds_count{integration="msteamsv2"} 0"#,
            r#"alertmanager_build_info{branch="#,
            r#"version="0.34.0"} 1"#,
            "herald_build_info{",
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
    }

    #[test]
    fn exposes_alertmanager_names() {
        let m = Metrics::new();
        m.alert_received(true);
        m.init_integration("webhook");
        m.notification_failed("webhook", "serverError");
        m.config_loaded(42.0, true);
        m.set_configured(2, 3, 1);
        m.observe_http("/metrics", "GET", 200, Duration::from_millis(3), Some(512));
        let text = m.render();
        for needle in [
            r#"alertmanager_alerts_received_total{status="firing",version="v2"} 1"#,
            r#"alertmanager_notifications_failed_total{integration="webhook",reason="serverError"} 1"#,
            r#"alertmanager_notifications_total{integration="webhook"} 0"#,
            "alertmanager_config_last_reload_successful 1",
            "alertmanager_inhibition_rules 1",
            "alertmanager_build_info{",
            "alertmanager_cluster_enabled 0",
            "process_resident_memory_bytes",
            "alertmanager_receivers 2",
            "alertmanager_integrations 3",
            r#"alertmanager_http_request_duration_seconds_count{handler="/metrics",method="get",code="200"} 1"#,
            r#"alertmanager_http_response_size_bytes_count{handler="/metrics",method="get"} 1"#,
        ] {
            assert!(text.contains(needle), "missing {needle} in\n{text}");
        }
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
