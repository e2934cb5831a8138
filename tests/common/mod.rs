//! Shared harness for end-to-end tests: start the real `herald` binary (or
//! Alertmanager) on a free port, run a webhook receiver, and wait on
//! conditions with deadlines instead of sleeping.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::Value;

// The helpers that run programs beyond the Rust toolchain (openssl,
// python3, Alertmanager, Prometheus) exist only in the system tier, so a
// laptop-tier test cannot call one by mistake.
pub mod fake;

#[cfg(feature = "system-tests")]
mod certs;
#[cfg(feature = "system-tests")]
pub use certs::*;

/// `wait_for` for conditions that need a request (an async check).
pub async fn wait_until<T, Fut>(what: &str, timeout: Duration, mut f: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `f` until it returns `Some`, failing the test at the deadline.
pub async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub body: Value,
    pub raw: Vec<u8>,
    pub headers: HeaderMap,
    pub at: Instant,
}

/// A webhook endpoint that records every POST. `fail_next` makes the next
/// N requests answer 500.
#[derive(Clone, Default)]
pub struct Webhook {
    pub received: Arc<Mutex<Vec<Received>>>,
    pub fail_next: Arc<Mutex<(usize, u16)>>,
    /// Answers for the next requests (status, headers, body), in order;
    /// only requests answered 2xx are recorded in `received`.
    pub script: Arc<Mutex<std::collections::VecDeque<Scripted>>>,
    /// When every request arrived, answered or not.
    pub attempts: Arc<Mutex<Vec<Instant>>>,
    pub addr: Option<SocketAddr>,
}

#[derive(Clone, Debug)]
pub struct Scripted {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

impl Webhook {
    pub async fn start() -> Webhook {
        Self::start_on("127.0.0.1:0").await
    }

    /// A receiver on another address (reachable from network namespaces).
    pub async fn start_on(addr: &str) -> Webhook {
        let mut hook = Webhook::default();
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        hook.addr = Some(listener.local_addr().unwrap());
        let app = Router::new()
            .route("/{*path}", post(record))
            .route("/", post(record_root))
            .with_state(hook.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        hook
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}/{}",
            self.addr.unwrap(),
            path.trim_start_matches('/')
        )
    }

    pub fn script(&self, answers: Vec<Scripted>) {
        self.script.lock().unwrap().extend(answers);
    }

    pub fn attempts(&self) -> Vec<Instant> {
        self.attempts.lock().unwrap().clone()
    }

    pub fn fail(&self, n: usize, code: u16) {
        *self.fail_next.lock().unwrap() = (n, code);
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until at least `n` notifications have arrived and returns the n-th.
    pub async fn nth(&self, n: usize, timeout: Duration) -> Received {
        let me = self.clone();
        wait_for(&format!("webhook notification #{n}"), timeout, move || {
            me.received.lock().unwrap().get(n - 1).cloned()
        })
        .await
    }
}

type Answer = (StatusCode, HeaderMap, String);

async fn record_root(state: State<Webhook>, headers: HeaderMap, body: axum::body::Bytes) -> Answer {
    store(state.0, "/".into(), headers, body)
}

async fn record(
    state: State<Webhook>,
    axum::extract::Path(path): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Answer {
    store(state.0, format!("/{path}"), headers, body)
}

fn store(hook: Webhook, path: String, headers: HeaderMap, body: axum::body::Bytes) -> Answer {
    hook.attempts.lock().unwrap().push(Instant::now());
    // `ok` is what a Slack incoming webhook answers (Alertmanager 0.33+
    // checks it); webhook receivers ignore the body.
    let mut answer = (StatusCode::OK, HeaderMap::new(), "ok".to_string());
    {
        let mut f = hook.fail_next.lock().unwrap();
        if f.0 > 0 {
            f.0 -= 1;
            answer.0 = StatusCode::from_u16(f.1).unwrap();
            return answer;
        }
    }
    if let Some(s) = hook.script.lock().unwrap().pop_front() {
        answer.0 = StatusCode::from_u16(s.status).unwrap();
        for (k, v) in s.headers {
            answer.1.insert(k, v.parse().unwrap());
        }
        answer.2 = s.body;
        if !answer.0.is_success() {
            return answer;
        }
    }
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    hook.received.lock().unwrap().push(Received {
        path,
        body: v,
        raw: body.to_vec(),
        headers,
        at: Instant::now(),
    });
    answer
}

/// The real SMTP server of `tests/smtp_server.py` (aiosmtpd), killed on
/// drop. Each accepted message is a JSON record in `dir`.
#[cfg(feature = "system-tests")]
pub struct SmtpServer {
    child: Child,
    pub port: u16,
    pub dir: PathBuf,
}

#[cfg(feature = "system-tests")]
impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(feature = "system-tests")]
impl SmtpServer {
    /// `mode` is plain, starttls or implicit; `auth` is (user, password).
    pub fn start(
        dir: &Path,
        mode: &str,
        certs: Option<&Certs>,
        auth: Option<(&str, &str)>,
        fail_first: usize,
    ) -> SmtpServer {
        Self::start_with(dir, mode, certs, auth, fail_first, &[])
    }

