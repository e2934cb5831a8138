//! The real `amtool` talks to Herald: it must parse `GET /api/v2/status`
//! (the re-serialised config) and list alerts. Every test runs with the
//! reference release's amtool (0.33.1) and with Debian 12's 0.25, which
//! users of older installations still have.

// Needs Debian's amtool: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use serde_json::json;

/// Both amtools: the reference release's and Debian 12's.
fn amtools() -> [PathBuf; 2] {
    assert!(
        Path::new(AMTOOL_025).exists(),
        "{AMTOOL_025} is missing: run scripts/test.sh"
    );
    [am_current_bin("amtool"), PathBuf::from(AMTOOL_025)]
}

fn amtool(bin: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(bin).args(args).output().unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn amtool_reads_status_config_and_alerts() {
    for bin in amtools() {
        amtool_reads_status_config_and_alerts_with(&bin).await;
    }
}

async fn amtool_reads_status_config_and_alerts_with(bin: &Path) {
    let cfg = r#"
global:
  resolve_timeout: 2m
route:
  receiver: team
  group_by: [alertname]
  routes:
    - matchers: ['severity=~"crit|page"']
      receiver: pager
      continue: true
    - match_re: {service: 'api.*'}
      receiver: team
time_intervals:
  - name: nights
    time_intervals: [{times: [{start_time: '22:00', end_time: '24:00'}], weekdays: ['monday:friday']}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
receivers:
  - name: team
    webhook_configs:
      - url: http://127.0.0.1:9/team
        http_config:
          bearer_token: very-secret
  - name: pager
    webhook_configs: [{url: 'http://127.0.0.1:9/pager', max_alerts: 5}]
    email_configs:
      - to: oncall@example.com
        from: am@example.com
        smarthost: 127.0.0.1:9
        auth_username: u
        auth_password: mail-secret
        headers: {x-team: pager}
    slack_configs:
      - api_url: https://hooks.slack.com/services/slack-secret
        fields: [{title: a, value: b}]
        actions: [{type: button, text: t, url: 'http://x'}]
"#;
    let h = start_herald(cfg, &[]).await;
    let url = format!("--alertmanager.url={}", h.base);
    let (ok, out) = amtool(bin, &[&url, "config", "routes"]);
    if bin == Path::new(AMTOOL_025) {
        // 0.26+ show a webhook URL as `<secret>`, which 0.25's amtool does
        // not parse as a URL: it fails so against Alertmanager 0.33.1 too.
        assert!(
            !ok && out.contains(r#"unsupported scheme "" for URL"#),
            "{out}"
        );
        return;
    }
    assert!(ok, "amtool could not parse Herald's status: {out}");
    assert!(
        out.contains(r#"{severity=~"crit|page"}  continue: true  receiver: pager"#),
        "{out}"
    );
    let (ok, out) = amtool(bin, &[&url, "config", "show"]);
    assert!(ok, "{out}");
    assert!(
        !out.contains("very-secret") && out.contains("<secret>"),
        "{out}"
    );
    assert!(
        out.contains("email_configs:")
            && out.contains("slack_configs:")
            && out.contains("X-Team: pager"),
        "{out}"
    );
    assert!(
        !out.contains("mail-secret") && !out.contains("slack-secret"),
        "{out}"
    );
    let (ok, out) = amtool(
        bin,
        &[
            &url,
            "config",
            "routes",
            "test",
            "severity=crit",
            "service=api1",
        ],
    );
    assert!(ok, "{out}");
    assert!(out.lines().any(|l| l.trim() == "pager,team"), "{out}");

    post_alerts(&h.base, &json!([{"labels": {"alertname": "DiskFull", "severity": "crit"}, "annotations": {"summary": "disk"}}])).await;
    let (ok, out) = amtool(bin, &[&url, "alert", "query", "-o", "json"]);
    assert!(ok, "{out}");
    let json_start = out.find('[').unwrap();
    let v: serde_json::Value =
        serde_json::from_str(out[json_start..].lines().next().unwrap()).unwrap();
    assert_eq!(v[0]["labels"]["alertname"], "DiskFull");
    // The bundled configs are valid for the real amtool and for Herald.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut files = vec![root.join("herald.yml")];
    for e in std::fs::read_dir(root.join("examples")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "yml") {
            files.push(p);
        }
    }
    for f in files {
        let f = f.to_str().unwrap();
        let (ok, out) = amtool(bin, &["check-config", f]);
        assert!(ok, "amtool refuses {f}: {out}");
        let st = Command::new(herald_bin())
            .args(["check-config", f])
            .status()
            .unwrap();
        assert!(st.success(), "herald refuses {f}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn amtool_silences_round_trip() {
    for bin in amtools() {
        amtool_silences_round_trip_with(&bin).await;
    }
}

async fn amtool_silences_round_trip_with(bin: &Path) {
    let cfg = "route:\n  receiver: r\n  group_wait: 1h\nreceivers:\n  - name: r\n";
    let h = start_herald(cfg, &[]).await;
    let url = format!("--alertmanager.url={}", h.base);
    post_alerts(&h.base, &json!([{"labels": {"alertname": "Disk", "instance": "a"}}, {"labels": {"alertname": "Load"}}])).await;

    let (ok, out) = amtool(
        bin,
        &[
            &url,
            "silence",
            "add",
            "alertname=Disk",
            "instance=~a|b",
            "--comment=maintenance",
            "--author=ops",
            "--duration=2h",
        ],
    );
    assert!(ok, "{out}");
    let id = out
        .lines()
        .map(str::trim)
        .find(|l| l.len() == 36)
        .unwrap_or_else(|| panic!("no id in {out}"))
        .to_string();
    let (ok, out) = amtool(bin, &[&url, "silence", "query", "-q"]);
    assert!(ok && out.contains(&id), "{out}");
    let (ok, out) = amtool(bin, &[&url, "silence", "query", "alertname=Disk"]);
    assert!(
        ok && out.contains("maintenance") && out.contains("ops"),
        "{out}"
    );
    // The alert is silenced; `alert query` hides it unless asked (-s).
    let (ok, out) = amtool(bin, &[&url, "alert", "query"]);
    assert!(ok && !out.contains("Disk") && out.contains("Load"), "{out}");
    let (ok, out) = amtool(bin, &[&url, "alert", "query", "-s", "alertname=Disk"]);
    assert!(ok && out.contains("Disk"), "{out}");

    // Export and re-import with --force: a new silence with the same matchers
    // (without it, amtool posts the same id and the silence updates in place).
    let (ok, exported) = amtool(bin, &[&url, "silence", "query", "-o", "json"]);
    assert!(ok, "{exported}");
    let file = h.root.join("silences.json");
    let json_line = exported
        .lines()
        .find(|l| l.trim_start().starts_with('['))
        .unwrap();
    std::fs::write(&file, json_line).unwrap();
    let (ok, out) = amtool(
        bin,
        &[&url, "silence", "import", "--force", file.to_str().unwrap()],
    );
    assert!(ok, "{out}");
    let (ok, out) = amtool(bin, &[&url, "silence", "query", "-q"]);
    assert!(
        ok && out.lines().filter(|l| l.trim().len() == 36).count() == 2,
        "{out}"
    );

    // Update the comment in place: the id stays.
    let (ok, out) = amtool(bin, &[&url, "silence", "update", &id, "--comment=extended"]);
    assert!(ok && out.contains(&id), "{out}");

    // Expire both: nothing active, the first shows under -e.
    let (_, ids) = amtool(bin, &[&url, "silence", "query", "-q"]);
    for sid in ids.lines().map(str::trim).filter(|l| l.len() == 36) {
        let (ok, out) = amtool(bin, &[&url, "silence", "expire", sid]);
        assert!(ok, "{out}");
    }
    let (ok, out) = amtool(bin, &[&url, "silence", "query", "-q"]);
    assert!(ok && !out.lines().any(|l| l.trim().len() == 36), "{out}");
    let (ok, out) = amtool(bin, &[&url, "silence", "query", "--expired", "-q"]);
    assert!(ok && out.contains(&id), "{out}");
    let (ok, out) = amtool(bin, &[&url, "alert", "query"]);
    assert!(ok && out.contains("Disk"), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn amtool_alert_add_inhibited_and_cluster() {
    for bin in amtools() {
        amtool_alert_add_inhibited_and_cluster_with(&bin).await;
    }
}

async fn amtool_alert_add_inhibited_and_cluster_with(bin: &Path) {
    let cfg = "route:\n  receiver: r\n  group_wait: 1h\ninhibit_rules:\n  - source_matchers: ['severity=\"critical\"']\n    target_matchers: ['severity=\"warning\"']\n    equal: [instance]\nreceivers:\n  - name: r\n";
    let h = start_herald(cfg, &[]).await;
    let url = format!("--alertmanager.url={}", h.base);
    let (ok, out) = amtool(
        bin,
        &[
            &url,
            "alert",
            "add",
            "alertname=Down",
            "severity=critical",
            "instance=a",
            "--annotation=summary=down",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = amtool(
        bin,
        &[
            &url,
            "alert",
            "add",
            "alertname=Slow",
            "severity=warning",
            "instance=a",
        ],
    );
    assert!(ok, "{out}");
    // The warning is inhibited: hidden by default, listed with -i.
    let (ok, out) = amtool(bin, &[&url, "alert", "query"]);
    assert!(ok && out.contains("Down") && !out.contains("Slow"), "{out}");
    let (ok, out) = amtool(bin, &[&url, "alert", "query", "-i"]);
    assert!(ok && out.contains("Slow"), "{out}");
    // -a lists active (not suppressed) alerts only, with a matcher filter.
    let (ok, out) = amtool(bin, &[&url, "alert", "query", "-a", "severity=warning"]);
    assert!(ok && !out.contains("Slow"), "{out}");
    let (ok, out) = amtool(bin, &[&url, "alert", "query", "-a", "instance=a"]);
    assert!(ok && out.contains("Down") && !out.contains("Slow"), "{out}");
    // A silence expiring within the window shows with --within.
    let (ok, _) = amtool(
        bin,
        &[
            &url,
            "silence",
            "add",
            "alertname=Down",
            "--comment=x",
            "--duration=30m",
        ],
    );
    assert!(ok);
    let (ok, out) = amtool(bin, &[&url, "silence", "query", "--within=1h", "-q"]);
    assert!(ok && out.lines().any(|l| l.trim().len() == 36), "{out}");
    let (ok, out) = amtool(bin, &[&url, "silence", "query", "--within=10m", "-q"]);
    assert!(ok && !out.lines().any(|l| l.trim().len() == 36), "{out}");
    let (ok, out) = amtool(bin, &[&url, "cluster", "show"]);
    assert!(ok && out.contains("disabled"), "{out}");
}
