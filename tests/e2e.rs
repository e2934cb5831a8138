//! End-to-end tests of the `herald` binary: alerts in over HTTP, webhooks
//! out, with short timers and waits on conditions.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

fn config(hook: &Webhook, route_extra: &str, webhook_extra: &str) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 2s
  repeat_interval: 1h
{route_extra}
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
{webhook_extra}
"#,
        url = hook.url("/hook")
    )
}

fn alert(name: &str, instance: &str) -> Value {
    json!({"labels": {"alertname": name, "instance": instance, "job": "node"}, "annotations": {"summary": "s <&>"}})
}

const T: Duration = Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread")]
async fn groups_alerts_and_sends_alertmanager_payload() {
    let hook = Webhook::start().await;
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    let (code, _) = post_alerts(
        &h.base,
        &json!([alert("A", "i2"), alert("A", "i1"), alert("B", "i1")]),
    )
    .await;
    assert_eq!(code, 200);
    let first = hook.nth(1, T).await;
    let second = hook.nth(2, T).await;
    let mut bodies = [first.body.clone(), second.body.clone()];
    bodies.sort_by_key(|b| b["groupKey"].as_str().unwrap().to_string());
    let a = &bodies[0];
    assert_eq!(a["groupKey"], r#"{}:{alertname="A"}"#);
    assert_eq!(a["version"], "4");
    assert_eq!(a["status"], "firing");
    assert_eq!(a["receiver"], "hook");
    assert_eq!(a["groupLabels"], json!({"alertname": "A"}));
    assert_eq!(a["commonLabels"], json!({"alertname": "A", "job": "node"}));
    assert_eq!(a["commonAnnotations"], json!({"summary": "s <&>"}));
    assert_eq!(a["externalURL"], "http://herald.test:9093");
    assert_eq!(a["truncatedAlerts"], 0);
    let alerts = a["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    // Sorted by job, then instance.
    assert_eq!(alerts[0]["labels"]["instance"], "i1");
    assert_eq!(alerts[1]["labels"]["instance"], "i2");
    assert_eq!(
        alerts[0]["endsAt"], "0001-01-01T00:00:00Z",
        "firing alerts carry Go's zero time"
    );
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[0]["fingerprint"].as_str().unwrap().len(), 16);
    // Go's JSON escaping and the trailing newline.
    let raw = String::from_utf8(first.raw.clone()).unwrap();
    assert!(
        raw.contains(r"s \u003c\u0026\u003e") && raw.ends_with("}\n"),
        "{raw}"
    );
    assert!(
        raw.starts_with(r#"{"receiver":"hook","status":"firing","alerts":["#),
        "{raw}"
    );
    let ua = first.headers.get("user-agent").unwrap().to_str().unwrap();
    assert!(ua.starts_with("Alertmanager/"), "{ua}");
    assert_eq!(bodies[1]["groupKey"], r#"{}:{alertname="B"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn group_interval_batches_changes_and_resolved_is_sent() {
    let hook = Webhook::start().await;
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    let first = hook.nth(1, T).await;
    assert_eq!(first.body["alerts"].as_array().unwrap().len(), 1);
    // A new alert in a group that already flushed waits for group_interval.
    post_alerts(&h.base, &json!([alert("A", "i2")])).await;
    let second = hook.nth(2, T).await;
    assert_eq!(second.body["alerts"].as_array().unwrap().len(), 2);
    assert!(
        second.at.duration_since(first.at) >= Duration::from_millis(1900),
        "group_interval respected"
    );
    // Resolve both: one resolved notification, then the group is gone.
    let now = jiff::Timestamp::now().to_string();
    let mut r1 = alert("A", "i1");
    r1["endsAt"] = json!(now);
    let mut r2 = alert("A", "i2");
    r2["endsAt"] = json!(now);
    post_alerts(&h.base, &json!([r1, r2])).await;
    let third = hook.nth(3, T).await;
    assert_eq!(third.body["status"], "resolved");
    assert!(third.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["status"] == "resolved" && a["endsAt"] != "0001-01-01T00:00:00Z"));
    let base = h.base.clone();
    wait_for_async_empty_groups(&base).await;
    // Nothing more is sent for a group that resolved.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hook.count(), 3);
}

async fn wait_for_async_empty_groups(base: &str) {
    let deadline = std::time::Instant::now() + T;
    loop {
        let groups = get_json(&format!("{base}/api/v2/alerts/groups")).await;
        if groups.as_array().unwrap().is_empty() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "group not removed: {groups}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn repeat_interval_resends_unchanged_group() {
    let hook = Webhook::start().await;
    let cfg = config(&hook, "", "")
        .replace("repeat_interval: 1h", "repeat_interval: 3s")
        .replace("group_interval: 2s", "group_interval: 1s");
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    let first = hook.nth(1, T).await;
    let second = hook.nth(2, T).await;
    let gap = second.at.duration_since(first.at);
    assert!(
        gap >= Duration::from_millis(2900),
        "repeat after repeat_interval, got {gap:?}"
    );
    assert_eq!(first.body["alerts"], second.body["alerts"]);
    assert_eq!(
        second.body["notification_reason"],
        "repeat interval elapsed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_alerts_truncates() {
    let hook = Webhook::start().await;
    let h = start_herald(&config(&hook, "", "        max_alerts: 2"), &[]).await;
    post_alerts(
        &h.base,
        &json!([alert("A", "i1"), alert("A", "i2"), alert("A", "i3")]),
    )
    .await;
    let n = hook.nth(1, T).await;
    assert_eq!(n.body["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(n.body["truncatedAlerts"], 1);
    assert_eq!(n.body["alerts"][1]["labels"]["instance"], "i2");
}

/// A 429 with `Retry-After` is retried, no sooner than asked, even by the
/// webhook, whose Alertmanager counterpart drops the notification on any
/// 4xx; a 429 without it stays a client error, as in Alertmanager.
#[tokio::test(flavor = "multi_thread")]
async fn a_429_with_retry_after_is_retried_no_sooner_than_asked() {
    let hook = Webhook::start().await;
    hook.script(vec![Scripted {
        status: 429,
        headers: vec![("retry-after", "2".to_string())],
        body: String::new(),
    }]);
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    hook.nth(1, T).await;
    let at = hook.attempts();
    assert_eq!(at.len(), 2, "one refusal, one delivery");
    let waited = at[1] - at[0];
    assert!(
        waited >= Duration::from_millis(1900),
        "retried after {waited:?}"
    );

    let hook = Webhook::start().await;
    hook.script(vec![Scripted {
        status: 429,
        headers: vec![],
        body: String::new(),
    }]);
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="webhook",reason="rateLimited"}"#,
        1.0,
    )
    .await;
    assert_eq!(hook.attempts().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_a_failing_receiver_until_it_accepts() {
    let hook = Webhook::start().await;
    hook.fail(2, 503);
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    let n = hook.nth(1, T).await;
    assert_eq!(n.body["status"], "firing");
    let metrics = get_text(&format!("{}/metrics", h.base)).await;
    assert!(
        metrics.contains(
            r#"alertmanager_notification_requests_failed_total{integration="webhook"} 2"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"alertmanager_notifications_total{integration="webhook"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("alertmanager_nflog_queries_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alertmanager_nflog_query_duration_seconds_count 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_not_retried_and_counted() {
    let hook = Webhook::start().await;
    hook.fail(1, 400);
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    // The failed flush is retried at the next group_interval tick.
    let n = hook.nth(1, T).await;
    assert_eq!(n.body["status"], "firing");
    let metrics = get_text(&format!("{}/metrics", h.base)).await;
    assert!(metrics.contains(r#"alertmanager_notifications_failed_total{integration="webhook",reason="clientError"} 1"#), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_reload_keeps_the_running_config() {
    let hook = Webhook::start().await;
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    let client = reqwest::Client::new();
    std::fs::write(&h.config_path, "route:\n  receiver: nope\nreceivers: []\n").unwrap();
    let r = client
        .post(format!("{}/-/reload", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 500);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains(r#"undefined receiver "nope""#));
    let metrics = get_text(&format!("{}/metrics", h.base)).await;
    assert!(metrics.contains("alertmanager_config_last_reload_successful 0"));
    // The old config still routes and delivers.
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    assert_eq!(hook.nth(1, T).await.body["receiver"], "hook");
    // A good config is taken, and the stored alert is re-grouped under it.
    let good = config(&hook, "", "")
        .replace("name: hook", "name: renamed")
        .replace("receiver: hook", "receiver: renamed");
    std::fs::write(&h.config_path, good).unwrap();
    let r = client
        .post(format!("{}/-/reload", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let receivers = get_json(&format!("{}/api/v2/receivers", h.base)).await;
    assert_eq!(
        receivers,
        json!([{"labels": {"name": "renamed"}, "name": "renamed"}])
    );
    let n = hook.nth(2, T).await;
    assert_eq!(n.body["receiver"], "renamed");
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads() {
    let hook = Webhook::start().await;
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    let good = config(&hook, "", "")
        .replace("name: hook", "name: viahup")
        .replace("receiver: hook", "receiver: viahup");
    std::fs::write(&h.config_path, good).unwrap();
    let pid = h.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let url = format!("{}/api/v2/receivers", h.base);
    let deadline = std::time::Instant::now() + T;
    while get_json(&url).await != json!([{"labels": {"name": "viahup"}, "name": "viahup"}]) {
        assert!(
            std::time::Instant::now() < deadline,
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_alerts_are_refused_while_valid_ones_are_kept() {
    let hook = Webhook::start().await;
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    let (code, body) = post_alerts(
        &h.base,
        &json!([alert("A", "i1"), {"labels": {"a": ""}}, {"labels": {"a": "1"}, "startsAt": "2030-01-01T00:00:00Z", "endsAt": "2029-01-01T00:00:00Z"}]),
    )
    .await;
    assert_eq!(code, 400);
    assert_eq!(
        body,
        "\"at least one label pair required\\nstart time must be before end time\"\n"
    );
    let alerts = get_json(&format!("{}/api/v2/alerts", h.base)).await;
    assert_eq!(alerts.as_array().unwrap().len(), 1);
    let (code, body) = post_alerts(&h.base, &json!([{"annotations": {}}])).await;
    assert_eq!(code, 422, "{body}");
    let metrics = get_text(&format!("{}/metrics", h.base)).await;
    assert!(
        metrics.contains(r#"alertmanager_alerts_invalid_total{version="v2"} 2"#),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn api_filters_and_route_prefix() {
    let hook = Webhook::start().await;
    let cfg = config(
        &hook,
        "  routes:\n    - matchers: ['severity=\"critical\"']\n      receiver: pager\n",
        "",
    ) + &format!(
        "  - name: pager\n    webhook_configs:\n      - url: {}\n",
        hook.url("/pager")
    );
    let h = start_herald(&cfg, &["--web.route-prefix=/am"]).await;
    let base = format!("{}/am", h.base);
    let mut crit = alert("C", "i1");
    crit["labels"]["severity"] = json!("critical");
    let (code, _) = post_alerts(&base, &json!([alert("A", "i1"), crit])).await;
    assert_eq!(code, 200);
    let all = get_json(&format!("{base}/api/v2/alerts")).await;
    assert_eq!(all.as_array().unwrap().len(), 2);
    let fps: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["fingerprint"].as_str().unwrap())
        .collect();
    let mut sorted = fps.clone();
    sorted.sort();
    assert_eq!(fps, sorted, "sorted by fingerprint");
    let only = get_json(&format!(
        "{base}/api/v2/alerts?filter=severity%3D%22critical%22"
    ))
    .await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(only[0]["receivers"], json!([{"name": "pager"}]));
    let by_recv = get_json(&format!("{base}/api/v2/alerts?receiver=hook")).await;
    assert_eq!(by_recv[0]["labels"]["alertname"], "A");
    let r = reqwest::get(format!("{base}/api/v2/alerts?filter=%3D%3D"))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let groups = get_json(&format!("{base}/api/v2/alerts/groups?receiver=pager")).await;
    assert_eq!(groups.as_array().unwrap().len(), 1);
    assert_eq!(groups[0]["receiver"], json!({"name": "pager"}));
    assert_eq!(
        reqwest::get(format!("{base}/-/healthy"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    assert_eq!(
        reqwest::get(format!("{base}/api/v1/alerts"))
            .await
            .unwrap()
            .status()
            .as_u16(),
        410
    );
    assert_eq!(
        reqwest::get(format!("{}/api/v2/alerts", h.base))
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[test]
fn check_config_and_routes_test_commands() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, "route:\n  receiver: a\n  routes:\n    - matchers: ['team=\"db\"']\n      receiver: b\nreceivers:\n  - name: a\n  - name: b\n").unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "route:\n  receiver: a\n  group_by: [x, x]\nreceivers:\n  - name: a\n",
    )
    .unwrap();
    let out = std::process::Command::new(herald_bin())
        .args(["check-config", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS"));
    let out = std::process::Command::new(herald_bin())
        .args(["check-config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("route.group_by") && text.contains(r#"duplicated label "x""#),
        "{text}"
    );
    let out = std::process::Command::new(herald_bin())
        .args([
            "routes",
            "test",
            "--config.file",
            good.to_str().unwrap(),
            "team=db",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "b");
    let out = std::process::Command::new(herald_bin())
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert!(!out.status.success(), "unknown flags are errors");
    let out = std::process::Command::new(herald_bin())
        .args([
            &format!("--config.file={}", bad.display()),
            "--web.listen-address=127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad config stops startup");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_shuts_down_cleanly() {
    let hook = Webhook::start().await;
    let mut h = start_herald(&config(&hook, "", ""), &[]).await;
    let pid = h.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + T;
        loop {
            if let Some(s) = h.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "herald did not exit on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_credentials_and_url_file_fan_out() {
    let hook = Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let url_file = dir.path().join("url");
    std::fs::write(&url_file, hook.url("/from-file")).unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "tok").unwrap();
    let cfg = format!(
        r#"
route:
  receiver: hook
  group_wait: 0s
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        http_config:
          basic_auth: {{username: alice, password_file: {pw}}}
      - url_file: {url_file}
        http_config:
          authorization: {{credentials_file: {token}}}
"#,
        url = hook.url("/basic"),
        pw = pw.display(),
        url_file = url_file.display(),
        token = token.display(),
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    hook.nth(2, T).await;
    let all = hook.all();
    let by_path = |p: &str| {
        all.iter()
            .find(|r| r.path == p)
            .unwrap_or_else(|| panic!("nothing at {p}"))
    };
    // base64("alice:s3cret")
    assert_eq!(
        by_path("/basic").headers["authorization"],
        "Basic YWxpY2U6czNjcmV0"
    );
    assert_eq!(by_path("/from-file").headers["authorization"], "Bearer tok");
    // The status endpoint never shows the secret.
    let status = get_text(&format!("{}/api/v2/status", h.base)).await;
    assert!(!status.contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread")]
async fn large_batches_are_accepted() {
    let hook = Webhook::start().await;
    let h = start_herald(&config(&hook, "", ""), &[]).await;
    let pad = "x".repeat(300);
    let alerts: Vec<Value> = (0..10_000)
        .map(|i| json!({"labels": {"alertname": "Big", "i": i.to_string(), "pad": pad}}))
        .collect();
    let (code, body) = post_alerts(&h.base, &Value::Array(alerts)).await;
    assert_eq!(code, 200, "a 3.5 MB batch must be accepted: {body}");
    let all = get_json(&format!("{}/api/v2/alerts", h.base)).await;
    assert_eq!(all.as_array().unwrap().len(), 10_000);
}

/// Webhooks over HTTPS: a private CA from `tls_config.ca_file` is trusted,
/// `insecure_skip_verify` skips verification, and without either the
/// certificate is refused (and the failure counted); `server_name` is the
/// name the certificate must carry, whatever the URL's host.
// System tier: openssl makes the certificates, python3 serves them.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn webhook_tls_options() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let certs = make_certs(d);
    let port = free_port();
    let out = d.join("received");
    let mut receiver = std::process::Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tls_receiver.py"
        ))
        .args([
            &port.to_string(),
            out.to_str().unwrap(),
            certs.cert.to_str().unwrap(),
            certs.key.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(receiver.stdout.take().unwrap()),
        &mut ready,
    )
    .unwrap();
    assert_eq!(ready.trim(), "ready");
    let cfg = format!(
        r#"
route:
  receiver: tls
  group_wait: 0s
receivers:
  - name: tls
    webhook_configs:
      - url: https://127.0.0.1:{port}/ca
        http_config: {{tls_config: {{ca_file: {ca}}}}}
      - url: https://127.0.0.1:{port}/insecure
        http_config: {{tls_config: {{insecure_skip_verify: true}}}}
      - url: https://127.0.0.1:{port}/untrusted
      - url: https://127.0.0.1:{port}/named
        http_config: {{tls_config: {{ca_file: {ca}, server_name: localhost}}}}
      - url: https://127.0.0.1:{port}/wrongname
        http_config: {{tls_config: {{ca_file: {ca}, server_name: other.example}}}}
"#,
        ca = certs.ca.display()
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    let out2 = out.clone();
    let lines = wait_for("TLS deliveries", T, move || {
        let text = std::fs::read_to_string(&out2).unwrap_or_default();
        (text.lines().count() >= 3).then_some(text)
    })
    .await;
    let metrics_url = format!("{}/metrics", h.base);
    let deadline = std::time::Instant::now() + T;
    loop {
        let m = get_text(&metrics_url).await;
        let failed = m
            .lines()
            .find(|l| {
                l.starts_with(
                    r#"alertmanager_notification_requests_failed_total{integration="webhook"}"#,
                )
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0);
        if failed >= 2.0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the untrusted certificate was not refused:\n{m}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = receiver.kill();
    let _ = receiver.wait();
    let paths: Vec<&str> = lines
        .lines()
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    assert!(
        paths.contains(&"/ca") && paths.contains(&"/insecure") && paths.contains(&"/named"),
        "{paths:?}"
    );
    assert!(
        !paths.contains(&"/untrusted") && !paths.contains(&"/wrongname"),
        "{paths:?}"
    );
}

/// A route inside a mute interval, or outside its active intervals, sends
/// nothing and its alerts show as suppressed with `mutedBy`.
#[tokio::test(flavor = "multi_thread")]
async fn time_intervals_mute_routes() {
    let hook = Webhook::start().await;
    let cfg = format!(
        r#"
route:
  receiver: open
  group_by: [alertname]
  group_wait: 1s
  routes:
    - matchers: ['alertname="M"']
      receiver: muted
      mute_time_intervals: [always]
    - matchers: ['alertname="A"']
      receiver: muted
      active_time_intervals: [long-ago, never-on-31-feb]
time_intervals:
  - name: always
    time_intervals: [{{times: [{{start_time: '00:00', end_time: '24:00'}}]}}]
  - name: long-ago
    time_intervals: [{{years: ['1999']}}]
  - name: never-on-31-feb
    time_intervals: [{{months: [february], days_of_month: ['31']}}]
receivers:
  - name: open
    webhook_configs: [{{url: '{open}'}}]
  - name: muted
    webhook_configs: [{{url: '{muted}'}}]
"#,
        open = hook.url("/open"),
        muted = hook.url("/muted")
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(
        &h.base,
        &json!([alert("M", "i1"), alert("A", "i1"), alert("O", "i1")]),
    )
    .await;
    let url = format!("{}/api/v2/alerts", h.base);
    let deadline = std::time::Instant::now() + T;
    let alerts = loop {
        let v = get_json(&url).await;
        let muted = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["status"]["state"] == "suppressed")
            .count();
        if muted == 2 {
            break v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "alerts never muted: {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let by_name = |n: &str| {
        alerts
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["labels"]["alertname"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("M")["status"]["mutedBy"], json!(["always"]));
    assert_eq!(
        by_name("A")["status"]["mutedBy"],
        json!(["long-ago", "never-on-31-feb"])
    );
    assert_eq!(by_name("O")["status"]["state"], "active");
    // The open route notifies; the muted ones, flushed at the same time, did not.
    let n = hook.nth(1, T).await;
    assert_eq!(n.path, "/open");
    assert_eq!(hook.all().iter().filter(|r| r.path == "/muted").count(), 0);
    let groups = get_json(&format!("{}/api/v2/alerts/groups?muted=false", h.base)).await;
    assert_eq!(groups.as_array().unwrap().len(), 1, "{groups}");
}

#[tokio::test(flavor = "multi_thread")]
async fn silences_mute_until_expired() {
    let hook = Webhook::start().await;
    let cfg = config(&hook, "", "").replace("group_interval: 2s", "group_interval: 1s");
    let h = start_herald(&cfg, &[]).await;
    let client = reqwest::Client::new();
    let far = jiff::Timestamp::now()
        .checked_add(jiff::SignedDuration::from_hours(1))
        .unwrap()
        .to_string();
    let sil = json!({"matchers": [{"name": "alertname", "value": "S", "isRegex": false}], "startsAt": jiff::Timestamp::now().to_string(), "endsAt": far, "createdBy": "e2e", "comment": "quiet"});
    let r = client
        .post(format!("{}/api/v2/silences", h.base))
        .json(&sil)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let id = r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();

    post_alerts(&h.base, &json!([alert("S", "i1"), alert("T", "i1")])).await;
    let first = hook.nth(1, T).await;
    assert_eq!(first.body["groupLabels"]["alertname"], "T");
    let alerts = get_json(&format!(
        "{}/api/v2/alerts?filter=alertname%3D%22S%22",
        h.base
    ))
    .await;
    assert_eq!(alerts[0]["status"]["state"], "suppressed");
    assert_eq!(alerts[0]["status"]["silencedBy"], json!([id]));
    let hidden = get_json(&format!("{}/api/v2/alerts?silenced=false", h.base)).await;
    assert_eq!(hidden.as_array().unwrap().len(), 1);
    let metrics = get_text(&format!("{}/metrics", h.base)).await;
    assert!(
        metrics.contains(r#"alertmanager_silences{state="active"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"alertmanager_alerts{state="suppressed"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("alertmanager_silences_queries_total"),
        "{metrics}"
    );
    assert!(
        metrics.contains("alertmanager_silences_query_duration_seconds_bucket"),
        "{metrics}"
    );

    let r = client
        .delete(format!("{}/api/v2/silence/{id}", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got = get_json(&format!("{}/api/v2/silence/{id}", h.base)).await;
    assert_eq!(got["status"]["state"], "expired");
    let second = hook.nth(2, T).await;
    assert_eq!(
        second.body["groupLabels"]["alertname"], "S",
        "released once the silence expired"
    );
    let r = client
        .delete(format!(
            "{}/api/v2/silence/00000000-0000-0000-0000-000000000000",
            h.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = client
        .get(format!("{}/api/v2/silence/not-a-uuid", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 422);
}

/// `--enable-feature=notify-resolved-when-muted` on one node: an alert
/// notified firing and then silenced, inhibited or put in a mute interval
/// (by a reload adding it) gets its resolved notification; without the
/// feature, as in Alertmanager, it does not.
#[tokio::test(flavor = "multi_thread")]
async fn muted_after_firing_then_resolved_is_notified_with_the_feature() {
    for feature in [true, false] {
        let hook = Webhook::start().await;
        let config = |mute: &str| {
            format!(
                "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n  routes:\n    - matchers: ['alertname=\"Timed\"']\n{mute}\
                 inhibit_rules:\n  - source_matchers: ['alertname=\"Maintenance\"']\n    target_matchers: ['alertname=\"Inhibited\"']\n\
                 receivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n\
                 time_intervals:\n  - name: always\n    time_intervals:\n      - times: [{{start_time: '00:00', end_time: '24:00'}}]\n",
                hook.url("/m")
            )
        };
        let extra: &[&str] = if feature {
            &["--enable-feature=notify-resolved-when-muted"]
        } else {
            &[]
        };
        let h = start_herald(&config(""), extra).await;
        let names = ["Silenced", "Inhibited", "Timed"];
        for n in names {
            post_alerts(&h.base, &json!([{"labels": {"alertname": n}}])).await;
        }
        for i in 1..=3 {
            hook.nth(i, T).await;
        }
        // Muted three ways, while still firing: nothing is sent.
        create_silence(&h.base, "alertname", "Silenced", "t", "after firing").await;
        post_alerts(&h.base, &json!([{"labels": {"alertname": "Maintenance"}}])).await;
        hook.nth(4, T).await; // the inhibiting source's own notification
        std::fs::write(
            &h.config_path,
            config("      mute_time_intervals: [always]\n"),
        )
        .unwrap();
        let r = reqwest::Client::new()
            .post(format!("{}/-/reload", h.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        // Then each resolves.
        let ended = jiff::Timestamp::now().to_string();
        for n in names {
            post_alerts(
                &h.base,
                &json!([{"labels": {"alertname": n}, "endsAt": ended}]),
            )
            .await;
        }
        if feature {
            let mut resolved = Vec::new();
            for i in 5..=7 {
                let n = hook.nth(i, T).await;
                assert_eq!(n.body["status"], "resolved", "{}", n.body);
                resolved.push(
                    n.body["groupLabels"]["alertname"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                );
            }
            resolved.sort();
            assert_eq!(resolved, ["Inhibited", "Silenced", "Timed"]);
        } else {
            // The three groups flush (resolved and muted) and are dropped,
            // leaving the source's: by then nothing was sent for them.
            wait_until("the muted groups gone", T, || {
                let base = h.base.clone();
                async move {
                    (counter(&base, "alertmanager_dispatcher_aggregation_groups").await == 1.0)
                        .then_some(())
                }
            })
            .await;
            assert_eq!(
                hook.count(),
                4,
                "Alertmanager's behaviour without the feature"
            );
        }
    }
}