    /// `start` with more flags for `smtp_server.py`.
    pub fn start_with(
        dir: &Path,
        mode: &str,
        certs: Option<&Certs>,
        auth: Option<(&str, &str)>,
        fail_first: usize,
        extra: &[&str],
    ) -> SmtpServer {
        let port = free_port();
        let out = dir.join(format!("smtp-{mode}-{port}"));
        let mut cmd = Command::new("python3");
        cmd.arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py"))
            .args([&port.to_string(), out.to_str().unwrap(), mode]);
        if let Some(c) = certs {
            cmd.args([c.cert.to_str().unwrap(), c.key.to_str().unwrap()]);
        }
        if let Some((u, p)) = auth {
            cmd.args(["--user", u, "--password", p]);
        }
        cmd.args(["--fail-first", &fail_first.to_string()]);
        cmd.args(extra);
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 with aiosmtpd: run scripts/test.sh");
        let mut ready = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready", "smtp_server.py did not start");
        SmtpServer {
            child,
            port,
            dir: out,
        }
    }

    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.retain(|p| p.extension().is_some_and(|e| e == "json"));
        files.sort_by_key(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .and_then(|s| s.parse::<u32>().ok())
        });
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Waits for the n-th message (1-based).
    pub async fn nth(&self, n: usize, timeout: Duration) -> Value {
        wait_for(&format!("e-mail #{n}"), timeout, || {
            self.messages().get(n - 1).cloned()
        })
        .await
    }
}

/// A running server process, killed on drop.
pub struct Server {
    pub child: Child,
    pub base: String,
    /// Holds the config and the storage directory (`<root>/data`).
    pub root: PathBuf,
    _dir: Option<tempfile::TempDir>,
    pub config_path: PathBuf,
    pub log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn herald_bin() -> &'static str {
    env!("CARGO_BIN_EXE_herald")
}

/// Starts Herald with `config` on an ephemeral port and waits until it
/// answers `/-/ready`.
pub async fn start_herald(config: &str, extra: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_herald_at(dir.path(), config, extra).await;
    s._dir = Some(dir);
    s
}

/// Starts Herald with its config and storage under `root`, which outlives
/// the process: restarting on the same root finds the same database.
pub async fn start_herald_at(root: &Path, config: &str, extra: &[&str]) -> Server {
    let config_path = root.join("herald.yml");
    std::fs::write(&config_path, config).unwrap();
    let mut cmd = Command::new(herald_bin());
    cmd.arg(format!("--config.file={}", config_path.display()))
        .arg(format!("--storage.path={}", root.join("data").display()))
        .arg("--web.listen-address=127.0.0.1:0");
    if !extra.iter().any(|a| a.starts_with("--web.external-url=")) {
        cmd.arg("--web.external-url=http://herald.test:9093");
    }
    cmd.args(extra).stderr(Stdio::piped()).stdout(Stdio::null());
    let mut child = cmd.spawn().expect("start herald");
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let log2 = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = line.split("address=").nth(1) {
                let _ = tx.send(addr.split_whitespace().next().unwrap_or("").to_string());
            }
            log2.lock().unwrap().push_str(&line);
            log2.lock().unwrap().push('\n');
        }
    });
    let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(20)))
        .await
        .unwrap()
        .unwrap_or_else(|_| {
            panic!(
                "herald did not start listening; log:\n{}",
                log.lock().unwrap()
            )
        });
    let server = Server {
        child,
        base: format!("http://{addr}"),
        root: root.to_path_buf(),
        _dir: None,
        config_path,
        log,
    };
    let prefix = extra
        .iter()
        .find_map(|a| a.strip_prefix("--web.route-prefix="))
        .unwrap_or("");
    wait_ready(&format!("{}{}", server.base, prefix.trim_end_matches('/'))).await;
    server
}

