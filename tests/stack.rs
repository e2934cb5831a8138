//! The deploy stack end to end, with the real programs and the files in
//! `deploy/`: Node Exporter, Prometheus (its config and alert rules) and
//! Herald (its config, and the TLS + basic-auth web config that
//! `deploy/init-secrets.sh` writes), plus a local SMTP server and Slack
//! endpoint. Stopping Node Exporter must page by e-mail and Slack; starting
//! it again must send the resolved notifications. Every PromQL expression
//! of the rules and the Grafana dashboards must run on that Prometheus.
//!
//! What the test changes in the deploy files: addresses (compose service
//! names and ports become loopback ports), `/run/secrets/*` paths (to where
//! init-secrets.sh wrote them, following the compose file's `secrets:`),
//! and times (scrape and evaluation every second, `InstanceDown` after 2s
//! instead of 1m, Herald's group timers in seconds) so it runs in seconds.
//! The SMTP test server has no certificate a public CA signed, so
//! `smtp_require_tls` is turned off.

// Needs Node Exporter, Prometheus, python3 with aiosmtpd, bash and openssl: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn node_exporter(port: u16) -> Proc {
    Proc(
        Command::new("/usr/bin/prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-node-exporter: run scripts/test.sh"),
    )
}

/// `/run/secrets/<name>` → the file init-secrets.sh wrote, by the compose
/// file's `secrets:` section.
fn secret_paths(secrets_dir: &Path) -> BTreeMap<String, PathBuf> {
    let compose: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy().join("docker-compose.yml")).unwrap(),
    )
    .unwrap();
    compose["secrets"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, s)| {
            let file = s["file"].as_str().unwrap().trim_start_matches("./secrets/");
            (format!("/run/secrets/{name}"), secrets_dir.join(file))
        })
        .collect()
}

fn rewrite(text: &str, pairs: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (from, to) in pairs {
        assert!(
            out.contains(from.as_str()),
            "{from:?} is not in the deploy file any more"
        );
        out = out.replace(from.as_str(), to);
    }
    out
}

async fn try_query(base: &str, expr: &str) -> Result<Value, reqwest::Error> {
    let q: String = url::form_urlencoded::byte_serialize(expr.as_bytes()).collect();
    reqwest::Client::new()
        .get(format!("{base}/api/v1/query?query={q}"))
        .send()
        .await?
        .json()
        .await
}

async fn prometheus_query(base: &str, expr: &str) -> Value {
    try_query(base, expr).await.unwrap()
}

