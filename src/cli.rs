//! Alertmanager's command line: the same flag names, defaults and duration
//! syntax, so existing unit files and compose files keep working.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::duration::parse_go_duration_signed;

/// A Go duration flag that may be negative; what a negative or zero value
/// means is each flag's own (see `Cli::check`).
fn signed_go_duration(s: &str) -> Result<jiff::SignedDuration, String> {
    parse_go_duration_signed(s).map_err(|e| e.to_string())
}

/// kingpin's `Float64()`: Go's `strconv.ParseFloat`, which also takes
/// `inf`, `NaN` and hex floats; Rust's parser takes the decimal forms,
/// `inf` and `NaN`, which is what anyone writes.
fn go_float(s: &str) -> Result<f64, String> {
    s.parse::<f64>()
        .map_err(|_| format!("strconv.ParseFloat: parsing {s:?}: invalid syntax"))
}

/// The feature names `--enable-feature` takes in Alertmanager 0.34
/// (`featurecontrol.AllowedFlags`), in its order.
pub const ALLOWED_FEATURES: [&str; 7] = [
    "alert-names-in-metrics",
    "receiver-name-in-metrics",
    "group-key-in-metrics",
    "classic-mode",
    "utf8-strict-mode",
    "auto-gomemlimit",
    "event-recorder",
];

/// Herald's own `--enable-feature` names (its extensions, off unless asked
/// for, so an unchanged Alertmanager command line behaves as it does in
/// Alertmanager).
pub const HERALD_FEATURES: [&str; 1] = ["notify-resolved-when-muted"];

