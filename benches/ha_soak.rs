//! High availability under load, Herald against Alertmanager in one run:
//! three clusters of three nodes — Herald only, mixed (two Alertmanager
//! nodes and one Herald node in one memberlist cluster) and Alertmanager
//! only (the reference, 0.33.1) — each fed the same alerts on every node
//! (as every Prometheus sends to every replica), notifying a receiver that
//! fails every other request.
//! Counts the notifications each receiver accepted and how many of them
//! were duplicates (the same group with the same alerts and states
//! accepted again).
//!
//! `cargo bench --bench ha_soak`; `HERALD_SOAK_SECS` sets how long alerts
//! keep changing (default 30), `HERALD_SOAK_GROUPS` how many groups
//! (default 40, each of 3 or 4 alerts); `HERALD_SOAK_TLS=1` makes the clusters
//! gossip over mutual TLS (`--cluster.tls-config`, certificates made with
//! openssl). To find out why an alert was left firing:
//! `HERALD_SOAK_HISTORY=1` prints what the receiver accepted for each such
//! alert, when and from which node (its external URL), and
//! `HERALD_SOAK_LOGDIR=<dir>` keeps each Herald node's log there.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{json, Value};

#[path = "../tests/common/certs.rs"]
#[allow(dead_code)]
mod certs;
mod support;
use support::{free_port, reference_alertmanager, Proc};

/// A receiver that fails every other request and remembers what it
/// accepted.
#[derive(Clone, Default)]
struct Flapping {
    requests: Arc<Mutex<u64>>,
    accepted: Arc<Mutex<HashMap<String, u64>>>,
    /// Every (group, alert, state) some accepted notification carried:
    /// what the receiver learnt, duplicates or not.
    states: Arc<Mutex<std::collections::HashSet<String>>>,
    /// Alerts accepted as firing after the receiver was told they had
    /// resolved: a stale notification that leaves the receiver wrong
    /// (Alertmanager's #4008).
    regressions: Arc<Mutex<u64>>,
    /// The last state the receiver accepted for each (group, instance).
    last: Arc<Mutex<HashMap<String, String>>>,
    /// Every accepted state per (group, instance), with its time and
    /// sender, printed for stuck alerts with `HERALD_SOAK_HISTORY=1`.
    history: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl Flapping {
    async fn start() -> (Flapping, u16) {
        let f = Flapping::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = f.clone();
        let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
            let f = state.clone();
            async move {
                let n = {
                    let mut r = f.requests.lock().unwrap();
                    *r += 1;
                    *r
                };
                if n % 2 == 0 {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut alerts: Vec<String> = v["alerts"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| format!("{}={}", x["fingerprint"], x["status"]))
                            .collect()
                    })
                    .unwrap_or_default();
                alerts.sort();
                let key = format!("{}|{}", v["groupKey"], alerts.join(","));
                {
                    let mut states = f.states.lock().unwrap();
                    for x in v["alerts"].as_array().into_iter().flatten() {
                        let hk = format!(
                            "{}|{}",
                            v["groupKey"],
                            x["labels"]["instance"].as_str().unwrap_or("")
                        );
                        f.history
                            .lock()
                            .unwrap()
                            .entry(hk.clone())
                            .or_default()
                            .push(format!(
                                "{} {} from {}",
                                jiff::Timestamp::now(),
                                x["status"].as_str().unwrap_or(""),
                                v["externalURL"].as_str().unwrap_or("")
                            ));
                        f.last
                            .lock()
                            .unwrap()
                            .insert(hk, x["status"].as_str().unwrap_or("").to_string());
                        let alert = format!("{}|{}", v["groupKey"], x["fingerprint"]);
                        if x["status"] == "firing"
                            && states.contains(&format!("{alert}=\"resolved\""))
                        {
                            *f.regressions.lock().unwrap() += 1;
                        }
                    }
                    states.extend(alerts.iter().map(|a| format!("{}|{a}", v["groupKey"])));
                }
                *f.accepted.lock().unwrap().entry(key).or_default() += 1;
                StatusCode::OK
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (f, port)
    }

    /// Alerts `r<n>` (n before the last round, so resolved before the
    /// soak ended) whose last accepted state is still firing: the
    /// receiver was never told they resolved.
    fn stuck_firing(&self, last_round: u64) -> usize {
        let last = self.last.lock().unwrap();
        let stuck: Vec<&String> = last
            .iter()
            .filter(|(k, state)| {
                *state == "firing"
                    && k.rsplit('|')
                        .next()
                        .and_then(|i| i.strip_prefix('r'))
                        .and_then(|n| n.parse::<u64>().ok())
                        .is_some_and(|n| n + 1 < last_round)
            })
            .map(|(k, _)| k)
            .collect();
        if std::env::var_os("HERALD_SOAK_HISTORY").is_some() {
            let h = self.history.lock().unwrap();
            for k in &stuck {
                eprintln!("STUCK {k}");
                for l in h.get(*k).into_iter().flatten() {
                    eprintln!("    {l}");
                }
            }
        }
        stuck.len()
    }

    /// (accepted notifications, duplicates among them)
    fn counts(&self) -> (u64, u64) {
        let a = self.accepted.lock().unwrap();
        let total: u64 = a.values().sum();
        let dups: u64 = a.values().map(|n| n.saturating_sub(1)).sum();
        (total, dups)
    }
}

fn config(hook_port: u16) -> String {
    format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/'}}]\n"
    )
}

