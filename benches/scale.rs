//! Herald against the real Alertmanager (0.33.1) at sizes `compare` does
//! not reach, both servers in one run.
//!
//! `cargo bench --bench scale`. `HERALD_SCALE_ONLY=million` or `groups`
//! picks a section (default both).
//!
//! `million` (`HERALD_SCALE_ALERTS`, default 1,000,000): that many distinct
//! alerts posted in batches of 100, 8 in flight; the ingest rate; the RSS
//! holding them; `GET /api/v2/alerts` (time, and how far the peak RSS rose
//! during it: the peak is reset through `/proc/<pid>/clear_refs` first);
//! then Herald stopped and started again on its database: the time from
//! the process start to `/-/ready` answering 200, and the alerts it holds.
//! Alertmanager keeps no alerts across a restart, so it has no such
//! figure.
//!
//! `groups` (`HERALD_SCALE_GROUPS`, default 50,000): one alert per
//! `instance` with `group_by: [instance]` and `group_interval: 1m`, so as
//! many aggregation groups; once every group has notified, the CPU time
//! (utime + stime from `/proc/<pid>/stat`) an idle server uses over
//! `HERALD_SCALE_IDLE_SECS` (default 60), and the RSS each group costs
//! (RSS growth over the ingest, divided by the groups; its alert included).
//!
//! `HERALD_BENCH_BIN` runs another Herald binary in this build's place.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod support;
use support::{status_kib, Proc};