#[derive(Parser, Debug)]
#[command(
    name = "herald",
    version,
    about = "An Alertmanager-compatible alert router",
    disable_version_flag = true
)]
pub struct Cli {
    #[arg(
        long = "config.file",
        default_value = "alertmanager.yml",
        help = "Alertmanager configuration file name."
    )]
    pub config_file: String,
    #[arg(
        long = "storage.path",
        default_value = "data/",
        help = "Base path for data storage."
    )]
    pub storage_path: String,
    #[arg(long = "data.retention", default_value = "120h", value_parser = signed_go_duration, allow_hyphen_values = true, help = "How long to keep data for.")]
    pub data_retention: jiff::SignedDuration,
    #[arg(long = "data.maintenance-interval", default_value = "15m", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub data_maintenance_interval: jiff::SignedDuration,
    #[arg(long = "alerts.gc-interval", default_value = "30m", value_parser = signed_go_duration, allow_hyphen_values = true, help = "Interval between alert GC.")]
    pub alerts_gc_interval: jiff::SignedDuration,
    /// Go's `Int`: zero or negative is no limit.
    #[arg(
        long = "alerts.per-alertname-limit",
        default_value_t = 0,
        allow_hyphen_values = true,
        help = "Maximum number of alerts per alertname. If negative or zero, no limit is set."
    )]
    pub alerts_per_alertname_limit: i64,
    /// Herald's own limits on one request (none by default, as in
    /// Alertmanager); Go's `Int` convention like the flags around them.
    #[arg(
        long = "alerts.max-alerts-per-request",
        default_value_t = 0,
        allow_hyphen_values = true,
        help = "Herald: maximum number of alerts in one POST /api/v2/alerts; a longer list is refused (400) whole. If negative or zero, no limit is set."
    )]
    pub alerts_max_alerts_per_request: i64,
    #[arg(
        long = "alerts.max-labels-per-alert",
        default_value_t = 0,
        allow_hyphen_values = true,
        help = "Herald: maximum number of labels of one alert; an alert with more is refused (400), the others of its request are stored. If negative or zero, no limit is set."
    )]
    pub alerts_max_labels_per_alert: i64,
    #[arg(
        long = "alerts.max-label-value-bytes",
        default_value_t = 0,
        allow_hyphen_values = true,
        help = "Herald: maximum size in bytes of one label value of an alert; an alert with a longer one is refused (400), the others of its request are stored. If negative or zero, no limit is set."
    )]
    pub alerts_max_label_value_bytes: i64,
    #[arg(
        long = "silences.max-silences",
        default_value_t = 0,
        allow_hyphen_values = true,
        help = "Maximum number of silences, including expired silences. If negative or zero, no limit is set."
    )]
    pub silences_max_silences: i64,
    #[arg(
        long = "silences.max-silence-size-bytes",
        default_value_t = 0,
        allow_hyphen_values = true,
        help = "Maximum silence size in bytes. If negative or zero, no limit is set."
    )]
    pub silences_max_silence_size_bytes: i64,
    #[arg(
        long = "log.silences",
        overrides_with = "no_log_silences",
        help = "Enable logging silences. If it is enabled, the status change of silence will be logged"
    )]
    pub log_silences: bool,
    #[arg(long = "no-log.silences", overrides_with = "log_silences", hide = true)]
    pub no_log_silences: bool,
    #[arg(long = "dispatch.maintenance-interval", default_value = "30s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub dispatch_maintenance_interval: jiff::SignedDuration,
    /// Negative is no delay, as a start time in the past is for Go's timer.
    #[arg(long = "dispatch.start-delay", default_value = "0s", value_parser = signed_go_duration, allow_hyphen_values = true,
        help = "Minimum amount of time to wait before dispatching alerts. This option should be synced with value of --rules.alert.resend-delay on Prometheus.")]
    pub dispatch_start_delay: jiff::SignedDuration,
    #[arg(
        long = "web.max-request-body-bytes",
        default_value_t = 0,
        allow_hyphen_values = true,
        help = "Herald: maximum size in bytes of an API request body; a larger one is refused (413). If negative or zero, no limit is set."
    )]
    pub web_max_request_body_bytes: i64,
    /// Herald's notification history (`GET /api/herald/v1/notifications`):
    /// a bound on its rows, so a flapping receiver cannot fill the disk.
    #[arg(
        long = "notification-history.max-records",
        default_value_t = 100_000,
        help = "Herald: maximum number of notification history records kept (sent, failed, deduplicated and muted notifications; see GET /api/herald/v1/notifications); the oldest are deleted first, and records older than --data.retention too. 0 turns recording off."
    )]
    pub notification_history_max_records: usize,
    #[arg(
        long = "web.listen-address",
        default_value = ":9093",
        help = "Addresses to listen on for the web interface and API (repeatable)."
    )]
    pub web_listen_address: Vec<String>,
    #[arg(long = "web.config.file", default_value = "")]
    pub web_config_file: String,
    #[arg(long = "web.systemd-socket", overrides_with = "no_web_systemd_socket")]
    pub web_systemd_socket: bool,
    #[arg(
        long = "no-web.systemd-socket",
        overrides_with = "web_systemd_socket",
        hide = true
    )]
    pub no_web_systemd_socket: bool,
    #[arg(
        long = "web.external-url",
        default_value = "",
        help = "The URL under which Herald is externally reachable."
    )]
    pub web_external_url: String,
    #[arg(
        long = "web.route-prefix",
        default_value = "",
        help = "Prefix for the internal routes of web endpoints. Defaults to the path of --web.external-url."
    )]
    pub web_route_prefix: String,
    #[arg(
        long = "web.get-concurrency",
        default_value_t = 0,
        allow_hyphen_values = true,
        help = "Maximum number of GET requests processed concurrently. If negative or zero, the limit is the number of CPUs or 8, whichever is larger."
    )]
    pub web_get_concurrency: i64,
    #[arg(long = "web.timeout", default_value = "0s", value_parser = signed_go_duration, allow_hyphen_values = true, help = "Timeout for HTTP requests. If negative or zero, no timeout is set.")]
    pub web_timeout: jiff::SignedDuration,
    /// Herald has no garbage-collected heap to limit; the ratio is checked
    /// as Alertmanager checks it, so a command line it refuses is refused.
    #[arg(
        long = "auto-gomemlimit.ratio",
        default_value = "0.9",
        value_parser = go_float,
        allow_hyphen_values = true,
        help = "Accepted for compatibility (Go's GOMEMLIMIT ratio); Herald has no garbage collector to limit. Must be in (0, 1] with --enable-feature=auto-gomemlimit."
    )]
    pub auto_gomemlimit_ratio: f64,
    /// Unset means `0.0.0.0:9094`, but only with `--cluster.peer`: a node
    /// given neither runs alone instead of opening a port nobody uses.
    #[arg(
        long = "cluster.listen-address",
        help = "Listen address for cluster (default 0.0.0.0:9094 when --cluster.peer is given). Set explicitly, the node listens even without peers so others can join it; empty disables clustering."
    )]
    pub cluster_listen_address: Option<String>,
    #[arg(long = "cluster.advertise-address", default_value = "")]
    pub cluster_advertise_address: String,
    #[arg(long = "cluster.peer")]
    pub cluster_peer: Vec<String>,
    #[arg(long = "cluster.peer-name", default_value = "")]
    pub cluster_peer_name: String,
    #[arg(long = "cluster.peers-resolve-timeout", default_value = "15s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_peers_resolve_timeout: jiff::SignedDuration,
    #[arg(long = "cluster.peer-timeout", default_value = "15s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_peer_timeout: jiff::SignedDuration,
    #[arg(long = "cluster.gossip-interval", default_value = "200ms", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_gossip_interval: jiff::SignedDuration,
    #[arg(long = "cluster.pushpull-interval", default_value = "1m0s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_pushpull_interval: jiff::SignedDuration,
    #[arg(long = "cluster.tcp-timeout", default_value = "10s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_tcp_timeout: jiff::SignedDuration,
    #[arg(long = "cluster.probe-timeout", default_value = "500ms", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_probe_timeout: jiff::SignedDuration,
    #[arg(long = "cluster.probe-interval", default_value = "1s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_probe_interval: jiff::SignedDuration,
    #[arg(long = "cluster.settle-timeout", default_value = "1m0s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_settle_timeout: jiff::SignedDuration,
    #[arg(long = "cluster.reconnect-interval", default_value = "10s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_reconnect_interval: jiff::SignedDuration,
    #[arg(long = "cluster.reconnect-timeout", default_value = "6h0m0s", value_parser = signed_go_duration, allow_hyphen_values = true)]
    pub cluster_reconnect_timeout: jiff::SignedDuration,
    #[arg(long = "cluster.tls-config", default_value = "")]
    pub cluster_tls_config: String,
    #[arg(
        long = "cluster.allow-insecure-public-advertise-address-discovery",
        overrides_with = "no_cluster_allow_insecure_public_advertise_address_discovery"
    )]
    pub cluster_allow_insecure_public_advertise_address_discovery: bool,
    #[arg(
        long = "no-cluster.allow-insecure-public-advertise-address-discovery",
        overrides_with = "cluster_allow_insecure_public_advertise_address_discovery",
        hide = true
    )]
    pub no_cluster_allow_insecure_public_advertise_address_discovery: bool,
    #[arg(long = "cluster.label", default_value = "")]
    pub cluster_label: String,
    /// Kept as given and split by `Cli::features`, so that an empty item
    /// (`a,,b`) is refused as Alertmanager refuses it.
    #[arg(
        long = "enable-feature",
        help = "Comma-separated experimental features to enable. Valid options: alert-names-in-metrics, receiver-name-in-metrics, group-key-in-metrics, classic-mode, utf8-strict-mode, auto-gomemlimit, event-recorder; Herald's own: notify-resolved-when-muted"
    )]
    pub enable_feature: Vec<String>,
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
    #[arg(long = "version", action = clap::ArgAction::SetTrue, help = "Show application version.")]
    pub version: bool,
    /// kingpin's `--help-long` and `--help-man`: Herald prints its long
    /// help for both (it has no man page generator).
    #[arg(long = "help-long", action = clap::ArgAction::SetTrue, hide = true)]
    pub help_long: bool,
    #[arg(long = "help-man", action = clap::ArgAction::SetTrue, hide = true)]
    pub help_man: bool,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The experimental features `--enable-feature` turned on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Features {
    pub alert_names_in_metrics: bool,
    pub receiver_name_in_metrics: bool,
    pub group_key_in_metrics: bool,
    pub classic_mode: bool,
    pub utf8_strict_mode: bool,
    pub auto_gomemlimit: bool,
    pub event_recorder: bool,
    /// Herald's: alerts notified as firing and muted afterwards still get
    /// their resolved notification (Alertmanager #226, #3664).
    pub notify_resolved_when_muted: bool,
}