pub async fn wait_ready(base: &str) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(format!("{base}/-/ready")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{base} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `<bin> check-config <file>` (Herald's or an amtool): whether it accepts
/// the file, and everything it printed.
pub fn check_config_file(bin: &Path, file: &Path) -> (bool, String) {
    let out = Command::new(bin)
        .arg("check-config")
        .arg(file)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// [`check_config_file`] on a config text, written to a temporary file.
pub fn check_config_text(bin: &Path, yaml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("config.yml");
    std::fs::write(&f, yaml).unwrap();
    check_config_file(bin, &f)
}

/// A free TCP port on loopback (for programs that cannot report theirs).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where `scripts/reference.sh` unpacked the reference Alertmanager (the
/// current release, 0.33.1 from Debian's sid suite). `HERALD_AM_CURRENT`
/// points elsewhere, for a build whose target directory is not `target/`.
pub fn am_current() -> PathBuf {
    std::env::var_os("HERALD_AM_CURRENT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/am-current"))
}

/// A program of the reference release (`alertmanager`, `amtool`,
/// `prometheus`), through the wrapper that gives it its own default
/// templates. Missing is a failure, not a skip.
pub fn am_current_bin(name: &str) -> PathBuf {
    let bin = am_current().join("bin").join(name);
    assert!(
        bin.exists(),
        "{} is missing: run scripts/reference.sh (scripts/test.sh does)",
        bin.display()
    );
    bin
}

/// The reference release's source tree (Debian's
/// golang-github-prometheus-alertmanager-dev): OpenAPI spec, templates,
/// test data, acceptance suites.
pub fn am_current_src() -> PathBuf {
    let src = am_current().join("root/usr/share/gocode/src/github.com/prometheus/alertmanager");
    assert!(
        src.exists(),
        "{} is missing: run scripts/reference.sh (scripts/test.sh does)",
        src.display()
    );
    src
}

/// Debian 12's Alertmanager 0.25, only for tests about 0.25 itself
/// (importing an old data directory, the old amtool).
pub const AM_025_BIN: &str = "/usr/bin/prometheus-alertmanager";
pub const AMTOOL_025: &str = "/usr/bin/amtool";

/// Starts the reference Alertmanager (0.33.1). The tests that call this are
/// the differential ones: a missing binary is a failure, not a skip.
#[cfg(feature = "system-tests")]
pub async fn start_alertmanager(config: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_alertmanager_at(dir.path(), config).await;
    s._dir = Some(dir);
    s
}

/// Starts the reference Alertmanager with its config and data directory
/// (`<root>/data`) under `root`, the layout `start_herald_at` uses.
#[cfg(feature = "system-tests")]
pub async fn start_alertmanager_at(root: &Path, config: &str) -> Server {
    start_alertmanager_bin_at(&am_current_bin("alertmanager"), root, config).await
}

/// Starts Debian 12's Alertmanager 0.25 (tests about 0.25 itself).
#[cfg(feature = "system-tests")]
pub async fn start_alertmanager_025_at(root: &Path, config: &str) -> Server {
    assert!(
        Path::new(AM_025_BIN).exists(),
        "{AM_025_BIN} is missing: run scripts/test.sh, which installs Debian's prometheus-alertmanager"
    );
    start_alertmanager_bin_at(Path::new(AM_025_BIN), root, config).await
}

/// Alertmanager cannot listen on port 0 and report its port, so the port is
/// picked here; another test can take it before Alertmanager binds it. A
/// start that fails to bind is retried on a fresh port.
#[cfg(feature = "system-tests")]
async fn start_alertmanager_bin_at(bin: &Path, root: &Path, config: &str) -> Server {
    let config_path = root.join("alertmanager.yml");
    std::fs::write(&config_path, config).unwrap();
    for _ in 0..5 {
        let port = free_port();
        let log = Arc::new(Mutex::new(String::new()));
        let mut child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.path={}", root.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--web.external-url=http://herald.test:9093")
            .arg("--cluster.listen-address=")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start alertmanager");
        let stderr = child.stderr.take().unwrap();
        let log2 = log.clone();
        let mut reader = Some(std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = log2.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        }));
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client.get(format!("{base}/-/ready")).send().await {
                if r.status().is_success() {
                    return Server {
                        child,
                        base,
                        root: root.to_path_buf(),
                        _dir: None,
                        config_path,
                        log,
                    };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                // The pipe closed with the process: the reader has it all.
                if let Some(r) = reader.take() {
                    let _ = r.join();
                }
                let log = log.lock().unwrap().clone();
                if log.contains("address already in use") {
                    break;
                }
                panic!("alertmanager exited ({status}) before it was ready; log:\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "{base} never became ready; log:\n{}",
                log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    panic!("alertmanager found no free port in five tries");
}

pub async fn post_alerts(base: &str, alerts: &Value) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/alerts"))
        .json(alerts)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.text().await.unwrap())
}

pub async fn get_json(url: &str) -> Value {
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

pub async fn get_text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Reads a counter of Herald's /metrics (0 when absent).
pub async fn counter(base: &str, series: &str) -> f64 {
    get_text(&format!("{base}/metrics"))
        .await
        .lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .map(|v| v.trim().parse().unwrap_or(0.0))
        })
        .unwrap_or(0.0)
}

