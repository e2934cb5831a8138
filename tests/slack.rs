//! The Slack integration against a local Slack endpoint: the payload
//! Alertmanager sends (compared with the real Alertmanager 0.25 on the same
//! config and alerts), 5xx retries, `ok: false` answers, 429 with
//! `Retry-After`, the Slack-app mode and title truncation.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

/// A new alert (an old one would make Alertmanager flush its group before
/// the rest of the request is in it).
/// A new alert: an old one makes Alertmanager flush its group before the
/// rest of the request is in it.
fn alert(name: &str, instance: &str) -> Value {
    json!({"labels": {"alertname": name, "instance": instance, "severity": "critical"},
           "annotations": {"summary": "Disk <95%> & \"rising\"", "runbook": "https://wiki/disk?a=1&b=2"},
           "startsAt": jiff::Timestamp::now().to_string(),
           "generatorURL": "http://prometheus:9090/graph?g0.expr=up"})
}

fn config(slack_configs: &str, group_interval: &str) -> String {
    format!(
        r#"
route:
  receiver: slack
  group_by: [alertname]
  group_wait: 0s
  group_interval: {group_interval}
receivers:
  - name: slack
    slack_configs:
{slack_configs}
"#
    )
}

/// Everything a user can set, with templates in each field.
#[cfg(feature = "system-tests")]
fn full_slack_config(hook: &Webhook) -> String {
    format!(
        r#"      - api_url: {url}
        send_resolved: true
        channel: '#alerts-{{{{ .CommonLabels.severity }}}}'
        username: herald-bot
        icon_emoji: ':fire:'
        link_names: true
        pretext: '{{{{ len .Alerts.Firing }}}} firing'
        text: '{{{{ range .Alerts }}}}*{{{{ .Labels.instance }}}}*: {{{{ .Annotations.summary }}}} <{{{{ .Annotations.runbook }}}}|runbook>{{{{ "\n" }}}}{{{{ end }}}}'
        footer: 'from {{{{ .ExternalURL }}}}'
        image_url: 'https://img.example.com/{{{{ .GroupLabels.alertname }}}}.png'
        short_fields: true
        fields:
          - title: Severity
            value: '{{{{ .CommonLabels.severity }}}}'
          - title: Instances
            value: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ end }}}}'
            short: false
        mrkdwn_in: [text, pretext]
        actions:
          - type: button
            text: 'Runbook {{{{ .GroupLabels.alertname }}}}'
            url: '{{{{ (index .Alerts 0).Annotations.runbook }}}}'
            style: primary
          - type: button
            text: Ack
            name: ack
            value: '{{{{ .GroupLabels.alertname }}}}'
            confirm:
              text: 'Really ack {{{{ .GroupLabels.alertname }}}}?'
              ok_text: 'Yes'
"#,
        url = hook.url("/services/T000/B000/XXXX")
    )
}