/// A duration flag where Go's timer treats zero and negative alike: a
/// negative value is zero.
pub fn clamp_negative(d: jiff::SignedDuration) -> Duration {
    if d.is_negative() {
        Duration::ZERO
    } else {
        d.unsigned_abs()
    }
}

/// A Go `Int` limit where zero or negative means none; Herald's limits
/// take 0 for none.
pub fn limit(n: i64) -> usize {
    usize::try_from(n.max(0)).unwrap_or(usize::MAX)
}

impl Cli {
    /// Alertmanager logs this one as its message, not as an `err`.
    pub fn check_memlimit_ratio(&self, features: &Features) -> Result<(), &'static str> {
        if features.auto_gomemlimit
            && !(self.auto_gomemlimit_ratio > 0.0 && self.auto_gomemlimit_ratio <= 1.0)
        {
            return Err(
                "--auto-gomemlimit.ratio must be greater than 0 and less than or equal to 1.",
            );
        }
        Ok(())
    }

    /// `featurecontrol.NewFlags`: every comma-separated item must be a
    /// known feature (an empty item too is refused, as Go splits `a,,b`
    /// into three), with Alertmanager's message for the first that is not.
    /// Repeating the flag adds to the list.
    pub fn features(&self) -> Result<Features, String> {
        let mut f = Features::default();
        for item in self
            .enable_feature
            .iter()
            .filter(|v| !v.is_empty())
            .flat_map(|v| v.split(','))
        {
            match item {
                "alert-names-in-metrics" => f.alert_names_in_metrics = true,
                "receiver-name-in-metrics" => f.receiver_name_in_metrics = true,
                "group-key-in-metrics" => f.group_key_in_metrics = true,
                "classic-mode" => f.classic_mode = true,
                "utf8-strict-mode" => f.utf8_strict_mode = true,
                "auto-gomemlimit" => f.auto_gomemlimit = true,
                "event-recorder" => f.event_recorder = true,
                "notify-resolved-when-muted" => f.notify_resolved_when_muted = true,
                other => return Err(format!("unknown option '{other}' for --enable-feature")),
            }
        }
        Ok(f)
    }

    /// The checks Alertmanager 0.34 makes before it starts
    /// (`app.Options.validate` and `main.go`), with its messages: the
    /// intervals that drive tickers must be positive, the cluster's too
    /// unless clustering is off (`--cluster.listen-address=""`), and
    /// `--auto-gomemlimit.ratio` must be in (0, 1] when its feature is on.
    pub fn check(&self, features: &Features) -> Result<(), String> {
        self.check_memlimit_ratio(features)
            .map_err(str::to_string)?;
        let positive = |name: &str, d: jiff::SignedDuration| {
            if d.is_negative() || d.is_zero() {
                Err(format!("alertmanager/app: Options.{name} must be positive"))
            } else {
                Ok(())
            }
        };
        positive("Retention", self.data_retention)?;
        positive("MaintenanceInterval", self.data_maintenance_interval)?;
        positive("AlertGCInterval", self.alerts_gc_interval)?;
        positive(
            "DispatchMaintenanceInterval",
            self.dispatch_maintenance_interval,
        )?;
        if self.cluster_listen_address.as_deref() != Some("") {
            for (name, d) in [
                ("PeerTimeout", self.cluster_peer_timeout),
                ("PeersResolveTimeout", self.cluster_peers_resolve_timeout),
                ("GossipInterval", self.cluster_gossip_interval),
                ("PushPullInterval", self.cluster_pushpull_interval),
                ("TCPTimeout", self.cluster_tcp_timeout),
                ("ProbeTimeout", self.cluster_probe_timeout),
                ("ProbeInterval", self.cluster_probe_interval),
                ("ReconnectInterval", self.cluster_reconnect_interval),
                ("PeerReconnectTimeout", self.cluster_reconnect_timeout),
            ] {
                positive(name, d).map_err(|e| format!("{e} when clustering is enabled"))?;
            }
        }
        Ok(())
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate configuration files, like `amtool check-config`.
    #[command(name = "check-config")]
    CheckConfig {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Work with Herald's database under `--storage.path`.
    Storage {
        #[command(subcommand)]
        command: StorageCommand,
    },
    /// Work with the routing tree, like `amtool config routes`.
    Routes {
        #[command(subcommand)]
        command: RoutesCommand,
    },
    /// Render notification templates, like `amtool template render`.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Exit 0 if Herald answers `GET /-/healthy` (for container health
    /// checks). A 401 counts as healthy: the server is up, only the check
    /// does not know the basic-auth password.
    Healthcheck {
        #[arg(long, default_value = "http://127.0.0.1:9093/-/healthy")]
        url: String,
        /// Do not verify the server's certificate (checking one's own
        /// container over TLS).
        #[arg(long = "tls-skip-verify")]
        tls_skip_verify: bool,
    },
    /// Read a password on standard input and print its bcrypt hash, for
    /// `basic_auth_users` in the `--web.config.file`.
    #[command(name = "hash-password")]
    HashPassword {
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..=31))]
        cost: u32,
    },
}