/// Waits until a counter of Herald's /metrics reaches `at_least`.
pub async fn wait_counter(base: &str, series: &str, at_least: f64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = counter(base, series).await;
        if v >= at_least {
            return v;
        }
        assert!(Instant::now() < deadline, "{series} stayed at {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts Debian's Prometheus on `dir/prometheus.yml` (data in
/// `dir/tsdb`). Alerts are re-sent every second: the first can go out
/// before Prometheus has discovered its Alertmanager, and the default
/// would retry only after a minute.
#[cfg(feature = "system-tests")]
pub fn spawn_prometheus(dir: &Path, port: u16) -> Child {
    Command::new("/usr/bin/prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--rules.alert.resend-delay=1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus: run scripts/test.sh")
}

/// Waits until the node at `base` holds the silence `id` (created there or
/// replicated to it) and returns it.
pub async fn wait_silence(base: &str, id: &str) -> Value {
    let url = format!("{base}/api/v2/silence/{id}");
    wait_until(
        &format!("silence {id} at {base}"),
        Duration::from_secs(30),
        || async {
            // 404 (no body) until the silence arrives.
            let r = reqwest::get(&url).await.ok()?;
            let s: Value = r.json().await.ok()?;
            s.get("id").is_some().then_some(s)
        },
    )
    .await
}

/// Creates a one-hour silence of `name="value"` through the API and
/// returns its id.
pub async fn create_silence(
    base: &str,
    name: &str,
    value: &str,
    created_by: &str,
    comment: &str,
) -> String {
    let now = jiff::Timestamp::now();
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/silences"))
        .json(&serde_json::json!({
            "matchers": [{"name": name, "value": value, "isRegex": false}],
            "startsAt": now.to_string(),
            "endsAt": now.checked_add(jiff::SignedDuration::from_hours(1)).unwrap().to_string(),
            "createdBy": created_by,
            "comment": comment,
        }))
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success(),
        "silence not created: {}",
        r.status()
    );
    r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string()
}
