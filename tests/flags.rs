//! Command lines as deployments write them for Alertmanager: the exact
//! argument lists prometheus-operator generates, listen addresses in every
//! form Go's `net.SplitHostPort` takes (port 0 included, found through the
//! log line tools parse), negative values, kingpin's `--no-` flags, refused
//! features, and the limits that act on alerts (`--alerts.per-alertname-limit`,
//! `--dispatch.start-delay`). The system tier runs Alertmanager 0.33.1 on the
//! same arguments.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

const CONFIG: &str = "route:\n  receiver: x\nreceivers:\n  - name: x\n";

/// A process started with exactly the given arguments, its stderr kept.
struct Proc {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    fn start(bin: &Path, args: &[String]) -> Proc {
        let mut child = Command::new(bin)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = log2.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Proc { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The addresses of the `msg="Listening on" address=…` lines
    /// (exporter-toolkit's), as a tool reading the log finds them.
    async fn listening(&self, n: usize) -> Vec<String> {
        wait_for(&format!("{n} Listening on lines"), T, || {
            let addrs: Vec<String> = self
                .log()
                .lines()
                .filter(|l| l.contains(r#"msg="Listening on""#))
                .filter_map(|l| l.split("address=").nth(1))
                .map(|a| a.split_whitespace().next().unwrap_or("").to_string())
                .collect();
            (addrs.len() >= n).then_some(addrs)
        })
        .await
    }

    /// Waits for the process to exit and returns its code.
    async fn exit_code(&mut self) -> i32 {
        let deadline = Instant::now() + T;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "still running; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn herald() -> &'static Path {
    Path::new(herald_bin())
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|a| a.to_string()).collect()
}

/// The files prometheus-operator mounts, under a temporary root.
struct OperatorFiles {
    dir: tempfile::TempDir,
}

impl OperatorFiles {
    fn new(config: &str) -> OperatorFiles {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("alertmanager.env.yaml"), config).unwrap();
        // The operator's web config with no TLS and no users.
        std::fs::write(dir.path().join("web-config.yaml"), "").unwrap();
        OperatorFiles { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// `makeStatefulSetSpec`'s argument list for an Alertmanager resource
/// named `main` in namespace `monitoring` with default fields, version
/// 0.30 or later (in the order `BuildArgs` writes it), with the mounted paths
/// under a temporary root, port 9093/9094 replaced by free ports, the pod's
/// IP by 127.0.0.1 and the peers' pod names by loopback addresses.
fn operator_args(
    files: &OperatorFiles,
    replicas: usize,
    pod: usize,
    web_port: u16,
    cluster_ports: &[u16],
) -> Vec<String> {
    let mut a = vec![
        format!("--config.file={}", files.path("alertmanager.env.yaml")),
        format!("--storage.path={}", files.path(&format!("data-{pod}"))),
        "--data.retention=120h".to_string(),
    ];
    if replicas == 1 {
        a.push("--cluster.listen-address=".into());
    } else {
        a.push(format!(
            "--cluster.listen-address=[127.0.0.1]:{}",
            cluster_ports[pod]
        ));
    }
    a.push(format!("--web.listen-address=:{web_port}"));
    a.push("--web.route-prefix=/".into());
    a.push(format!("--cluster.peer-name=alertmanager-main-{pod}"));
    a.push("--cluster.label=monitoring/main".into());
    for port in cluster_ports.iter().take(replicas) {
        a.push(format!("--cluster.peer=127.0.0.1:{port}"));
    }
    a.push("--cluster.reconnect-timeout=5m".into());
    a.push(format!(
        "--web.config.file={}",
        files.path("web-config.yaml")
    ));
    a
}

#[tokio::test]
async fn prometheus_operator_single_replica_args_start_herald() {
    let files = OperatorFiles::new(CONFIG);
    let port = free_port();
    // One replica: clustering off, yet the operator still lists the pod
    // itself as a peer.
    let args = operator_args(&files, 1, 0, port, &[free_port()]);
    let p = Proc::start(herald(), &args);
    let addrs = p.listening(1).await;
    assert_eq!(addrs, [format!("0.0.0.0:{port}")], "{}", p.log());
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let status = get_json(&format!("{base}/api/v2/status")).await;
    assert_eq!(status["cluster"]["status"], "disabled", "{status}");
}

/// Starts three replicas of `bin` with the operator's arguments and
/// returns, for each, the peers its status API shows (name, address) with
/// what the cluster ports should be.
async fn three_replicas(bin: &Path) -> (Vec<Vec<(String, String)>>, Vec<u16>) {
    let files = OperatorFiles::new(CONFIG);
    let cluster: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let web: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let procs: Vec<Proc> = (0..3)
        .map(|i| Proc::start(bin, &operator_args(&files, 3, i, web[i], &cluster)))
        .collect();
    let mut out = Vec::new();
    for (i, p) in procs.iter().enumerate() {
        let addrs = p.listening(1).await;
        assert!(addrs[0].ends_with(&format!(":{}", web[i])), "{addrs:?}");
        let url = format!("http://127.0.0.1:{}/api/v2/status", web[i]);
        let peers = wait_until(&format!("node {i} sees 3 peers"), T, || {
            let url = url.clone();
            async move {
                let st = reqwest::get(&url).await.ok()?.json::<Value>().await.ok()?;
                let peers = st["cluster"]["peers"].as_array()?.clone();
                (peers.len() == 3).then_some(peers)
            }
        })
        .await;
        let mut seen: Vec<(String, String)> = peers
            .iter()
            .map(|p| {
                (
                    p["name"].as_str().unwrap_or("").to_string(),
                    p["address"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        seen.sort();
        out.push(seen);
    }
    (out, cluster)
}

fn expected_peers(cluster: &[u16]) -> Vec<(String, String)> {
    (0..3)
        .map(|j| {
            (
                format!("alertmanager-main-{j}"),
                format!("127.0.0.1:{}", cluster[j]),
            )
        })
        .collect()
}

#[tokio::test]
async fn prometheus_operator_three_replica_args_form_a_cluster() {
    let (seen, cluster) = three_replicas(herald()).await;
    for (i, peers) in seen.iter().enumerate() {
        assert_eq!(peers, &expected_peers(&cluster), "node {i}");
    }
}

/// The same three-replica arguments give 0.33.1 the same cluster view.
#[cfg(feature = "system-tests")]
#[tokio::test]
async fn prometheus_operator_three_replica_args_match_alertmanager() {
    let (seen, cluster) = three_replicas(&am_current_bin("alertmanager")).await;
    for (i, peers) in seen.iter().enumerate() {
        assert_eq!(peers, &expected_peers(&cluster), "alertmanager node {i}");
    }
}

#[tokio::test]
async fn port_zero_binds_free_ports_logged_as_alertmanager_logs_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("am.yml"), CONFIG).unwrap();
    let args = vec![
        format!("--config.file={}", dir.path().join("am.yml").display()),
        format!("--storage.path={}", dir.path().join("data").display()),
        "--web.listen-address=127.0.0.1:0".into(),
        "--web.listen-address=[127.0.0.1]:0".into(),
        "--web.listen-address=localhost:0".into(),
        "--cluster.listen-address=[127.0.0.1]:0".into(),
    ];
    let p = Proc::start(herald(), &args);
    let addrs = p.listening(3).await;
    let mut ports = Vec::new();
    for a in &addrs {
        let sock: std::net::SocketAddr = a.parse().unwrap_or_else(|_| panic!("{a}"));
        assert_eq!(sock.ip().to_string(), "127.0.0.1", "{a}");
        assert_ne!(sock.port(), 0);
        ports.push(sock.port());
        // The logged address is the one that answers.
        wait_ready(&format!("http://{a}")).await;
    }
    ports.dedup();
    assert_eq!(ports.len(), 3, "three distinct free ports: {addrs:?}");
    assert!(
        p.log().contains(&format!(
            r#"msg="TLS is disabled." http2=false address={}"#,
            addrs[0]
        )),
        "{}",
        p.log()
    );
    // The cluster's own address is the port it got, not :0.
    let st = get_json(&format!("http://{}/api/v2/status", addrs[0])).await;
    let peer = &st["cluster"]["peers"][0]["address"];
    let cluster: std::net::SocketAddr = peer.as_str().unwrap().parse().unwrap();
    assert_eq!(cluster.ip().to_string(), "127.0.0.1");
    assert_ne!(cluster.port(), 0, "{st}");
    std::net::TcpStream::connect(cluster).expect("the advertised cluster port is bound");
}

#[tokio::test]
async fn ipv6_loopback_listen_address() {
    // Hosts without IPv6 on loopback cannot run this check.
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("no IPv6 loopback here");
        return;
    }
    let s = start_herald(CONFIG, &["--web.listen-address=[::1]:0"]).await;
    let addrs: Vec<String> = s
        .log
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains(r#"msg="Listening on""#))
        .filter_map(|l| l.split("address=").nth(1))
        .filter_map(|a| a.split_whitespace().next().map(str::to_string))
        .collect();
    assert_eq!(addrs.len(), 2);
    assert!(addrs[1].starts_with("[::1]:"), "{addrs:?}");
    wait_ready(&format!("http://{}", addrs[1])).await;
}

#[tokio::test]
async fn negative_limits_and_durations_mean_none_as_in_go() {
    let s = start_herald(
        CONFIG,
        &[
            "--silences.max-silences=-1",
            "--silences.max-silence-size-bytes=-1",
            "--alerts.per-alertname-limit=-1",
            "--web.get-concurrency=-1",
            "--web.timeout=-1s",
            "--dispatch.start-delay=-1s",
            "--cluster.settle-timeout=-1s",
            "--log.silences",
            "--no-log.silences",
            "--no-web.systemd-socket",
            "--no-cluster.allow-insecure-public-advertise-address-discovery",
            "--auto-gomemlimit.ratio=0.5",
        ],
    )
    .await;
    for i in 0..3 {
        create_silence(&s.base, "job", &format!("j{i}"), "me", "no limit").await;
    }
    for i in 0..3 {
        let (code, body) = post_alerts(
            &s.base,
            &json!([{"labels": {"alertname": "A", "i": i.to_string()}}]),
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    let alerts = get_json(&format!("{}/api/v2/alerts", s.base)).await;
    assert_eq!(alerts.as_array().unwrap().len(), 3);
    assert!(
        !s.log.lock().unwrap().contains("create silence"),
        "--no-log.silences wins"
    );
}

/// Runs a program to its exit and returns the code and its stderr.
async fn run_to_exit(bin: &Path, args: &[String]) -> (i32, String) {
    let mut p = Proc::start(bin, args);
    let code = p.exit_code().await;
    // The reader thread may still hold the last lines.
    let log = wait_for("stderr read to the end", T, || {
        let l = p.log();
        (!l.is_empty()).then_some(l)
    })
    .await;
    (code, log)
}

fn base_args(dir: &Path) -> Vec<String> {
    std::fs::write(dir.join("am.yml"), CONFIG).unwrap();
    vec![
        format!("--config.file={}", dir.join("am.yml").display()),
        format!("--storage.path={}", dir.join("data").display()),
        "--web.listen-address=127.0.0.1:0".into(),
        "--cluster.listen-address=".into(),
    ]
}

/// Command lines Alertmanager 0.34 refuses at startup, with the error it
/// logs.
fn refused() -> Vec<(Vec<String>, &'static str)> {
    vec![
        (
            s(&["--enable-feature=foo"]),
            r#"msg="error parsing the feature flag list" err="unknown option 'foo' for --enable-feature""#,
        ),
        (
            s(&["--enable-feature=auto-gomaxprocs"]),
            r#"err="unknown option 'auto-gomaxprocs' for --enable-feature""#,
        ),
        (
            s(&["--enable-feature=classic-mode,,receiver-name-in-metrics"]),
            r#"err="unknown option '' for --enable-feature""#,
        ),
        (
            s(&[
                "--enable-feature=auto-gomemlimit",
                "--auto-gomemlimit.ratio=1.5",
            ]),
            r#"msg="--auto-gomemlimit.ratio must be greater than 0 and less than or equal to 1.""#,
        ),
    ]
}

#[tokio::test]
async fn refused_command_lines_exit_1_with_alertmanagers_message() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_args(dir.path());
    let mut cases = refused();
    // 0.34's Options.validate (0.33.1 has no such check).
    cases.push((
        s(&["--data.retention=-1s"]),
        r#"err="alertmanager/app: Options.Retention must be positive""#,
    ));
    cases.push((
        s(&["--cluster.listen-address=127.0.0.1:0", "--cluster.probe-interval=0s"]),
        r#"err="alertmanager/app: Options.ProbeInterval must be positive when clustering is enabled""#,
    ));
    for (extra, want) in cases {
        // A flag is given once (kingpin refuses repeats, as clap does).
        let args: Vec<String> = base
            .iter()
            .filter(|a| {
                let name = a.split('=').next().unwrap_or("");
                !extra.iter().any(|e| e.split('=').next() == Some(name))
            })
            .chain(&extra)
            .cloned()
            .collect();
        let (code, log) = run_to_exit(herald(), &args).await;
        assert_eq!(code, 1, "{extra:?}: {log}");
        assert!(log.contains(want), "{extra:?}: want {want}\n{log}");
    }
    // Every feature of 0.34 is taken.
    let all = format!(
        "--enable-feature={}",
        herald::cli::ALLOWED_FEATURES
            .iter()
            .filter(|f| **f != "utf8-strict-mode")
            .copied()
            .collect::<Vec<_>>()
            .join(",")
    );
    let args: Vec<String> = base.iter().cloned().chain([all]).collect();
    let p = Proc::start(herald(), &args);
    let addr = p.listening(1).await;
    wait_ready(&format!("http://{}", addr[0])).await;
}

#[tokio::test]
async fn help_long_and_help_man_print_help() {
    for flag in ["--help-long", "--help-man"] {
        let out = Command::new(herald_bin()).arg(flag).output().unwrap();
        assert!(out.status.success(), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("--log.silences"), "{flag}: {text}");
        assert!(text.contains("--auto-gomemlimit.ratio"), "{flag}");
    }
}

fn limited_total(metrics: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with("alertmanager_alerts_limited_total"))
        .and_then(|l| l.split_whitespace().last()?.parse().ok())
}

/// Posts 3 alerts named A (distinct fingerprints) and one named B to a
/// server with `--alerts.per-alertname-limit=2`; returns what the API and
/// the metrics show.
async fn limit_scenario(base: &str) -> (Vec<u16>, Vec<String>, Option<f64>) {
    let mut codes = Vec::new();
    for (name, i) in [("A", 1), ("A", 2), ("A", 3), ("B", 1)] {
        let (code, _) = post_alerts(
            base,
            &json!([{"labels": {"alertname": name, "i": i.to_string()}}]),
        )
        .await;
        codes.push(code);
    }
    // The update of a counted alert is taken.
    let (code, _) = post_alerts(
        base,
        &json!([{"labels": {"alertname": "A", "i": "1"}, "annotations": {"x": "y"}}]),
    )
    .await;
    codes.push(code);
    let alerts = wait_until("alerts listed", T, || async {
        let a = get_json(&format!("{base}/api/v2/alerts")).await;
        let a = a.as_array()?.clone();
        (a.len() >= 3).then_some(a)
    })
    .await;
    let mut seen: Vec<String> = alerts
        .iter()
        .map(|a| {
            format!(
                "{}{}",
                a["labels"]["alertname"].as_str().unwrap_or(""),
                a["labels"]["i"].as_str().unwrap_or("")
            )
        })
        .collect();
    seen.sort();
    let metrics = get_text(&format!("{base}/metrics")).await;
    (codes, seen, limited_total(&metrics))
}

#[tokio::test]
async fn per_alertname_limit_refuses_new_alerts_past_the_limit() {
    let s = start_herald(CONFIG, &["--alerts.per-alertname-limit=2"]).await;
    let (codes, seen, limited) = limit_scenario(&s.base).await;
    assert_eq!(codes, [200; 5], "refused alerts are not an API error");
    assert_eq!(seen, ["A1", "A2", "B1"]);
    assert_eq!(limited, Some(1.0));
    let metrics = get_text(&format!("{}/metrics", s.base)).await;
    assert!(
        metrics.contains("alertmanager_alerts_per_alert_limit 2"),
        "{metrics}"
    );
    assert!(s
        .log
        .lock()
        .unwrap()
        .contains(r#"msg="error on set alert""#));
}

#[tokio::test]
async fn dispatch_start_delay_holds_the_first_flush() {
    let hook = Webhook::start().await;
    let config = format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/d")
    );
    let delay = Duration::from_secs(3);
    let started = Instant::now();
    let s = start_herald(&config, &["--dispatch.start-delay=3s"]).await;
    let (code, _) = post_alerts(&s.base, &json!([{"labels": {"alertname": "A"}}])).await;
    assert_eq!(code, 200);
    let got = hook.nth(1, T).await;
    assert!(
        got.at >= started + delay,
        "flushed {:?} after the start, before the delay",
        got.at - started
    );
    // Once the delay has passed, a new group flushes after its group_wait.
    let posted = Instant::now();
    post_alerts(&s.base, &json!([{"labels": {"alertname": "B"}}])).await;
    let got = hook.nth(2, T).await;
    assert!(got.at - posted < delay, "{:?}", got.at - posted);
}

#[tokio::test]
async fn log_silences_logs_each_change() {
    let s = start_herald(CONFIG, &["--log.silences"]).await;
    let id = create_silence(&s.base, "job", "api", "alice", "deploy").await;
    let r = reqwest::Client::new()
        .delete(format!("{}/api/v2/silence/{id}", s.base))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let log = wait_for("silence log lines", T, || {
        let l = s.log.lock().unwrap().clone();
        l.contains("expire silence").then_some(l)
    })
    .await;
    let created = log
        .lines()
        .find(|l| l.contains(r#"msg="create silence""#))
        .unwrap_or_else(|| panic!("{log}"));
    for want in [
        format!("Id={id}"),
        "CreatedBy=alice".to_string(),
        "Comment=deploy".to_string(),
        r#"Matchers="job=api""#.to_string(),
    ] {
        assert!(created.contains(&want), "{want} in {created}");
    }
    assert!(log.contains(r#"msg="expire silence""#), "{log}");
}

/// The same refused command lines stop Alertmanager 0.33.1 with exit 1 and
/// the same message.
#[cfg(feature = "system-tests")]
#[tokio::test]
async fn refused_command_lines_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_args(dir.path());
    let am = am_current_bin("alertmanager");
    for (extra, want) in refused() {
        let args: Vec<String> = base.iter().chain(&extra).cloned().collect();
        let (am_code, am_log) = run_to_exit(&am, &args).await;
        let (code, log) = run_to_exit(herald(), &args).await;
        assert_eq!(
            (code, am_code),
            (1, 1),
            "{extra:?}\nherald: {log}\nam: {am_log}"
        );
        assert!(am_log.contains(want), "alertmanager: {want}\n{am_log}");
        assert!(log.contains(want), "herald: {want}\n{log}");
    }
}

/// prometheus-operator's single-replica arguments start 0.33.1 as they
/// start Herald, and the port-0 log line reads the same.
#[cfg(feature = "system-tests")]
#[tokio::test]
async fn operator_args_and_port_zero_match_alertmanager() {
    let files = OperatorFiles::new(CONFIG);
    let port = free_port();
    let args = operator_args(&files, 1, 0, port, &[free_port()]);
    let am = Proc::start(&am_current_bin("alertmanager"), &args);
    // Go listens on [::] where Herald takes 0.0.0.0: only the port is compared.
    let a = am.listening(1).await;
    assert!(a[0].ends_with(&format!(":{port}")), "{a:?}");
    wait_ready(&format!("http://127.0.0.1:{port}")).await;
    drop(am);

    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(dir.path());
    args[2] = "--web.listen-address=[127.0.0.1]:0".into();
    for bin in [am_current_bin("alertmanager").as_path(), herald()] {
        let p = Proc::start(bin, &args);
        let a = p.listening(1).await;
        assert!(
            a[0].starts_with("127.0.0.1:") && !a[0].ends_with(":0"),
            "{a:?}"
        );
        wait_ready(&format!("http://{}", a[0])).await;
        assert!(p.log().contains(&format!(
            r#"msg="TLS is disabled." http2=false address={}"#,
            a[0]
        )));
    }
}

/// `--alerts.per-alertname-limit` refuses the same alerts in 0.33.1 and
/// Herald, and both count them.
#[cfg(feature = "system-tests")]
#[tokio::test]
async fn per_alertname_limit_matches_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = base_args(dir.path());
    args.push("--alerts.per-alertname-limit=2".into());
    let mut results = Vec::new();
    for bin in [am_current_bin("alertmanager").as_path(), herald()] {
        let p = Proc::start(bin, &args);
        let a = p.listening(1).await;
        let base = format!("http://{}", a[0]);
        wait_ready(&base).await;
        results.push(limit_scenario(&base).await);
    }
    assert_eq!(results[0], results[1], "alertmanager vs herald");
}

/// With `--dispatch.start-delay`, neither 0.33.1 nor Herald notifies
/// before the delay has passed since its start.
#[cfg(feature = "system-tests")]
#[tokio::test]
async fn dispatch_start_delay_matches_alertmanager() {
    for bin in [am_current_bin("alertmanager"), herald().to_path_buf()] {
        let hook = Webhook::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut args = base_args(dir.path());
        std::fs::write(
            dir.path().join("am.yml"),
            format!(
                "route:\n  receiver: r\n  group_wait: 0s\n  group_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
                hook.url("/d")
            ),
        )
        .unwrap();
        args.push("--dispatch.start-delay=3s".into());
        let started = Instant::now();
        let p = Proc::start(&bin, &args);
        let a = p.listening(1).await;
        let base = format!("http://{}", a[0]);
        wait_ready(&base).await;
        post_alerts(&base, &json!([{"labels": {"alertname": "A"}}])).await;
        let got = hook.nth(1, T).await;
        assert!(
            got.at >= started + Duration::from_secs(3),
            "{}: flushed {:?} after start",
            bin.display(),
            got.at - started
        );
    }
}
