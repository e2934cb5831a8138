//! The `herald` binary: Alertmanager's server plus the `amtool`-like
//! `check-config` and `routes test` commands.

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio_util::sync::CancellationToken;

use herald::app::{App, Settings};
use herald::cli::{
    clamp_negative, external_url_and_prefix, limit, resolve_listen_address, Cli, Command, Features,
    RoutesCommand, StorageCommand, TemplateCommand,
};
use herald::config::Config;
use herald::dispatch::Route;
use herald::matcher::{parse_matcher, MatchType};
use herald::model::LabelSet;

/// jemalloc rather than glibc's malloc: about 5% less memory held with 100k
/// alerts and no slower ingest (why, and its options: Cargo.toml,
/// .cargo/config.toml).
#[cfg(all(target_os = "linux", not(target_env = "msvc")))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.help_long || cli.help_man {
        use clap::CommandFactory;
        let _ = Cli::command().print_long_help();
        return ExitCode::SUCCESS;
    }
    if cli.version {
        println!(
            "herald, version {} (Alertmanager {} compatible)",
            env!("CARGO_PKG_VERSION"),
            herald::ALERTMANAGER_VERSION
        );
        return ExitCode::SUCCESS;
    }
    // Process-wide, like Go's `compat.InitFromFlags`: the config loader, the
    // API and the subcommands all parse matchers in this mode.
    let feature_items: Vec<&str> = cli
        .enable_feature
        .iter()
        .flat_map(|f| f.split(','))
        .map(str::trim)
        .collect();
    match herald::matcher::Mode::from_features(&feature_items) {
        Ok(mode) => mode.install(),
        Err(e) => {
            eprintln!("herald: error: error parsing the feature flag list: {e}");
            return ExitCode::FAILURE;
        }
    }
    match &cli.command {
        Some(Command::CheckConfig { files }) => return check_config(files),
        Some(Command::HashPassword { cost }) => return hash_password(*cost),
        Some(Command::Storage {
            command: StorageCommand::Recover { storage_path },
        }) => {
            init_logging(&cli.log_level, &cli.log_format);
            return herald::cli::storage_recover(
                storage_path.as_deref().unwrap_or(&cli.storage_path),
            );
        }
        Some(Command::Healthcheck {
            url,
            tls_skip_verify,
        }) => return healthcheck(url, *tls_skip_verify),
        Some(Command::Routes {
            command:
                RoutesCommand::Test {
                    config_file,
                    verify_receivers,
                    tree,
                    labels,
                },
        }) => return routes_test(config_file, verify_receivers, *tree, labels),
        Some(Command::Template {
            command:
                TemplateCommand::Render {
                    globs,
                    text,
                    kind,
                    data,
                },
        }) => return template_render(globs, text, kind, data.as_deref()),
        None => {}
    }
    init_logging(&cli.log_level, &cli.log_format);
    // Checked before anything starts, with Alertmanager's messages, so a
    // command line it refuses is refused here too.
    let features = match cli.features() {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(err = %e, "error parsing the feature flag list");
            return ExitCode::FAILURE;
        }
    };
    log_features(&features);
    if let Err(msg) = cli.check_memlimit_ratio(&features) {
        tracing::error!("{msg}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = cli.check(&features) {
        tracing::error!(err = %e, "alertmanager exited with error");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("starting runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli, features)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(err = %e, "Herald stopped");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str, format: &str) {
    use tracing_subscriber::prelude::*;
    let max_level = match level {
        "debug" => tracing::Level::DEBUG,
        "warn" => tracing::Level::WARN,
        "error" => tracing::Level::ERROR,
        _ => tracing::Level::INFO,
    };
    let format = if format == "json" {
        herald::log::Format::Json
    } else {
        herald::log::Format::Logfmt
    };
    tracing_subscriber::registry()
        .with(herald::log::GoKitLayer { format, max_level })
        .init();
}

/// Alertmanager's warning for each feature turned on, and what Herald does
/// with the ones it only accepts.
fn log_features(f: &Features) {
    if f.alert_names_in_metrics {
        tracing::warn!("Alert names in metrics enabled");
    }
    if f.receiver_name_in_metrics {
        tracing::warn!("Experimental receiver name in metrics enabled");
    }
    if f.group_key_in_metrics {
        tracing::warn!("Experimental group key in metrics enabled");
    }
    if f.classic_mode {
        tracing::warn!("Classic mode enabled");
    }
    if f.utf8_strict_mode {
        tracing::warn!("UTF-8 strict mode enabled");
    }
    if f.auto_gomemlimit {
        tracing::warn!(
            "auto-gomemlimit has no effect in Herald: it has no garbage-collected heap to limit"
        );
    }
    if f.event_recorder {
        tracing::warn!("Experimental event recorder enabled");
    }
    if f.notify_resolved_when_muted {
        tracing::info!("Herald extension enabled: resolved notifications for alerts muted after they were notified");
    }
    for (on, name) in [
        (f.alert_names_in_metrics, "alert-names-in-metrics"),
        (f.receiver_name_in_metrics, "receiver-name-in-metrics"),
        (f.group_key_in_metrics, "group-key-in-metrics"),
    ] {
        if on {
            tracing::warn!(
                feature = name,
                "feature accepted but not implemented by Herald"
            );
        }
    }
}

async fn serve(cli: Cli, features: Features) -> Result<(), String> {
    // Read before anything starts: a web config that cannot be honoured
    // stops Herald rather than serve the API unprotected.
    let web = if cli.web_config_file.is_empty() {
        None
    } else {
        Some(
            herald::web::LiveWebConfig::load(std::path::Path::new(&cli.web_config_file))
                .map_err(|e| format!("--web.config.file: {e}"))?,
        )
    };
    let cluster_settings = cluster_settings(&cli).await?;
    let cluster = cluster_settings
        .as_ref()
        .map(|_| Arc::new(herald::cluster::ClusterHandle::default()));
    // Bound before anything else starts, so that a port 0 is known for the
    // external URL (Alertmanager 0.34 derives it from the bound address).
    let mut listeners = Vec::with_capacity(cli.web_listen_address.len());
    for addr in &cli.web_listen_address {
        let sock = resolve_listen_address(addr)
            .await
            .map_err(|e| format!("listen tcp {addr}: {e}"))?;
        let listener = tokio::net::TcpListener::bind(sock)
            .await
            .map_err(|e| format!("listen tcp {addr}: {e}"))?;
        listeners.push((addr.clone(), listener));
    }
    let first_listen = match listeners.first() {
        Some((_, l)) => l
            .local_addr()
            .map(|a| a.to_string())
            .map_err(|e| format!("listen: {e}"))?,
        None => ":9093".into(),
    };
    let (external_url, prefix) =
        external_url_and_prefix(&cli.web_external_url, &cli.web_route_prefix, &first_listen)?;
    let settings = Settings {
        config_file: cli.config_file.clone().into(),
        storage_path: cli.storage_path.clone().into(),
        external_url,
        retention: clamp_negative(cli.data_retention),
        alerts_gc_interval: clamp_negative(cli.alerts_gc_interval),
        maintenance_interval: clamp_negative(cli.data_maintenance_interval),
        silence_limits: herald::silence::Limits {
            max_silences: limit(cli.silences_max_silences),
            max_silence_size_bytes: limit(cli.silences_max_silence_size_bytes),
        },
        log_silences: cli.log_silences,
        per_alertname_limit: limit(cli.alerts_per_alertname_limit),
        input_limits: herald::app::InputLimits {
            max_request_body_bytes: limit(cli.web_max_request_body_bytes),
            max_alerts_per_request: limit(cli.alerts_max_alerts_per_request),
            max_labels_per_alert: limit(cli.alerts_max_labels_per_alert),
            max_label_value_bytes: limit(cli.alerts_max_label_value_bytes),
        },
        dispatch_start_delay: clamp_negative(cli.dispatch_start_delay),
        classic_mode: features.classic_mode,
        cluster: cluster.clone(),
        clock: herald::clock::Clock::system(),
        event_recorder: features.event_recorder,
        notify_resolved_when_muted: features.notify_resolved_when_muted,
        history_max_records: cli.notification_history_max_records,
    };
    let shutdown = CancellationToken::new();
    // A database Herald refuses is not the configuration file's fault:
    // its message names the database and what to do.
    let app = App::start(settings, shutdown.clone()).map_err(|e| match e {
        herald::app::ReloadError::Storage(e) => e.to_string(),
        e => format!("loading configuration file {}: {e}", cli.config_file),
    })?;
    tracing::info!(file = %cli.config_file, "Completed loading of configuration file");
    let tasks = app.tasks.clone();
    // The cluster outlives the shutdown signal: flushes finishing during
    // the grace period still claim and gossip what they logged.
    let cluster_stop = CancellationToken::new();
    if let (Some(mut cs), Some(handle)) = (cluster_settings, &cluster) {
        cs.full_state_before_ready = app.storage.recovered();
        start_cluster(cs, handle, &app, &cluster_stop).await?;
    }
    if app.storage.recovered() {
        // Once the state is whole again (a peer's merged, or no cluster),
        // a later restart waits for nobody.
        let (storage, peer) = (
            app.storage.clone(),
            cluster.as_ref().and_then(|c| c.peer()).cloned(),
        );
        let stop = shutdown.clone();
        app.tasks.spawn("storage recovery mark", async move {
            if let Some(p) = peer {
                p.wait_ready(&stop).await;
                if stop.is_cancelled() {
                    return;
                }
            }
            if let Err(e) = storage.clear_recovered().await {
                tracing::warn!(err = %e, "clearing the database's recovery mark failed");
            }
        });
    }

    // Go: zero or negative is GOMAXPROCS or 8, whichever is larger.
    let concurrency = match limit(cli.web_get_concurrency) {
        0 => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .max(8),
        n => n,
    };
    // Go: zero or negative is no timeout.
    let timeout = Some(clamp_negative(cli.web_timeout)).filter(|t| !t.is_zero());
    let mut router = herald::server::router(app.clone(), &prefix, concurrency, timeout);
    let mut tls = None;
    if let Some(w) = web {
        router = herald::web::layer(router, w.clone());
        tls = w.current().tls.is_some().then_some(w);
    }

    for (addr, listener) in listeners {
        // exporter-toolkit's two lines, which tools parse for the port a
        // `:0` listener got.
        let bound = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(address = %bound, "Listening on");
        if tls.is_some() {
            tracing::info!(http2 = false, address = %bound, "TLS is enabled.");
        } else {
            tracing::info!(http2 = false, address = %bound, "TLS is disabled.");
        }
        let router = router.clone();
        let stop = shutdown.clone();
        // Graceful: on shutdown the listener closes and the requests being
        // answered finish.
        let done = |r: std::io::Result<()>| {
            if let Err(e) = r {
                tracing::error!(err = %e, "HTTP server failed");
            }
        };
        match &tls {
            Some(cfg) => {
                let listener =
                    herald::web::TlsListener::new(listener, cfg.clone(), shutdown.clone(), &tasks)
                        .map_err(|e| format!("listen on {addr}: {e}"))?;
                tasks.spawn("HTTP server", async move {
                    done(
                        axum::serve(listener, router)
                            .with_graceful_shutdown(async move { stop.cancelled().await })
                            .await,
                    )
                })
            }
            None => tasks.spawn("HTTP server", async move {
                done(
                    axum::serve(listener, router)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await,
                )
            }),
        }
    }
    spawn_signal_handlers(app.clone(), shutdown.clone());
    shutdown.cancelled().await;
    tracing::info!("Received shutdown signal, exiting gracefully");
    // The signal stopped the listeners and the group timers; the flushes
    // already under way finish (their notification-log commits included)
    // or are cut at the end of the grace period.
    tasks.drain_flushes(herald::tasks::SHUTDOWN_GRACE).await;
    cluster_stop.cancel();
    if let Some(peer) = cluster.as_ref().and_then(|c| c.peer()) {
        // Tell the peers we leave, so they do not wait on a dead member.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(3), peer.left()).await;
    }
    let left = tasks.stop(herald::tasks::TASKS_STOP_TIMEOUT).await;
    if left > 0 {
        tracing::warn!(
            tasks = left,
            "background tasks still running at exit are dropped"
        );
    }
    app.stop_telemetry().await;
    let storage = app.storage.clone();
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || storage.close()).await {
        tracing::warn!(err = %e, "flushing the database at shutdown failed");
    }
    Ok(())
}

/// The cluster settings, when `--cluster.peer` asks for a cluster (a node
/// without peers runs alone, as with `--cluster.listen-address=""`).
async fn cluster_settings(cli: &Cli) -> Result<Option<herald::cluster::ClusterSettings>, String> {
    // An empty `--cluster.peer=` (a compose variable left unset) is none.
    let peers: Vec<String> = cli
        .cluster_peer
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|p| herald::cli::normalize_peer(p).map_err(|e| format!("--cluster.peer {p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    // Checked even when no cluster forms, so a broken file is found now.
    let tls = if cli.cluster_tls_config.is_empty() {
        None
    } else {
        Some(herald::cluster::ClusterTls::load(std::path::Path::new(
            &cli.cluster_tls_config,
        ))?)
    };
    // Alertmanager always listens on 0.0.0.0:9094 by default; Herald does
    // when it has peers or was told where to listen (others may join it).
    let listen = match cli.cluster_listen_address.as_deref() {
        Some("") => return Ok(None),
        None if peers.is_empty() => return Ok(None),
        None => "0.0.0.0:9094",
        Some(a) => a,
    };
    let listen = cluster_addr(listen)
        .await
        .map_err(|e| format!("invalid listen address: {e}"))?;
    let advertise = if !cli.cluster_advertise_address.is_empty() {
        cluster_addr(&cli.cluster_advertise_address)
            .await
            .map_err(|e| format!("invalid advertise address: {e}"))?
    } else if !listen.ip().is_unspecified() {
        listen
    } else {
        // The address this host uses to reach others (no packet is sent).
        let probe = std::net::UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect("10.255.255.255:9").map(|_| s))
            .and_then(|s| s.local_addr())
            .map_err(|e| {
                format!("finding an address to advertise (set --cluster.advertise-address): {e}")
            })?;
        std::net::SocketAddr::new(probe.ip(), listen.port())
    };
    let name = if cli.cluster_peer_name.is_empty() {
        uuid::Uuid::new_v4().simple().to_string().to_uppercase()
    } else {
        cli.cluster_peer_name.clone()
    };
    Ok(Some(herald::cluster::ClusterSettings {
        listen,
        advertise,
        peers,
        name,
        peer_timeout: clamp_negative(cli.cluster_peer_timeout),
        gossip_interval: clamp_negative(cli.cluster_gossip_interval),
        pushpull_interval: clamp_negative(cli.cluster_pushpull_interval),
        settle_timeout: clamp_negative(cli.cluster_settle_timeout),
        tcp_timeout: clamp_negative(cli.cluster_tcp_timeout),
        probe_interval: clamp_negative(cli.cluster_probe_interval),
        probe_timeout: clamp_negative(cli.cluster_probe_timeout),
        reconnect_interval: clamp_negative(cli.cluster_reconnect_interval),
        reconnect_timeout: clamp_negative(cli.cluster_reconnect_timeout),
        label: cli.cluster_label.clone(),
        tls,
        full_state_before_ready: false,
    }))
}

/// A cluster address: any form `net.SplitHostPort` takes, with the port a
/// number as `cluster.Create` requires (`strconv.Atoi`); 0 is a free port.
async fn cluster_addr(a: &str) -> Result<std::net::SocketAddr, String> {
    let (_, port) = herald::cli::split_host_port(a)?;
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("address {a}: invalid port"));
    }
    resolve_listen_address(a).await
}