#[derive(Subcommand, Debug)]
pub enum StorageCommand {
    /// Salvage every row that can still be read from a damaged database
    /// into a new one; the damaged files are kept beside it as
    /// `herald.db.damaged-<time>`. Herald must not be running on the
    /// directory.
    Recover {
        /// The server's `--storage.path` (default: the server's default).
        #[arg(long = "storage.path")]
        storage_path: Option<String>,
    },
}

/// `herald storage recover`: exit 0 once a new database is in place.
pub fn storage_recover(dir: &str) -> std::process::ExitCode {
    use std::process::ExitCode;
    let dir = std::path::Path::new(dir);
    match crate::storage::recover::recover(dir) {
        Ok(r) => {
            println!("Recovered the database in {}:", dir.display());
            for (what, s) in [
                ("silences", r.silences),
                ("alert versions", r.alerts),
                ("notification log entries", r.nflog),
            ] {
                let mut line = format!("  {what}: {} recovered", s.recovered);
                if s.unparsable > 0 {
                    line += &format!(", {} unreadable rows left out", s.unparsable);
                }
                if s.unreadable_ranges > 0 {
                    line += &format!(
                        ", {} damaged stretch(es) skipped (rows there cannot be counted)",
                        s.unreadable_ranges
                    );
                }
                if s.table_lost {
                    line += ", the table itself could not be read";
                }
                println!("{line}");
            }
            println!("New database: {}", r.db.display());
            for k in &r.kept {
                println!("Kept the damaged file as {}", k.display());
            }
            println!("In a cluster, the node takes in a peer's full state before it sends notifications.");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("herald: error: storage recover: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum TemplateCommand {
    /// Render `--template.text` with the templates from `--template.glob`.
    Render {
        /// Glob of template files to load (repeatable).
        #[arg(long = "template.glob")]
        globs: Vec<String>,
        /// The template text to render.
        #[arg(long = "template.text")]
        text: String,
        /// `text` (default) or `html`.
        #[arg(long = "template.type", default_value = "text", value_parser = ["text", "html"])]
        kind: String,
        /// JSON file with the template data (the webhook payload's shape);
        /// without it, amtool's example data.
        #[arg(long = "template.data")]
        data: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum RoutesCommand {
    /// Print the receivers an alert with these labels is routed to.
    Test {
        #[arg(long = "config.file", default_value = "alertmanager.yml")]
        config_file: String,
        /// Fail unless the receivers equal this comma-separated list.
        #[arg(long = "verify.receivers", default_value = "")]
        verify_receivers: String,
        /// Show the matching routes as a tree.
        #[arg(long = "tree", default_value_t = false)]
        tree: bool,
        /// `name=value` pairs (matcher syntax with `=`).
        labels: Vec<String>,
    },
}

/// Go's `net.SplitHostPort`, with its error texts: `host:port`,
/// `[host]:port` (the brackets may hold an IPv4 address or a name too),
/// `:port`; the port may be empty.
pub fn split_host_port(addr: &str) -> Result<(&str, &str), String> {
    let err = |why: &str| format!("address {addr}: {why}");
    let missing_port = "missing port in address";
    let too_many_colons = "too many colons in address";
    let Some(i) = addr.rfind(':') else {
        return Err(err(missing_port));
    };
    let (host, j, k) = if addr.starts_with('[') {
        let Some(end) = addr.find(']') else {
            return Err(err("missing ']' in address"));
        };
        if end + 1 == addr.len() {
            return Err(err(missing_port));
        }
        if end + 1 != i {
            return Err(err(if addr.as_bytes()[end + 1] == b':' {
                too_many_colons
            } else {
                missing_port
            }));
        }
        (&addr[1..end], 1, end + 1)
    } else {
        let host = &addr[..i];
        if host.contains(':') {
            return Err(err(too_many_colons));
        }
        (host, 0, 0)
    };
    if addr[j..].contains('[') {
        return Err(err("unexpected '[' in address"));
    }
    if addr[k..].contains(']') {
        return Err(err("unexpected ']' in address"));
    }
    Ok((host, &addr[i + 1..]))
}

/// Go's `net.JoinHostPort`: brackets only where the host has a colon.
pub fn join_host_port(host: &str, port: &str) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A listen address as Go's `net.Listen("tcp", …)` reads it: an IP (or no
/// host: every interface) to bind at once, or a name to resolve first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Socket(SocketAddr),
    /// Resolved by the caller off the runtime's threads; Go listens on
    /// one of the name's addresses, IPv4 first.
    Name(String, u16),
}

/// Parses a `--web.listen-address` or `--cluster.listen-address`. An empty
/// port or `0` asks the kernel for a free port, as in Go. An empty host is
/// `0.0.0.0` (Go listens on `[::]` when the host has IPv6; Herald stays on
/// IPv4, which every host has).
pub fn parse_listen_address(s: &str) -> Result<ListenAddr, String> {
    let (host, port) = split_host_port(s)?;
    let port: u16 = if port.is_empty() {
        0
    } else if port.bytes().all(|b| b.is_ascii_digit()) {
        port.parse()
            .map_err(|_| format!("address {s}: invalid port"))?
    } else {
        return Err(format!("address {s}: unknown port"));
    };
    if host.is_empty() {
        return Ok(ListenAddr::Socket(SocketAddr::from(([0, 0, 0, 0], port))));
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ListenAddr::Socket(SocketAddr::new(ip, port))),
        Err(_) if host.contains('%') => Err(format!(
            "address {s}: IPv6 zones are not supported by Herald"
        )),
        Err(_) => Ok(ListenAddr::Name(host.to_string(), port)),
    }
}

/// Resolves a listen address, without blocking the runtime.
pub async fn resolve_listen_address(s: &str) -> Result<SocketAddr, String> {
    match parse_listen_address(s)? {
        ListenAddr::Socket(a) => Ok(a),
        ListenAddr::Name(host, port) => {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| format!("lookup {host}: {e}"))?
                .collect();
            addrs
                .iter()
                .find(|a| a.is_ipv4())
                .or_else(|| addrs.first())
                .copied()
                .ok_or_else(|| format!("lookup {host}: no such host"))
        }
    }
}

/// A `host:port` where Go's memberlist wants an IP (`--cluster.advertise-address`)
/// and takes the port with `strconv.Atoi`.
pub fn parse_ip_port(s: &str) -> Result<SocketAddr, String> {
    let (host, port) = split_host_port(s)?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("address {s}: invalid port"))?;
    let ip: std::net::IpAddr = if host.is_empty() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        host.parse()
            .map_err(|_| format!("address {s}: {host:?} is not an IP address"))?
    };
    Ok(SocketAddr::new(ip, port))
}