/// Starts a cluster of three nodes, node `i` a Herald node when
/// `herald[i]`, an Alertmanager otherwise.
fn start_cluster(
    cluster: &str,
    herald: [bool; 3],
    hook_port: u16,
    tls: Option<&Path>,
) -> Vec<Proc> {
    let cluster_ports = [free_port(), free_port(), free_port()];
    (0..3)
        .map(|i| {
            let herald = herald[i];
            let dir = tempfile::tempdir().unwrap();
            std::fs::write(dir.path().join("c.yml"), config(hook_port)).unwrap();
            let port = free_port();
            let mut cmd = if herald {
                Command::new(support::herald_bin())
            } else {
                Command::new(reference_alertmanager())
            };
            cmd.arg(format!(
                "--config.file={}",
                dir.path().join("c.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // Which node sent a notification, in `HERALD_SOAK_HISTORY`.
            .arg(format!(
                "--web.external-url=http://{cluster}-{}{i}.test",
                if herald { "herald" } else { "am" }
            ))
            .arg(format!(
                "--cluster.listen-address=127.0.0.1:{}",
                cluster_ports[i]
            ))
            .args([
                "--cluster.peer-timeout=1s",
                "--cluster.gossip-interval=50ms",
                "--cluster.pushpull-interval=2s",
                "--cluster.settle-timeout=5s",
                "--log.level=error",
            ]);
            if herald {
                cmd.arg(format!("--cluster.peer-name=node{i}"));
            } else {
                // Alertmanager names its peers itself
                // and wants to be told what to advertise on loopback.
                cmd.arg(format!(
                    "--cluster.advertise-address=127.0.0.1:{}",
                    cluster_ports[i]
                ));
            }
            if let Some(t) = tls {
                cmd.arg(format!("--cluster.tls-config={}", t.display()));
            }
            for (j, p) in cluster_ports.iter().enumerate() {
                if j != i {
                    cmd.arg(format!("--cluster.peer=127.0.0.1:{p}"));
                }
            }
            let log: Stdio = match std::env::var_os("HERALD_SOAK_LOGDIR") {
                Some(d) if herald => {
                    eprintln!("{cluster} node{i} web port {port}");
                    std::fs::File::create(Path::new(&d).join(format!("{cluster}-node{i}.log")))
                        .unwrap()
                        .into()
                }
                _ => Stdio::null(),
            };
            let child = cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap();
            Proc {
                name: if herald { "herald" } else { "alertmanager" },
                child,
                base: format!("http://127.0.0.1:{port}"),
                _dir: dir,
            }
        })
        .collect()
}

async fn wait_ready(nodes: &[Proc]) {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    for n in nodes {
        loop {
            let ok = match client.get(format!("{}/api/v2/status", n.base)).send().await {
                Ok(r) => r.json::<Value>().await.is_ok_and(|v| {
                    v["cluster"]["status"] == "ready"
                        && v["cluster"]["peers"]
                            .as_array()
                            .is_some_and(|p| p.len() == 3)
                }),
                Err(_) => false,
            };
            if ok {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} ({}) never settled",
                n.base,
                n.name
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

async fn post(nodes: &[Proc], alerts: &Value) {
    let client = reqwest::Client::new();
    for n in nodes {
        let _ = client
            .post(format!("{}/api/v2/alerts", n.base))
            .json(alerts)
            .send()
            .await;
    }
}

fn main() {
    support::block_on(run());
}

async fn run() {
    let secs: u64 = std::env::var("HERALD_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let (herald_hook, hp) = Flapping::start().await;
    let (mixed_hook, mp) = Flapping::start().await;
    let (am_hook, ap) = Flapping::start().await;
    let tls_dir = tempfile::tempdir().unwrap();
    let tls = std::env::var("HERALD_SOAK_TLS")
        .is_ok_and(|v| v == "1")
        .then(|| certs::make_cluster_tls(tls_dir.path()));
    let herald = start_cluster("herald", [true; 3], hp, tls.as_deref());
    let mixed = start_cluster("mixed", [false, false, true], mp, tls.as_deref());
    let am = start_cluster("alertmanager", [false; 3], ap, tls.as_deref());
    wait_ready(&herald).await;
    wait_ready(&mixed).await;
    wait_ready(&am).await;
    let groups: u64 = std::env::var("HERALD_SOAK_GROUPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(40);
    // Groups of alerts; every second a few of them change (a new alert,
    // or one resolving), sent to every node of both clusters.
    let started = Instant::now();
    let mut round = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        let now = jiff::Timestamp::now().to_string();
        let mut batch = Vec::new();
        for g in 0..groups {
            for i in 0..3u64 {
                batch.push(
                    json!({"labels": {"alertname": format!("G{g}"), "instance": format!("i{i}")}}),
                );
            }
            if (g + round).is_multiple_of(7) {
                batch.push(json!({"labels": {"alertname": format!("G{g}"), "instance": format!("r{round}")}}));
            }
            if round > 0 && (g + round - 1).is_multiple_of(7) {
                batch.push(json!({"labels": {"alertname": format!("G{g}"), "instance": format!("r{}", round - 1)}, "endsAt": now}));
            }
        }
        let batch = Value::Array(batch);
        tokio::join!(
            post(&herald, &batch),
            post(&mixed, &batch),
            post(&am, &batch)
        );
        round += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    // Let the last changes and their retries play out.
    // Longer than a flush may take (its deadline, 10 s, plus the peers'
    // waits and a group interval), so that repairs under way finish.
    tokio::time::sleep(Duration::from_secs(25)).await;
    let hooks = [&herald_hook, &mixed_hook, &am_hook];
    println!(
        "HA soak: 3 nodes each{}, {groups} groups, {secs}s of changing alerts, receiver failing every other request",
        if tls.is_some() {
            ", gossip over mutual TLS"
        } else {
            ""
        }
    );
    let row = |what: &str, f: &dyn Fn(&Flapping) -> u64| {
        let v: Vec<u64> = hooks.iter().map(|h| f(h)).collect();
        println!("{what:<40} {:>10} {:>10} {:>14}", v[0], v[1], v[2]);
    };
    println!(
        "{:<40} {:>10} {:>10} {:>14}",
        "", "herald", "mixed", "alertmanager"
    );
    row("notifications accepted", &|h| h.counts().0);
    row("duplicates among them", &|h| h.counts().1);
    row("distinct alert states notified", &|h| {
        h.states.lock().unwrap().len() as u64
    });
    row("resolved alerts last seen firing", &|h| {
        h.stuck_firing(round) as u64
    });
    row("alerts firing again after 'resolved'", &|h| {
        *h.regressions.lock().unwrap()
    });
    row("receiver requests (incl. failed)", &|h| {
        *h.requests.lock().unwrap()
    });
}