/// The same config and alerts through Herald and Alertmanager 0.25: the
/// Slack requests are byte-identical, for the defaults and for a config
/// that sets every field, firing and resolved.
// System tier: Debian's Alertmanager.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn payload_matches_alertmanager() {
    let ours = Webhook::start().await;
    let theirs = Webhook::start().await;
    let cfg = |hook: &Webhook| {
        config(
            &format!(
                "      - api_url: {}\n        send_resolved: true\n{}",
                hook.url("/defaults"),
                full_slack_config(hook)
            ),
            "1s",
        )
        .replace("group_wait: 0s", "group_wait: 1s")
    };
    // An incoming webhook answers "ok": since 0.33 Alertmanager fails a
    // notification on any other plain-text body, and then has nothing to
    // resolve.
    for hook in [&ours, &theirs] {
        hook.script(
            (0..4)
                .map(|_| Scripted {
                    status: 200,
                    headers: vec![("content-type", "text/plain".into())],
                    body: "ok".into(),
                })
                .collect(),
        );
    }
    let h = start_herald(&cfg(&ours), &[]).await;
    let am = start_alertmanager(&cfg(&theirs)).await;
    let alerts = json!([alert("DiskFull", "db1"), alert("DiskFull", "db2<>")]);
    post_alerts(&h.base, &alerts).await;
    post_alerts(&am.base, &alerts).await;
    let ext = |s: &Webhook, base: &str, n: usize| {
        let all = s.all();
        assert_eq!(all.len(), n, "{all:?}");
        let mut v: Vec<(String, String)> = all
            .iter()
            .map(|r| {
                (
                    r.path.clone(),
                    String::from_utf8(r.raw.clone())
                        .unwrap()
                        .replace(base, "EXTERNAL")
                        .replace(&s.url("/"), "HOOK/"),
                )
            })
            .collect();
        v.sort();
        v
    };
    ours.nth(2, T).await;
    theirs.nth(2, T).await;
    assert_eq!(ext(&ours, &h.base, 2), ext(&theirs, &am.base, 2));
    let mut resolved = alerts.clone();
    for a in resolved.as_array_mut().unwrap() {
        a["endsAt"] = json!(jiff::Timestamp::now().to_string());
    }
    post_alerts(&h.base, &resolved).await;
    post_alerts(&am.base, &resolved).await;
    ours.nth(4, T).await;
    theirs.nth(4, T).await;
    let (o, t) = (ext(&ours, &h.base, 4), ext(&theirs, &am.base, 4));
    assert_eq!(o, t);
    let fired: Value = serde_json::from_str(
        &o.iter()
            .find(|(p, b)| p == "/defaults" && b.contains("FIRING"))
            .unwrap()
            .1,
    )
    .unwrap();
    let att = &fired["attachments"][0];
    assert_eq!(att["title"], "[FIRING:2] DiskFull (critical)");
    assert_eq!(att["color"], "danger");
    assert_eq!(fired["username"], "Alertmanager");
    assert_eq!(att["mrkdwn_in"], json!(["fallback", "pretext", "text"]));
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried() {
    let hook = Webhook::start().await;
    hook.fail(2, 503);
    let h = start_herald(
        &config(&format!("      - api_url: {}\n", hook.url("/x")), "1h"),
        &[],
    )
    .await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    let r = hook.nth(1, T).await;
    assert_eq!(
        r.body["attachments"][0]["title"],
        "[FIRING:1] A (i1 critical)"
    );
    assert_eq!(hook.attempts().len(), 3);
    assert_eq!(
        r.headers["content-type"], "application/json",
        "{:?}",
        r.headers
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn ok_false_is_a_permanent_error() {
    let hook = Webhook::start().await;
    hook.script(vec![Scripted {
        status: 200,
        headers: vec![("content-type", "application/json".into())],
        body: r#"{"ok":false,"error":"channel_not_found"}"#.into(),
    }]);
    let h = start_herald(
        &config(&format!("      - api_url: {}\n", hook.url("/x")), "1h"),
        &[],
    )
    .await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="slack",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(hook.attempts().len(), 1, "ok:false must not be retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_honour_retry_after() {
    let hook = Webhook::start().await;
    hook.script(vec![Scripted {
        status: 429,
        headers: vec![("retry-after", "2".into())],
        body: "rate limited".into(),
    }]);
    let h = start_herald(
        &config(&format!("      - api_url: {}\n", hook.url("/x")), "1h"),
        &[],
    )
    .await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    hook.nth(1, T).await;
    let at = hook.attempts();
    assert_eq!(at.len(), 2);
    let gap = at[1] - at[0];
    // Backoff alone would retry after 0.25–0.75s.
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn slack_app_mode_and_title_truncation() {
    let hook = Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "xoxb-from-file\n").unwrap();
    let h = start_herald(
        &config(
            &format!(
                "      - app_token_file: {}\n        app_url: {}\n        channel: '#ops'\n        title: '{{{{ range until 1100 }}}}{{{{ end }}}}'\n",
                token.display(),
                hook.url("/api/chat.postMessage")
            )
            .replace(
                "'{{ range until 1100 }}{{ end }}'",
                &format!("'{}ü'", "x".repeat(1100)),
            ),
            "1h",
        ),
        &[],
    )
    .await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    let r = hook.nth(1, T).await;
    assert_eq!(r.path, "/api/chat.postMessage");
    assert_eq!(r.headers["authorization"], "Bearer xoxb-from-file");
    assert_eq!(r.body["channel"], "#ops");
    let title = r.body["attachments"][0]["title"].as_str().unwrap();
    assert_eq!(title.chars().count(), 1024);
    assert!(title.ends_with("x…"), "{title}");
}

/// `update_message`: the first notification of a group is posted, the
/// next ones edit it with `chat.update` (the `ts` and channel id Slack
/// answered, kept in the notification log), also after a restart; and
/// `message_text` is the message's top-level text.
#[tokio::test(flavor = "multi_thread")]
async fn update_message_edits_the_posted_message_across_a_restart() {
    let slack = Webhook::start().await;
    let answer = || Scripted {
        status: 200,
        headers: vec![("content-type", "application/json; charset=utf-8".into())],
        body: r#"{"ok":true,"channel":"C0123","ts":"1700000000.000100"}"#.into(),
    };
    slack.script((0..4).map(|_| answer()).collect());
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        &format!(
            "      - app_token: xoxb-1\n        app_url: {}\n        channel: '#ops'\n        send_resolved: true\n        update_message: true\n        message_text: '{{{{ .Status }}}}: {{{{ len .Alerts }}}}'\n",
            slack.url("/api/chat.postMessage")
        ),
        "1s",
    );
    let h = start_herald_at(dir.path(), &cfg, &[]).await;
    post_alerts(&h.base, &json!([alert("A", "i1")])).await;
    let first = slack.nth(1, T).await;
    assert_eq!(first.path, "/api/chat.postMessage");
    assert_eq!(first.body["channel"], "#ops");
    assert!(first.body.get("ts").is_none(), "{}", first.body);
    assert_eq!(first.body["text"], "firing: 1");

    post_alerts(&h.base, &json!([alert("A", "i2")])).await;
    let second = slack.nth(2, T).await;
    assert_eq!(second.path, "/api/chat.update");
    assert_eq!(second.body["ts"], "1700000000.000100");
    assert_eq!(second.body["channel"], "C0123");
    assert_eq!(second.body["text"], "firing: 2");
    assert_eq!(second.headers["authorization"], "Bearer xoxb-1");

    // The kept ts is in the durable notification log, once committed.
    wait_counter(&h.base, "alertmanager_nflog_entries_written_total", 2.0).await;
    drop(h);
    let h = start_herald_at(dir.path(), &cfg, &[]).await;
    let mut resolved = vec![alert("A", "i1"), alert("A", "i2")];
    for a in &mut resolved {
        a["endsAt"] = json!(jiff::Timestamp::now().to_string());
    }
    post_alerts(&h.base, &json!(resolved)).await;
    let third = slack.nth(3, T).await;
    assert_eq!(third.path, "/api/chat.update");
    assert_eq!(third.body["ts"], "1700000000.000100");
    assert_eq!(third.body["text"], "resolved: 2");
}
