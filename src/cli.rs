//! Alertmanager's command line: the same flag names, defaults and duration
//! syntax, so existing unit files and compose files keep working.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::duration::parse_go_duration;

fn go_duration(s: &str) -> Result<Duration, String> {
    parse_go_duration(s).map_err(|e| e.to_string())
}

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
    #[arg(long = "data.retention", default_value = "120h", value_parser = go_duration, help = "How long to keep data for.")]
    pub data_retention: Duration,
    #[arg(long = "data.maintenance-interval", default_value = "15m", value_parser = go_duration)]
    pub data_maintenance_interval: Duration,
    #[arg(long = "alerts.gc-interval", default_value = "30m", value_parser = go_duration, help = "Interval between alert GC.")]
    pub alerts_gc_interval: Duration,
    #[arg(long = "alerts.per-alertname-limit", default_value_t = 0)]
    pub alerts_per_alertname_limit: u64,
    #[arg(long = "silences.max-silences", default_value_t = 0)]
    pub silences_max_silences: u64,
    #[arg(long = "silences.max-silence-size-bytes", default_value_t = 0)]
    pub silences_max_silence_size_bytes: u64,
    #[arg(long = "dispatch.maintenance-interval", default_value = "30s", value_parser = go_duration)]
    pub dispatch_maintenance_interval: Duration,
    #[arg(long = "dispatch.start-delay", default_value = "0s", value_parser = go_duration)]
    pub dispatch_start_delay: Duration,
    #[arg(
        long = "web.listen-address",
        default_value = ":9093",
        help = "Addresses to listen on for the web interface and API (repeatable)."
    )]
    pub web_listen_address: Vec<String>,
    #[arg(long = "web.config.file", default_value = "")]
    pub web_config_file: String,
    #[arg(long = "web.systemd-socket", default_value_t = false)]
    pub web_systemd_socket: bool,
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
        help = "Maximum number of GET requests processed concurrently (0 = number of CPUs)."
    )]
    pub web_get_concurrency: usize,
    #[arg(long = "web.timeout", default_value = "0s", value_parser = go_duration, help = "Timeout for HTTP requests (0 = none).")]
    pub web_timeout: Duration,
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
    #[arg(long = "cluster.peers-resolve-timeout", default_value = "15s", value_parser = go_duration)]
    pub cluster_peers_resolve_timeout: Duration,
    #[arg(long = "cluster.peer-timeout", default_value = "15s", value_parser = go_duration)]
    pub cluster_peer_timeout: Duration,
    #[arg(long = "cluster.gossip-interval", default_value = "200ms", value_parser = go_duration)]
    pub cluster_gossip_interval: Duration,
    #[arg(long = "cluster.pushpull-interval", default_value = "1m0s", value_parser = go_duration)]
    pub cluster_pushpull_interval: Duration,
    #[arg(long = "cluster.tcp-timeout", default_value = "10s", value_parser = go_duration)]
    pub cluster_tcp_timeout: Duration,
    #[arg(long = "cluster.probe-timeout", default_value = "500ms", value_parser = go_duration)]
    pub cluster_probe_timeout: Duration,
    #[arg(long = "cluster.probe-interval", default_value = "1s", value_parser = go_duration)]
    pub cluster_probe_interval: Duration,
    #[arg(long = "cluster.settle-timeout", default_value = "1m0s", value_parser = go_duration)]
    pub cluster_settle_timeout: Duration,
    #[arg(long = "cluster.reconnect-interval", default_value = "10s", value_parser = go_duration)]
    pub cluster_reconnect_interval: Duration,
    #[arg(long = "cluster.reconnect-timeout", default_value = "6h0m0s", value_parser = go_duration)]
    pub cluster_reconnect_timeout: Duration,
    #[arg(long = "cluster.tls-config", default_value = "")]
    pub cluster_tls_config: String,
    #[arg(
        long = "cluster.allow-insecure-public-advertise-address-discovery",
        default_value_t = false
    )]
    pub cluster_allow_insecure_public_advertise_address_discovery: bool,
    #[arg(long = "cluster.label", default_value = "")]
    pub cluster_label: String,
    #[arg(
        long = "enable-feature",
        value_delimiter = ',',
        help = "Experimental features (classic-mode, utf8-strict-mode, ...)."
    )]
    pub enable_feature: Vec<String>,
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    pub log_level: String,
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    pub log_format: String,
    #[arg(long = "version", action = clap::ArgAction::SetTrue, help = "Show application version.")]
    pub version: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate configuration files, like `amtool check-config`.
    #[command(name = "check-config")]
    CheckConfig {
        #[arg(required = true)]
        files: Vec<String>,
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

/// Go's listen-address syntax: `:9093` means every interface.
pub fn parse_listen_address(s: &str) -> Result<SocketAddr, String> {
    let full = if s.starts_with(':') {
        format!("0.0.0.0{s}")
    } else {
        s.to_string()
    };
    if let Ok(a) = full.parse() {
        return Ok(a);
    }
    use std::net::ToSocketAddrs;
    full.to_socket_addrs()
        .map_err(|e| format!("invalid --web.listen-address {s:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("invalid --web.listen-address {s:?}: no address"))
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
        assert_eq!(c.data_retention, Duration::from_secs(48 * 3600));
        assert_eq!(c.cluster_peer.len(), 2);
        assert_eq!(
            c.enable_feature,
            ["classic-mode", "receiver-name-in-metrics"]
        );
        assert!(Cli::try_parse_from(["herald", "--no-such-flag"]).is_err());
        assert!(
            Cli::try_parse_from(["herald", "--data.retention=5d"]).is_err(),
            "Go durations have no days"
        );
    }

    #[test]
    fn external_url_defaults() {
        let (u, p) =
            external_url_and_prefix("http://am.example.com/alertmanager/", "", ":9093").unwrap();
        assert_eq!(u, "http://am.example.com/alertmanager");
        assert_eq!(p, "/alertmanager");
        let (_, p) = external_url_and_prefix("http://x/", "", ":9093").unwrap();
        assert_eq!(p, "");
        assert_eq!(parse_listen_address(":9093").unwrap().port(), 9093);
    }
}