/// Starts the cluster peer on the app's replicated state and sends every
/// local change of it to the peers.
async fn start_cluster(
    cs: herald::cluster::ClusterSettings,
    handle: &Arc<herald::cluster::ClusterHandle>,
    app: &Arc<App>,
    stop: &CancellationToken,
) -> Result<(), String> {
    use herald::cluster::gossip::Gossip;
    let peer = herald::cluster::Peer::start(
        cs,
        herald::cluster::Replicated {
            silences: app.silences.clone(),
            nflog: app.nflog.clone(),
        },
        stop.clone(),
        app.tasks.clone(),
    )
    .await?;
    let p = peer.clone();
    app.silences.on_local_change(Box::new(move |s, expires| {
        p.broadcast(&Gossip::Silence(s.clone(), expires));
    }));
    let p = peer.clone();
    app.nflog.on_local_log(Box::new(move |key, entry| {
        p.broadcast(&Gossip::Nflog(key.to_string(), entry.clone()));
    }));
    tracing::info!(peer = %peer.name(), "cluster peer started");
    handle.set(peer);
    Ok(())
}

fn spawn_signal_handlers(app: Arc<App>, shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let tasks = app.tasks.clone();
    tasks.spawn("signal handler", async move {
        let (Ok(mut hup), Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        loop {
            tokio::select! {
                _ = hup.recv() => { let _ = app.reload().await; }
                _ = term.recv() => break,
                _ = int.recv() => break,
                _ = shutdown.cancelled() => break,
            }
        }
        shutdown.cancel();
    });
}

/// `amtool check-config`: parse every file and summarise what it holds.
fn check_config(files: &[String]) -> ExitCode {
    let mut failed = false;
    for f in files {
        match Config::load_file(std::path::Path::new(f)) {
            Ok(c) => {
                println!("Checking '{f}'  SUCCESS");
                println!("Found:");
                let cfg = &c.config;
                if cfg.global.is_some() {
                    println!(" - global config");
                }
                println!(" - route");
                println!(" - {} inhibit rules", cfg.inhibit_rules.len());
                println!(" - {} receivers", cfg.receivers.len());
                println!(" - {} templates", cfg.templates.len());
                // Beyond amtool: the template files and every template
                // text in the receivers must parse.
                match herald::template::Templates::load(&cfg.templates) {
                    Ok(t) => {
                        for p in herald::notify::template_problems(&cfg.receivers, &t) {
                            println!("  FAILED: {p}");
                            failed = true;
                        }
                    }
                    Err(e) => {
                        println!("  FAILED: templates: {e}");
                        failed = true;
                    }
                }
                println!();
            }
            Err(e) => {
                println!("Checking '{f}'  FAILED: {e}");
                println!();
                failed = true;
            }
        }
    }
    if failed {
        eprintln!("herald: error: failed to validate {} file(s)", files.len());
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `herald healthcheck`.
fn healthcheck(url: &str, tls_skip_verify: bool) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("herald: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let status = rt.block_on(async {
        reqwest::Client::builder()
            .danger_accept_invalid_certs(tls_skip_verify)
            .timeout(std::time::Duration::from_secs(5))
            .build()?
            .get(url)
            .send()
            .await
            .map(|r| r.status().as_u16())
    });
    match status {
        Ok(200 | 401) => ExitCode::SUCCESS,
        Ok(code) => {
            eprintln!("herald: unhealthy: {url} answered {code}");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("herald: unhealthy: {url}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `herald hash-password`: the first line of standard input, hashed.
fn hash_password(cost: u32) -> ExitCode {
    let mut line = String::new();
    if let Err(e) = std::io::stdin().read_line(&mut line) {
        eprintln!("herald: error: reading the password: {e}");
        return ExitCode::FAILURE;
    }
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        eprintln!("herald: error: empty password");
        return ExitCode::FAILURE;
    }
    match bcrypt::hash(password, cost) {
        Ok(h) => {
            println!("{h}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("herald: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `amtool template render`.
fn template_render(globs: &[String], text: &str, kind: &str, data: Option<&str>) -> ExitCode {
    use herald::template::{am, Templates};
    let result = Templates::load(globs)
        .map_err(|e| e.to_string())
        .and_then(|t| {
            let dot = match data {
                Some(path) => std::fs::read_to_string(path)
                    .map_err(|e| format!("{path}: {e}"))
                    .and_then(|s| am::data_from_json(&s).map_err(|e| e.to_string()))?,
                None => am::example_data(jiff::Timestamp::now()),
            };
            Ok((t, dot))
        })
        .and_then(|(t, dot)| {
            if kind == "html" {
                t.execute_html_text(text, &dot)
            } else {
                t.execute_text(text, &dot)
            }
            .map_err(|e| e.to_string())
        });
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("herald: error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `amtool config routes test`.
fn routes_test(config_file: &str, verify: &str, tree: bool, labels: &[String]) -> ExitCode {
    let cfg = match Config::load_file(std::path::Path::new(config_file)) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("herald: error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut pairs = Vec::new();
    // One matcher per argument (`compat.Matcher`), as amtool parses them.
    for l in labels {
        match parse_matcher(l, "cli") {
            Ok(m) if m.kind == MatchType::Equal => {
                pairs.push((m.name.to_string(), m.value.to_string()));
            }
            Ok(_) => {
                eprintln!("herald: error: {l}: Labels must be specified as key=value pairs");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("herald: error: Failed to parse labels: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let ls = LabelSet::from_strs(pairs.iter().map(|(a, b)| (a.as_str(), b.as_str())));
    let root = Route::tree(cfg.root_route());
    let matched = root.matching(&ls);
    let names: Vec<&str> = matched.iter().map(|r| r.opts.receiver.as_str()).collect();
    if tree {
        for r in &matched {
            println!("{}  receiver: {}", r.key, r.opts.receiver);
        }
    } else {
        println!("{}", names.join(","));
    }
    if !verify.is_empty() && verify != names.join(",") {
        eprintln!("WARNING: Expected receivers did not match resolved receivers.");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