const BATCH: usize = 100;
const IN_FLIGHT: usize = 8;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// Starts a server on `data` (kept by the caller, so a restart finds it);
/// returns once `/-/ready` answers 200, with the time that took.
async fn start(name: &'static str, config: &str, data: &Path) -> (Proc, Duration) {
    support::start_server(name, config, Some(data), Duration::from_secs(300)).await
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

/// utime + stime of a process, in seconds.
fn cpu_secs(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command (which may hold spaces) start after ')'.
    let rest = s.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|i| f.get(*i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

/// One batch of distinct alerts, shaped like compare's (ten labels, two
/// annotations), written straight to bytes: the bench builds a million.
fn batch(offset: usize, n: usize, run: &str) -> Vec<u8> {
    const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];
    const ENVS: [&str; 2] = ["prod", "staging"];
    let mut out = String::with_capacity(n * 700);
    out.push('[');
    for i in offset..offset + n {
        if i > offset {
            out.push(',');
        }
        out.push_str(&format!(
            concat!(
                r#"{{"labels":{{"alertname":"Alert{}","instance":"host-{}.example.com:9100","job":"node","#,
                r#""severity":"{}","team":"team-{}","env":"{}","region":"eu-west-{}","service":"svc-{}","#,
                r#""cluster":"k8s-{}","run":"{}"}},"annotations":{{"summary":"Something is wrong on host-{}","#,
                r#""description":"A longer description of the problem that Prometheus sends with each alert."}},"#,
                r#""startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","#,
                r#""generatorURL":"http://prometheus:9090/graph?g0.expr=up%3D%3D0"}}"#
            ),
            i % 100,
            i,
            SEVERITIES[i % 3],
            i % 20,
            ENVS[i % 2],
            i % 3,
            i % 50,
            i % 5,
            run,
            i
        ));
    }
    out.push(']');
    out.into_bytes()
}

/// Posts `total` alerts, `IN_FLIGHT` batches at a time; alerts per second.
async fn ingest(p: &Proc, total: usize, run: &'static str) -> f64 {
    let client = reqwest::Client::new();
    let url = Arc::new(format!("{}/api/v2/alerts", p.base));
    let started = Instant::now();
    support::in_flight(total.div_ceil(BATCH), IN_FLIGHT, move |b| {
        let (client, url) = (client.clone(), url.clone());
        let body = batch(b * BATCH, BATCH.min(total - b * BATCH), run);
        async move {
            let r = client
                .post(url.as_str())
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "POST failed: {}", r.status());
        }
    })
    .await;
    total as f64 / started.elapsed().as_secs_f64()
}

/// `GET path`: milliseconds, the body's size, and how far the server's
/// peak RSS rose above its RSS before the request.
async fn get_with_peak(p: &Proc, path: &str) -> (f64, usize, f64) {
    let pid = p.child.id();
    // "5" resets the peak RSS (VmHWM) to the current RSS.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let before = status_kib(pid, "VmRSS:");
    let t = Instant::now();
    let body = p.get_bytes(&reqwest::Client::new(), path).await;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let peak = status_kib(pid, "VmHWM:");
    (ms, body.len(), mib(peak.saturating_sub(before)))
}

async fn alert_count(p: &Proc) -> usize {
    let body = p.get_bytes(&reqwest::Client::new(), "/api/v2/alerts").await;
    serde_json::from_slice::<Vec<serde::de::IgnoredAny>>(&body)
        .unwrap()
        .len()
}

fn stop(p: &mut Proc) {
    // SIGTERM: a clean stop, as a service manager does it.
    let _ = Command::new("kill").arg(p.child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(120);
    while p.child.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "{} did not stop", p.name);
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn line(what: &str, herald: f64, am: Option<f64>) {
    match am {
        Some(am) => println!(
            "{what:<52} {herald:>12.1} {am:>12.1}   ratio Herald/AM {:>6.3}",
            herald / am
        ),
        None => println!("{what:<52} {herald:>12.1} {:>12}", "-"),
    }
}

async fn hook() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(|| async { "ok" });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

async fn million() {
    let n = env_usize("HERALD_SCALE_ALERTS", 1_000_000);
    let port = hook().await;
    let config = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1h\n  repeat_interval: 24h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{port}/'}}]\n"
    );
    let hdata = tempfile::tempdir().unwrap();
    let adata = tempfile::tempdir().unwrap();
    let (mut herald, _) = start("herald", &config, hdata.path()).await;
    let (am, _) = start("alertmanager", &config, adata.path()).await;
    let hr = ingest(&herald, n, "m").await;
    let hrss = status_kib(herald.child.id(), "VmRSS:");
    let ar = ingest(&am, n, "m").await;
    let arss = status_kib(am.child.id(), "VmRSS:");
    line(&format!("ingest alerts/s @{n}"), hr, Some(ar));
    line(
        &format!("RSS MiB holding {n} alerts"),
        mib(hrss),
        Some(mib(arss)),
    );
    let (hms, hsize, hpeak) = get_with_peak(&herald, "/api/v2/alerts").await;
    let (ams, asize, apeak) = get_with_peak(&am, "/api/v2/alerts").await;
    line(
        &format!(
            "GET /api/v2/alerts ms @{n} ({} vs {} MiB)",
            hsize >> 20,
            asize >> 20
        ),
        hms,
        Some(ams),
    );
    line("  peak RSS growth MiB during it", hpeak, Some(apeak));
    let (hms, _, hpeak) = get_with_peak(&herald, "/api/v2/alerts/groups").await;
    let (ams, _, apeak) = get_with_peak(&am, "/api/v2/alerts/groups").await;
    line(
        &format!("GET /api/v2/alerts/groups ms @{n}"),
        hms,
        Some(ams),
    );
    line("  peak RSS growth MiB during it", hpeak, Some(apeak));
    drop(am);
    stop(&mut herald);
    drop(herald);
    let (herald, ready) = start("herald", &config, hdata.path()).await;
    line(
        &format!("restart to /-/ready ms @{n} (AM keeps none)"),
        ready.as_secs_f64() * 1e3,
        None,
    );
    line(
        "  RSS MiB after the restart",
        mib(status_kib(herald.child.id(), "VmRSS:")),
        None,
    );
    let held = alert_count(&herald).await;
    assert_eq!(held, n, "alerts back after the restart");
}

async fn groups() {
    let n = env_usize("HERALD_SCALE_GROUPS", 50_000);
    let idle = env_usize("HERALD_SCALE_IDLE_SECS", 60);
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let config = format!(
        "route:\n  receiver: hook\n  group_by: [instance]\n  group_wait: 1s\n  group_interval: 1m\n  repeat_interval: 24h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{port}/'}}]\n"
    );
    let mut figures = Vec::new();
    for name in ["herald", "alertmanager"] {
        let data = tempfile::tempdir().unwrap();
        let (p, _) = start(name, &config, data.path()).await;
        let pid = p.child.id();
        let before = status_kib(pid, "VmRSS:");
        let seen = hits.load(Ordering::SeqCst);
        ingest(&p, n, "g").await;
        // Every group notifies once (`group_wait`), then only ticks.
        let deadline = Instant::now() + Duration::from_secs(600);
        while hits.load(Ordering::SeqCst) - seen < n {
            assert!(
                Instant::now() < deadline,
                "{name}: {} of {n} groups notified",
                hits.load(Ordering::SeqCst) - seen
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rss = status_kib(pid, "VmRSS:");
        let cpu0 = cpu_secs(pid);
        tokio::time::sleep(Duration::from_secs(idle as u64)).await;
        let cpu = cpu_secs(pid) - cpu0;
        figures.push((
            cpu / idle as f64 * 100.0,
            (rss.saturating_sub(before) * 1024) as f64 / n as f64,
            mib(rss),
        ));
    }
    let (h, a) = (figures[0], figures[1]);
    line(
        &format!("idle CPU % of a core, {n} groups, {idle} s"),
        h.0,
        Some(a.0),
    );
    line(&format!("RSS bytes per group @{n} groups"), h.1, Some(a.1));
    line(&format!("RSS MiB holding {n} groups"), h.2, Some(a.2));
}

fn main() {
    support::block_on(async {
        let only = std::env::var("HERALD_SCALE_ONLY").unwrap_or_default();
        let wanted = |s: &str| only.is_empty() || only.split(',').any(|o| o.trim() == s);
        println!("{:<52} {:>12} {:>12}", "measure", "herald", "alertmanager");
        if wanted("million") {
            million().await;
        }
        if wanted("groups") {
            groups().await;
        }
    });
}
