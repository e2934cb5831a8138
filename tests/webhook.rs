//! The webhook's newer keys against Alertmanager 0.33.1 on the same input:
//! a custom `payload` (strings rendered as templates) and a templated `url`,
//! and config acceptance of every key new since 0.25 in webhook, e-mail,
//! Slack and `global` (Herald's `check-config` and 0.33.1's `amtool
//! check-config` agree, valid and invalid).

// Needs Alertmanager 0.33.1 (scripts/reference.sh): the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

/// New alerts: an old one makes Alertmanager flush its group before the
/// rest of the request is in it.
fn alerts() -> Value {
    let now = jiff::Timestamp::now().to_string();
    json!([
        {"labels": {"alertname": "DiskFull", "instance": "db1", "team": "db"},
         "annotations": {"summary": "Disk <95%> full & rising"},
         "startsAt": now},
        {"labels": {"alertname": "DiskFull", "instance": "db2", "team": "db"},
         "startsAt": now}
    ])
}

#[tokio::test(flavor = "multi_thread")]
async fn payload_and_templated_url_match_alertmanager() {
    let ours = Webhook::start().await;
    let theirs = Webhook::start().await;
    let cfg = |hook: &Webhook| {
        let base = hook.url("");
        format!(
            r#"
route:
  receiver: hook
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: '{base}teams/{{{{ .GroupLabels.team }}}}?n={{{{ len .Alerts }}}}'
        payload:
          text: '{{{{ .CommonAnnotations.summary }}}} on {{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} {{{{ end }}}}'
          count: '{{{{ len .Alerts }}}}'
          '{{{{ .GroupLabels.team }}}}_status': '{{{{ .Status }}}}'
          nested:
            - plain: 42
              flag: true
            - '{{{{ .Alerts.Firing | len }}}}'
          list: '[a, {{{{ .Receiver }}}}]'
          empty: ''
          colon: 'value1:'
          alerts: '{{{{ range .Alerts }}}}- {{{{ .Labels.instance }}}}{{{{ "\n" }}}}{{{{ end }}}}'
"#
        )
    };
    let h = start_herald(&cfg(&ours), &[]).await;
    let am = start_alertmanager(&cfg(&theirs)).await;
    post_alerts(&h.base, &alerts()).await;
    post_alerts(&am.base, &alerts()).await;
    let (o, t) = (ours.nth(1, T).await, theirs.nth(1, T).await);
    assert_eq!(t.path, "/teams/db", "0.33.1: {:?}", t.path);
    assert_eq!(o.path, t.path);
    assert_eq!(
        String::from_utf8_lossy(&o.raw),
        String::from_utf8_lossy(&t.raw),
        "payload bytes differ"
    );
    assert_eq!(o.body["count"], json!(2));
    assert_eq!(o.body["db_status"], "firing");
}

/// A URL that renders empty fails the notification for good: one
/// attempt, no retry.
#[tokio::test(flavor = "multi_thread")]
async fn an_empty_templated_url_fails_without_retrying() {
    let cfg = r#"
route:
  receiver: hook
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: '{{ if eq .Status "resolved" }}http://127.0.0.1:9/x{{ end }}'
"#;
    let h = start_herald(cfg, &[]).await;
    post_alerts(&h.base, &json!([{"labels": {"alertname": "A"}}])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="webhook",reason="other"}"#,
        1.0,
    )
    .await;
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notification_requests_total{integration="webhook"}"#
        )
        .await,
        1.0,
        "one attempt, no retry"
    );
}

fn herald_check(cfg: &str) -> (bool, String) {
    check_config_text(std::path::Path::new(herald_bin()), cfg)
}

fn amtool_check(cfg: &str) -> (bool, String) {
    check_config_text(&am_current_bin("amtool"), cfg)
}