/// Every `expr` of the alert rules, and every target of the dashboards with
/// Grafana's variables filled in.
fn promql_expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let rules: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap(),
    )
    .unwrap();
    for g in rules["groups"].as_array().unwrap() {
        for r in g["rules"].as_array().unwrap() {
            out.push((
                format!("rule {}", r["alert"].as_str().unwrap()),
                r["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for entry in std::fs::read_dir(deploy().join("grafana/dashboards")).unwrap() {
        let path = entry.unwrap().path();
        let d: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for p in d["panels"].as_array().unwrap() {
            for t in p["targets"].as_array().unwrap() {
                let expr = t["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "1m")
                    .replace("$instance", ".+");
                out.push((
                    format!(
                        "{} panel {:?}",
                        path.file_name().unwrap().to_string_lossy(),
                        p["title"]
                    ),
                    expr,
                ));
            }
        }
    }
    out
}

/// Runs `deploy/init-secrets.sh` into `<d>/secrets`.
fn init_secrets(d: &Path) -> PathBuf {
    let secrets = d.join("secrets");
    let st = Command::new("bash")
        .arg(deploy().join("init-secrets.sh"))
        .env("SECRETS_DIR", &secrets)
        .env("HERALD_BIN", herald_bin())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    secrets
}

#[tokio::test(flavor = "multi_thread")]
async fn instance_down_pages_by_pagerduty_email_and_slack_then_resolves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secrets = init_secrets(d);

    let slack = Webhook::start().await;
    std::fs::write(
        secrets.join("slack_webhook_url"),
        slack.url("/services/T/B/X"),
    )
    .unwrap();
    let pagerduty = fake::FakeService::start(fake::Reply::json(
        202,
        serde_json::json!({"status": "success", "message": "Event processed"}),
    ))
    .await;
    let smtp_password = std::fs::read_to_string(secrets.join("smtp_password")).unwrap();
    let smtp = SmtpServer::start(
        d,
        "plain",
        None,
        Some(("alerts@example.com", smtp_password.trim())),
        0,
    );

    let (herald_port, node_port, prom_port, grafana_port) =
        (free_port(), free_port(), free_port(), free_port());
    let paths = secret_paths(&secrets);
    let secret_rewrites: Vec<(String, String)> = paths
        .iter()
        .map(|(k, v)| (k.clone(), v.display().to_string()))
        .collect();
    let used = |text: &str| -> Vec<(String, String)> {
        secret_rewrites
            .iter()
            .filter(|(k, _)| text.contains(k.as_str()))
            .cloned()
            .collect()
    };

    // Herald with the deploy config and the generated web config.
    let herald_yml = std::fs::read_to_string(deploy().join("herald/herald.yml")).unwrap();
    let mut pairs = vec![
        (
            "smtp.example.com:587".to_string(),
            format!("127.0.0.1:{}", smtp.port),
        ),
        (
            "smtp_require_tls: true".into(),
            "smtp_require_tls: false".into(),
        ),
        ("group_wait: 30s".into(), "group_wait: 1s".into()),
        ("group_interval: 5m".into(), "group_interval: 2s".into()),
        ("group_wait: 10s".into(), "group_wait: 1s".into()),
        (
            "https://events.pagerduty.com/v2/enqueue".into(),
            pagerduty.url("/v2/enqueue"),
        ),
    ];
    pairs.extend(used(&herald_yml));
    std::fs::write(d.join("herald.yml"), rewrite(&herald_yml, &pairs)).unwrap();
    let web_yml = std::fs::read_to_string(secrets.join("web.yml")).unwrap();
    std::fs::write(d.join("web.yml"), rewrite(&web_yml, &used(&web_yml))).unwrap();
    let _herald = Proc(
        Command::new(herald_bin())
            .arg(format!("--config.file={}", d.join("herald.yml").display()))
            .arg(format!(
                "--storage.path={}",
                d.join("herald-data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{herald_port}"))
            .arg(format!("--web.config.file={}", d.join("web.yml").display()))
            .arg("--web.external-url=https://herald.example.com:9093")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Prometheus with the deploy config and rules.
    let prom_yml = std::fs::read_to_string(deploy().join("prometheus/prometheus.yml")).unwrap();
    let mut pairs = vec![
        (
            "herald:9093".to_string(),
            format!("127.0.0.1:{herald_port}"),
        ),
        (
            "node-exporter:9100".into(),
            format!("127.0.0.1:{node_port}"),
        ),
        ("localhost:9090".into(), format!("127.0.0.1:{prom_port}")),
        ("grafana:3000".into(), format!("127.0.0.1:{grafana_port}")),
        ("scrape_interval: 15s".into(), "scrape_interval: 1s".into()),
        (
            "evaluation_interval: 15s".into(),
            "evaluation_interval: 1s".into(),
        ),
    ];
    pairs.extend(used(&prom_yml));
    std::fs::write(d.join("prometheus.yml"), rewrite(&prom_yml, &pairs)).unwrap();
    let rules = std::fs::read_to_string(deploy().join("prometheus/alerts.yml")).unwrap();
    let rules = rewrite(
        &rules,
        &[(
            "expr: up == 0\n        for: 1m".into(),
            "expr: up == 0\n        for: 2s".into(),
        )],
    );
    std::fs::write(d.join("alerts.yml"), rules).unwrap();
    let mut node = Some(node_exporter(node_port));
    let _prometheus = Proc(spawn_prometheus(d, prom_port));
    let prom = format!("http://127.0.0.1:{prom_port}");
    let node_instance = format!("127.0.0.1:{node_port}");

    // Prometheus scrapes Node Exporter and Herald (TLS + basic auth).
    let deadline = Instant::now() + T;
    loop {
        // Prometheus may not listen yet.
        let v = try_query(&prom, "up{job=~\"node|herald\"} == 1")
            .await
            .unwrap_or(Value::Null);
        if v["data"]["result"].as_array().is_some_and(|r| r.len() == 2) {
            break;
        }
        assert!(Instant::now() < deadline, "targets never came up: {v}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Every PromQL expression of the stack parses and runs.
    for (what, expr) in promql_expressions() {
        let v = prometheus_query(&prom, &expr).await;
        assert_eq!(v["status"], "success", "{what}: {expr}: {v}");
    }

    // Node Exporter stops: InstanceDown pages by e-mail and Slack.
    drop(node.take());
    let is_node_down = |text: &str| text.contains("InstanceDown") && text.contains(&node_instance);
    let mail = wait_for_async_mail(&smtp, |m| {
        let s = m["headers"]["Subject"].as_str().unwrap_or("");
        s.starts_with("[FIRING") && is_node_down(s)
    })
    .await;
    assert_eq!(mail["rcpt_tos"], serde_json::json!(["oncall@example.com"]));
    assert_eq!(mail["auth"], "alerts@example.com");
    let body = mail["parts"][0]["body"].as_str().unwrap();
    assert!(body.contains("node target"), "{body}");
    let firing = wait_for("Slack page", T, || {
        slack.all().into_iter().find(|r| {
            let title = r.body["attachments"][0]["title"].as_str().unwrap_or("");
            title.starts_with("[FIRING") && is_node_down(title)
        })
    })
    .await;
    assert_eq!(firing.body["channel"], "#alerts-critical");
    assert_eq!(firing.body["attachments"][0]["color"], "danger");
    let routing_key = std::fs::read_to_string(secrets.join("pagerduty_routing_key")).unwrap();
    let page = |action: &'static str| {
        let pagerduty = pagerduty.clone();
        let is_node_down = &is_node_down;
        move || {
            pagerduty.requests().into_iter().find(|r| {
                r.body["event_action"] == action
                    && is_node_down(r.body["payload"]["summary"].as_str().unwrap_or(""))
            })
        }
    };
    let trigger = wait_for("PagerDuty trigger", T, page("trigger")).await;
    assert_eq!(trigger.path, "/v2/enqueue");
    assert_eq!(trigger.body["routing_key"], routing_key.trim());
    assert_eq!(trigger.body["payload"]["severity"], "critical");

    // It comes back: the resolved notifications follow.
    let _node = node_exporter(node_port);
    wait_for_async_mail(&smtp, |m| {
        let s = m["headers"]["Subject"].as_str().unwrap_or("");
        s.starts_with("[RESOLVED]") && is_node_down(s)
    })
    .await;
    let resolved = wait_for("Slack resolved", T, || {
        slack.all().into_iter().find(|r| {
            let title = r.body["attachments"][0]["title"].as_str().unwrap_or("");
            title.starts_with("[RESOLVED]") && is_node_down(title)
        })
    })
    .await;
    assert_eq!(resolved.body["attachments"][0]["color"], "good");
    let resolve = wait_for("PagerDuty resolve", T, page("resolve")).await;
    assert_eq!(resolve.body["dedup_key"], trigger.body["dedup_key"]);
}

async fn wait_for_async_mail(smtp: &SmtpServer, pred: impl Fn(&Value) -> bool) -> Value {
    wait_for("e-mail", T, || {
        smtp.messages().into_iter().find(|m| pred(m))
    })
    .await
}

/// The compose file's HA profile: the two replicas' `--cluster.*` flags
/// (addresses made loopback ports), with the `--cluster.tls-config` and
/// certificates init-secrets.sh wrote, form a cluster over mutual TLS and
/// share a silence.
fn is_request_limit(flag: &str) -> bool {
    [
        "--web.max-request-body-bytes=",
        "--alerts.max-alerts-per-request=",
        "--alerts.max-labels-per-alert=",
        "--alerts.max-label-value-bytes=",
    ]
    .iter()
    .any(|p| flag.starts_with(p))
}

#[tokio::test(flavor = "multi_thread")]
async fn ha_replicas_gossip_over_the_generated_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let secrets = init_secrets(d);
    let rewrites: Vec<(String, String)> = secret_paths(&secrets)
        .into_iter()
        .map(|(k, v)| (k, v.display().to_string()))
        .collect();
    let compose: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(deploy().join("docker-compose.yml")).unwrap(),
    )
    .unwrap();
    let ports = [free_port(), free_port()];
    let mut nodes = Vec::new();
    for (i, service) in ["herald", "herald-2"].into_iter().enumerate() {
        let root = d.join(service);
        std::fs::create_dir_all(&root).unwrap();
        let mut args = vec![
            format!("--cluster.listen-address=127.0.0.1:{}", ports[i]),
            format!("--cluster.peer=127.0.0.1:{}", ports[1 - i]),
            "--cluster.gossip-interval=50ms".to_string(),
            "--cluster.settle-timeout=5s".to_string(),
        ];
        let command = compose["services"][service]["command"].as_array().unwrap();
        let mut tls_config = None;
        for a in command.iter().map(|a| a.as_str().unwrap()) {
            if let Some(path) = a.strip_prefix("--cluster.tls-config=") {
                // The file and the paths in it, as the container sees them.
                let file = &rewrites.iter().find(|(k, _)| k == path).unwrap().1;
                let text = std::fs::read_to_string(file).unwrap();
                let used: Vec<(String, String)> = rewrites
                    .iter()
                    .filter(|(k, _)| text.contains(k.as_str()))
                    .cloned()
                    .collect();
                let local = root.join("cluster-tls.yml");
                std::fs::write(&local, rewrite(&text, &used)).unwrap();
                tls_config = Some(format!("--cluster.tls-config={}", local.display()));
            } else if a.starts_with("--cluster.peer-name=") || is_request_limit(a) {
                args.push(a.to_string());
            }
        }
        // The stack limits what one request may carry, with flags Herald takes.
        assert_eq!(
            command
                .iter()
                .filter(|a| is_request_limit(a.as_str().unwrap()))
                .count(),
            4,
            "{service} sets the four request limits"
        );
        args.push(tls_config.unwrap_or_else(|| panic!("{service} has no --cluster.tls-config")));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        nodes.push(
            start_herald_at(
                &root,
                "route: {receiver: r}\nreceivers: [{name: r}]\n",
                &refs,
            )
            .await,
        );
    }
    for n in &nodes {
        wait_until("the replicas to see each other", T, || async {
            let status = get_json(&format!("{}/api/v2/status", n.base)).await;
            (status["cluster"]["peers"].as_array().map_or(0, Vec::len) == 2).then_some(())
        })
        .await;
    }
    let id = create_silence(&nodes[0].base, "alertname", "Ha", "stack-test", "gossiped").await;
    wait_silence(&nodes[1].base, &id).await;
    assert!(
        counter(
            &nodes[1].base,
            "alertmanager_tls_transport_packet_bytes_received_total"
        )
        .await
            > 0.0,
        "gossip went over TLS"
    );
}