/// A `--cluster.peer` as Herald's resolver takes it: Go's forms, with the
/// brackets taken off a bracketed IPv4 address or name (`[10.0.0.1]:9094`).
pub fn normalize_peer(s: &str) -> Result<String, String> {
    let (host, port) = split_host_port(s)?;
    Ok(join_host_port(host, port))
}

/// Alertmanager's defaulting of `--web.external-url` (`http://<host>:<port>/`)
/// and of the route prefix (the external URL's path).
pub fn external_url_and_prefix(
    external: &str,
    route_prefix: &str,
    listen: &str,
) -> Result<(String, String), String> {
    let external = if external.is_empty() {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let port = listen.rsplit(':').next().unwrap_or("9093");
        format!("http://{host}:{port}/")
    } else {
        external.to_string()
    };
    let parsed = url::Url::parse(&external)
        .map_err(|e| format!("invalid --web.external-url {external:?}: {e}"))?;
    let external = external.trim_end_matches('/').to_string();
    let prefix = if route_prefix.is_empty() {
        parsed.path().to_string()
    } else {
        route_prefix.to_string()
    };
    let prefix = format!("/{}", prefix.trim_matches('/'));
    Ok((external, if prefix == "/" { String::new() } else { prefix }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_alertmanager_flags() {
        let c = Cli::try_parse_from([
            "herald",
            "--config.file=/etc/am.yml",
            "--storage.path",
            "/data",
            "--web.listen-address=:9093",
            "--web.listen-address=127.0.0.1:9095",
            "--data.retention=48h",
            "--cluster.peer=a:9094",
            "--cluster.peer=b:9094",
            "--cluster.listen-address=",
            "--log.format=json",
            "--enable-feature=classic-mode,receiver-name-in-metrics",
        ])
        .unwrap();
        assert_eq!(c.config_file, "/etc/am.yml");
        assert_eq!(c.web_listen_address.len(), 2);
        assert_eq!(c.data_retention, jiff::SignedDuration::from_hours(48));
        assert_eq!(c.cluster_peer.len(), 2);
        let f = c.features().unwrap();
        assert!(f.classic_mode && f.receiver_name_in_metrics);
        assert!(Cli::try_parse_from(["herald", "--no-such-flag"]).is_err());
        assert!(
            Cli::try_parse_from(["herald", "--data.retention=5d"]).is_err(),
            "Go durations have no days"
        );
    }

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("herald").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn kingpin_negations_and_new_flags() {
        let c = parse(&["--log.silences", "--no-web.systemd-socket"]);
        assert!(c.log_silences && !c.web_systemd_socket);
        // The last of a flag and its negation wins, as in kingpin.
        let c = parse(&["--log.silences", "--no-log.silences"]);
        assert!(!c.log_silences);
        let c = parse(&["--no-log.silences", "--log.silences"]);
        assert!(c.log_silences);
        let c = parse(&[
            "--cluster.allow-insecure-public-advertise-address-discovery",
            "--no-cluster.allow-insecure-public-advertise-address-discovery",
        ]);
        assert!(!c.cluster_allow_insecure_public_advertise_address_discovery);
        // kingpin bool flags take no value.
        assert!(Cli::try_parse_from(["herald", "--log.silences=false"]).is_err());
        assert!(parse(&["--help-long"]).help_long);
        assert!(parse(&["--help-man"]).help_man);
        assert_eq!(parse(&[]).auto_gomemlimit_ratio, 0.9);
        assert_eq!(
            parse(&["--auto-gomemlimit.ratio", "0.5"]).auto_gomemlimit_ratio,
            0.5
        );
        assert!(Cli::try_parse_from(["herald", "--auto-gomemlimit.ratio=abc"]).is_err());
    }

    #[test]
    fn negative_values_as_go_takes_them() {
        let c = parse(&[
            "--silences.max-silences=-1",
            "--silences.max-silence-size-bytes",
            "-5",
            "--alerts.per-alertname-limit=-3",
            "--web.get-concurrency=-2",
            "--web.timeout=-1s",
            "--dispatch.start-delay=-5m",
            "--cluster.settle-timeout=-1s",
        ]);
        assert_eq!(limit(c.silences_max_silences), 0);
        assert_eq!(limit(c.silences_max_silence_size_bytes), 0);
        assert_eq!(limit(c.alerts_per_alertname_limit), 0);
        assert_eq!(limit(c.web_get_concurrency), 0);
        assert_eq!(clamp_negative(c.web_timeout), Duration::ZERO);
        assert_eq!(clamp_negative(c.dispatch_start_delay), Duration::ZERO);
        assert!(c.check(&Features::default()).is_ok());
        assert_eq!(
            limit(parse(&["--alerts.per-alertname-limit=7"]).alerts_per_alertname_limit),
            7
        );
        // Intervals that drive tickers must be positive (0.34 validate).
        let e = parse(&["--data.retention=-1s"])
            .check(&Features::default())
            .unwrap_err();
        assert_eq!(e, "alertmanager/app: Options.Retention must be positive");
        let e = parse(&["--alerts.gc-interval=0s"])
            .check(&Features::default())
            .unwrap_err();
        assert_eq!(
            e,
            "alertmanager/app: Options.AlertGCInterval must be positive"
        );
        let e = parse(&["--cluster.probe-interval=0s"])
            .check(&Features::default())
            .unwrap_err();
        assert_eq!(
            e,
            "alertmanager/app: Options.ProbeInterval must be positive when clustering is enabled"
        );
        assert!(
            parse(&["--cluster.probe-interval=0s", "--cluster.listen-address="])
                .check(&Features::default())
                .is_ok()
        );
    }

    #[test]
    fn enable_feature_as_featurecontrol() {
        let f = parse(&["--enable-feature=classic-mode,auto-gomemlimit"])
            .features()
            .unwrap();
        assert!(f.classic_mode && f.auto_gomemlimit && !f.utf8_strict_mode);
        let f = parse(&[
            "--enable-feature=event-recorder",
            "--enable-feature=group-key-in-metrics",
        ])
        .features()
        .unwrap();
        assert!(f.event_recorder && f.group_key_in_metrics);
        assert_eq!(
            parse(&["--enable-feature="]).features().unwrap(),
            Features::default()
        );
        for (arg, bad) in [
            ("--enable-feature=foo", "foo"),
            ("--enable-feature=auto-gomaxprocs", "auto-gomaxprocs"),
            ("--enable-feature=classic-mode,,x", ""),
        ] {
            assert_eq!(
                parse(&[arg]).features().unwrap_err(),
                format!("unknown option '{bad}' for --enable-feature")
            );
        }
        for name in ALLOWED_FEATURES.iter().chain(&HERALD_FEATURES) {
            assert!(parse(&[&format!("--enable-feature={name}")])
                .features()
                .is_ok());
        }
        let c = parse(&[
            "--enable-feature=auto-gomemlimit",
            "--auto-gomemlimit.ratio=1.5",
        ]);
        let e = c.check(&c.features().unwrap()).unwrap_err();
        assert_eq!(
            e,
            "--auto-gomemlimit.ratio must be greater than 0 and less than or equal to 1."
        );
        // Without the feature the ratio is not checked, as in Go.
        let c = parse(&["--auto-gomemlimit.ratio=0"]);
        assert!(c.check(&c.features().unwrap()).is_ok());
    }

    #[test]
    fn host_port_as_go_splits_it() {
        for (addr, host, port) in [
            (":9093", "", "9093"),
            ("localhost:9093", "localhost", "9093"),
            ("[::1]:9093", "::1", "9093"),
            ("[10.0.0.1]:9094", "10.0.0.1", "9094"),
            ("0.0.0.0:0", "0.0.0.0", "0"),
            ("127.0.0.1:", "127.0.0.1", ""),
            ("[fe80::1%eth0]:80", "fe80::1%eth0", "80"),
        ] {
            assert_eq!(split_host_port(addr).unwrap(), (host, port), "{addr}");
        }
        for (addr, why) in [
            ("9093", "missing port in address"),
            ("::1:9093", "too many colons in address"),
            ("[::1]", "missing port in address"),
            ("[::1]9093", "missing port in address"),
            ("[::1]::9093", "too many colons in address"),
            ("[::1:9093", "missing ']' in address"),
            ("a[b:9093", "unexpected '[' in address"),
            ("a]b:9093", "unexpected ']' in address"),
        ] {
            assert_eq!(
                split_host_port(addr).unwrap_err(),
                format!("address {addr}: {why}")
            );
        }
        let sock = |s: &str| ListenAddr::Socket(s.parse().unwrap());
        assert_eq!(
            parse_listen_address("[10.0.0.1]:9094").unwrap(),
            sock("10.0.0.1:9094")
        );
        assert_eq!(
            parse_listen_address("[::1]:9093").unwrap(),
            sock("[::1]:9093")
        );
        assert_eq!(
            parse_listen_address("0.0.0.0:0").unwrap(),
            sock("0.0.0.0:0")
        );
        assert_eq!(
            parse_listen_address("127.0.0.1:").unwrap(),
            sock("127.0.0.1:0")
        );
        assert_eq!(
            parse_listen_address("localhost:9093").unwrap(),
            ListenAddr::Name("localhost".into(), 9093)
        );
        assert!(parse_listen_address("127.0.0.1:65536").is_err());
        assert!(parse_listen_address("127.0.0.1:http").is_err());
        assert_eq!(
            parse_ip_port("[10.0.0.1]:9094").unwrap(),
            "10.0.0.1:9094".parse().unwrap()
        );
        assert!(parse_ip_port("10.0.0.1:").is_err());
        assert_eq!(normalize_peer("[10.0.0.2]:9094").unwrap(), "10.0.0.2:9094");
        assert_eq!(normalize_peer("[::1]:9094").unwrap(), "[::1]:9094");
        assert_eq!(normalize_peer("am-1.am:9094").unwrap(), "am-1.am:9094");
        assert!(normalize_peer("am-1.am").is_err());
    }

    #[tokio::test]
    async fn listen_names_resolve_ipv4_first() {
        let a = resolve_listen_address("localhost:0").await.unwrap();
        assert!(a.ip().is_loopback() && a.port() == 0, "{a}");
    }

    #[test]
    fn external_url_defaults() {
        let (u, p) =
            external_url_and_prefix("http://am.example.com/alertmanager/", "", ":9093").unwrap();
        assert_eq!(u, "http://am.example.com/alertmanager");
        assert_eq!(p, "/alertmanager");
        let (_, p) = external_url_and_prefix("http://x/", "", ":9093").unwrap();
        assert_eq!(p, "");
        assert_eq!(
            parse_listen_address(":9093").unwrap(),
            ListenAddr::Socket("0.0.0.0:9093".parse().unwrap())
        );
    }
}