/// Every new key, valid and invalid: Herald accepts what 0.33.1 accepts
/// and refuses what it refuses, with Alertmanager's message.
#[test]
fn new_keys_are_accepted_and_refused_like_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    std::fs::write(&file, "x").unwrap();
    let file = file.display().to_string();
    let receiver = |integration: &str| {
        format!("route: {{receiver: r}}\nreceivers:\n- name: r\n  {integration}\n")
    };
    let global = |keys: &str| format!("global:\n{keys}\n{}", receiver(""));
    let email = |keys: &str| {
        receiver(&format!(
            "email_configs:\n  - to: a@example.com\n    from: b@example.com\n    smarthost: h:25\n{keys}"
        ))
    };
    let slack = |keys: &str| receiver(&format!("slack_configs:\n  - {keys}"));
    // (config, valid?, a word of Alertmanager's error)
    let cases: Vec<(String, bool, &str)> = vec![
        (receiver("webhook_configs:\n  - url: 'http://h/{{ .GroupLabels.team }}'"), true, ""),
        (receiver("webhook_configs:\n  - url: '{{ .GroupLabels.host }}/x'"), true, ""),
        (receiver("webhook_configs:\n  - url: 'http://h/{{ .Broken '"), false, "template"),
        (receiver(&format!("webhook_configs:\n  - url_file: {file}\n    payload: {{a: '{{{{ .Status }}}}', b: [1, 2]}}")), true, ""),
        (email(&format!("    auth_secret_file: {file}\n    auth_username: u")), true, ""),
        (email("    auth_secret: s\n    auth_username: u"), true, ""),
        (email("    threading: {enabled: true, thread_by_date: daily}"), true, ""),
        (email("    threading: {enabled: true, thread_by_date: none}"), true, ""),
        (email("    threading: {enabled: true}"), false, "thread_by_date"),
        (email("    threading: {enabled: true, thread_by_date: weekly}"), false, "thread_by_date"),
        (email("    threading: {enabled: false, thread_by_date: weekly}"), true, ""),
        (email("    threading: {enabled: true, thread_by_date: daily}\n    headers: {references: x}"), false, "References"),
        (email("    threading: {enabled: true, thread_by_date: daily}\n    headers: {In-Reply-To: x}"), false, "In-Reply-To"),
        (slack("api_url: https://hooks.slack.com/x\n    message_text: '{{ .Status }}'"), true, ""),
        (slack("api_url: https://slack.com/api/chat.postMessage\n    update_message: true"), true, ""),
        (slack("api_url: https://hooks.slack.com/x\n    update_message: true"), false, "update_message"),
        (global(&format!("  smtp_auth_secret_file: {file}")), true, ""),
        (global(&format!("  smtp_auth_secret: s\n  smtp_auth_secret_file: {file}")), false, "smtp_auth_secret"),
        (global("  telegram_bot_token: t"), true, ""),
        (global(&format!("  telegram_bot_token_file: {file}")), true, ""),
        (global(&format!("  telegram_bot_token: t\n  telegram_bot_token_file: {file}")), false, "telegram_bot_token"),
        (global("  mattermost_webhook_url: https://mm.example.com/hooks/x"), true, ""),
        (global(&format!("  mattermost_webhook_url_file: {file}")), true, ""),
        (global(&format!("  mattermost_webhook_url: https://mm.example.com/hooks/x\n  mattermost_webhook_url_file: {file}")), false, "mattermost_webhook_url"),
        (global(&format!("  wechat_api_secret_file: {file}")), true, ""),
        (global(&format!("  wechat_api_secret: s\n  wechat_api_secret_file: {file}")), false, "wechat_api_secret"),
        (global(&format!("  slack_app_token: t\n  slack_app_token_file: {file}")), false, "slack_app_token"),
        (global("  slack_app_token: t\n  slack_api_url: https://hooks.slack.com/x"), false, "slack_app_token"),
        (global("  slack_app_token: t\n  slack_api_url: https://slack.com/api/chat.postMessage"), true, ""),
        (global(&format!("  rocketchat_token: t\n  rocketchat_token_file: {file}")), false, "rocketchat_token"),
        (global(&format!("  rocketchat_token_id: t\n  rocketchat_token_id_file: {file}")), false, "rocketchat_token_id"),
    ];
    for (cfg, valid, word) in cases {
        let (am_ok, am_out) = amtool_check(&cfg);
        assert_eq!(am_ok, valid, "0.33.1 on\n{cfg}\n{am_out}");
        let (ok, out) = herald_check(&cfg);
        assert_eq!(ok, valid, "Herald on\n{cfg}\n{out}");
        if !valid {
            assert!(
                out.contains(word),
                "Herald's error for\n{cfg}\nlacks {word:?}: {out}"
            );
        }
    }
}

/// The differential harness the integration tests share, on the simplest
/// integration: the same firing and resolved notifications, byte for byte
/// but for times, from Herald and from 0.33.1.
#[tokio::test(flavor = "multi_thread")]
async fn firing_then_resolved_match_alertmanager() {
    use common::fake::*;
    let cfg = |base: &str| {
        format!(
            r#"
route:
  receiver: hook
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: hook
    webhook_configs:
      - url: '{base}hook'
"#
        )
    };
    let alerts = firing("DiskFull", &["db1", "db2"]);
    let (ours, theirs) =
        differential(cfg, Arc::new(|_, _| Reply::text(200, "ok")), &alerts, 1, 2).await;
    assert_eq!(ours.len(), theirs.len(), "request count");
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.line(), t.line());
        assert_eq!(o.header("content-type"), t.header("content-type"));
        // The group key and the receiver's URL-bearing fields are the same
        // by construction; only times and the fake's port differ.
        // 0.34 added `routeLabels` (always present); 0.33.1 has none.
        let mut ob = o.body.clone();
        assert_eq!(
            ob.as_object_mut().unwrap().remove("routeLabels"),
            Some(json!({}))
        );
        assert_eq!(normalize(&ob, &[]), normalize(&t.body, &[]));
    }
    assert_eq!(theirs[1].body["status"], "resolved");
}
