//! Real Prometheus (Debian's package) evaluates an always-firing rule and
//! sends its alerts to Herald through its `alerting` section; Herald must
//! deliver them to the webhook.

// Needs Debian's Prometheus: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_alerts_reach_the_webhook() {
    let bin = "/usr/bin/prometheus";
    assert!(
        Path::new(bin).exists(),
        "{bin} is missing: run scripts/test.sh, which installs Debian's prometheus"
    );
    let hook = Webhook::start().await;
    let cfg = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/prom")
    );
    let herald = start_herald(&cfg, &[]).await;
    let herald_addr = herald.base.trim_start_matches("http://").to_string();

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n  - name: herald-test\n    interval: 1s\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n        labels: {severity: critical}\n        annotations: {summary: 'fires for the Herald test'}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n    - api_version: v2\n      static_configs:\n        - targets: ['{herald_addr}']\n"
        ),
    )
    .unwrap();
    let port = free_port();
    let mut prom = Command::new(bin)
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // The first alert can go out before Prometheus has discovered
        // Herald; resend soon instead of after the default minute.
        .arg("--rules.alert.resend-delay=1s")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");

    let n = tokio::time::timeout(
        Duration::from_secs(60),
        hook.nth(1, Duration::from_secs(60)),
    )
    .await;
    let _ = prom.kill();
    let _ = prom.wait();
    let n = n.expect("no notification from Prometheus' alert");
    assert_eq!(n.body["groupKey"], r#"{}:{alertname="AlwaysFiring"}"#);
    let alert = &n.body["alerts"][0];
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["annotations"]["summary"], "fires for the Herald test");
    assert!(
        alert["generatorURL"]
            .as_str()
            .unwrap()
            .contains("/graph?g0.expr=vector"),
        "{alert}"
    );
    assert_eq!(alert["status"], "firing");
}
