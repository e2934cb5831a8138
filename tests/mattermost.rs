//! Mattermost incoming webhooks: the requests Herald sends are Alertmanager
//! 0.33.1's for the same config and alerts, firing and resolved (defaults;
//! one attachment built from the top-level keys with props and a priority
//! to fix up; an attachments list with a text past Mattermost's limit);
//! retries (5xx, and 429 after its Retry-After); the global webhook URL.

mod common;

use std::time::Duration;

use common::fake::*;
use common::*;

const T: Duration = Duration::from_secs(30);

#[cfg(feature = "system-tests")]
fn config(base: &str) -> String {
    let long = format!("{}ü-cut", "x".repeat(16380));
    format!(
        r#"
route:
  receiver: mm
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: mm
    mattermost_configs:
      - webhook_url: '{base}hooks/defaults'
      - webhook_url: '{base}hooks/top'
        channel: 'alerts-{{{{ .CommonLabels.team }}}}'
        username: herald
        icon_url: https://example.com/icon.png
        icon_emoji: ':fire:'
        text: '{{{{ range .Alerts }}}}* {{{{ .Labels.instance }}}}: {{{{ .Annotations.description }}}}{{{{ "\n" }}}}{{{{ end }}}}'
        fallback: '{{{{ .Status }}}} fallback'
        color: '{{{{ if eq .Status "firing" }}}}#ff0000{{{{ else }}}}#00ff00{{{{ end }}}}'
        pretext: pre
        author_name: Prometheus
        author_link: https://prometheus.example
        author_icon: https://example.com/p.png
        title: '{{{{ .GroupLabels.alertname }}}} <&>'
        title_link: 'https://grafana.example/d?var={{{{ .GroupLabels.team }}}}'
        fields:
          - title: Severity
            value: '{{{{ .CommonLabels.severity }}}}'
            short: true
          - title: Count
            value: '{{{{ len .Alerts }}}}'
        thumb_url: https://example.com/th.png
        footer: '{{{{ .Receiver }}}}'
        footer_icon: https://example.com/f.png
        image_url: https://example.com/i.png
        type: custom_alert
        props:
          card: '**{{{{ .Status }}}}** {{{{ .CommonAnnotations.summary }}}}'
        priority:
          priority: Important
          requested_ack: true
          persistent_notifications: true
      - webhook_url: '{base}hooks/list'
        text: '{long}'
        attachments:
          - title: '{{{{ .Status }}}}'
            color: danger
            fields:
              - title: a
                value: '{{{{ .CommonLabels.team }}}}'
                short: false
          - text: second
            footer: f
        priority:
          priority: urgent
          persistent_notifications: true
"#
    )
}

/// Requests of one phase (firing or resolved) in path order: the configs
/// of the receiver are notified concurrently.
#[cfg(feature = "system-tests")]
fn sorted(mut v: Vec<Exchange>) -> Vec<Exchange> {
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v
}

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn firing_then_resolved_match_alertmanager() {
    // Without startsAt each side stamps the alerts as it takes them: a
    // time taken before both servers started would already be older than
    // group_wait and flush the group before the second alert is in it.
    let mut alerts = firing("DiskFull", &["db1", "db2"]);
    for a in alerts.as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("startsAt");
    }
    let (ours, theirs) = differential(
        config,
        std::sync::Arc::new(|_, _| Reply::text(200, "ok")),
        &alerts,
        3,
        6,
    )
    .await;
    assert_eq!(ours.len(), 6, "{ours:?}");
    assert_eq!(theirs.len(), 6, "{theirs:?}");
    for phase in 0..2 {
        let o = sorted(ours[phase * 3..phase * 3 + 3].to_vec());
        let t = sorted(theirs[phase * 3..phase * 3 + 3].to_vec());
        for (o, t) in o.iter().zip(&t) {
            assert_eq!(o.line(), t.line());
            assert_eq!(o.header("content-type"), t.header("content-type"));
            assert_eq!(
                normalize(&o.body, &[]),
                normalize(&t.body, &[]),
                "{} differs",
                o.path
            );
            assert_eq!(
                String::from_utf8_lossy(&o.raw),
                String::from_utf8_lossy(&t.raw)
            );
        }
    }
    let fired = sorted(ours[..3].to_vec());
    let (defaults, list, top) = (&fired[0].body, &fired[1].body, &fired[2].body);
    assert_eq!(defaults["username"], "Alertmanager");
    assert_eq!(defaults["attachments"][0]["color"], "danger");
    assert_eq!(
        defaults["attachments"][0]["title"],
        "[FIRING:2] DiskFull db (critical)"
    );
    assert!(
        defaults.get("text").is_none(),
        "the text is the attachment's"
    );
    assert_eq!(top["priority"]["priority"], "important");
    assert_eq!(top["priority"]["requested_ack"], true);
    assert!(top["priority"].get("persistent_notifications").is_none());
    assert_eq!(top["props"]["card"], "**firing** ");
    assert_eq!(top["attachments"][0]["fields"][1]["value"], "2");
    assert!(top["attachments"][0]["fields"][1].get("short").is_none());
    let text = list["text"].as_str().unwrap();
    assert_eq!(text.chars().count(), 16383);
    assert!(text.ends_with("xü-…"), "{}", &text[text.len() - 10..]);
    assert_eq!(list["attachments"].as_array().unwrap().len(), 2);
    assert_eq!(list["priority"]["persistent_notifications"], true);
}

fn one_config(url: &str) -> String {
    format!(
        r#"
route:
  receiver: mm
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1h
receivers:
  - name: mm
    mattermost_configs:
      - webhook_url: '{url}'
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_client_errors_are_not() {
    let svc = FakeService::with(fail_first(2, Reply::status(502), Reply::text(200, "ok"))).await;
    let h = start_herald(&one_config(&svc.url("/hook/ok")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let seen = svc.wait(3, T).await;
    assert_eq!(seen[2].body["attachments"][0]["color"], "danger");
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_failed_total{integration="mattermost"}"#,
        2.0,
    )
    .await;

    let bad = FakeService::start(Reply::json(
        400,
        serde_json::json!({"id": "web.incoming_webhook.invalid.app_error", "status_code": 400}),
    ))
    .await;
    let h = start_herald(&one_config(&bad.url("/hook/bad")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="mattermost",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(bad.count(), 1, "a 400 is not retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_retried_after_retry_after() {
    let svc = FakeService::with(fail_first(
        1,
        Reply::text(429, "throttled").with_header("retry-after", "2"),
        Reply::text(200, "ok"),
    ))
    .await;
    let h = start_herald(&one_config(&svc.url("/hook")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let at = svc.wait(2, T).await;
    let gap = at[1].at - at[0].at;
    // Backoff alone would retry within a second.
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notifications_failed_total{integration="mattermost",reason="rateLimited"}"#
        )
        .await,
        0.0,
        "the retry delivered"
    );
}

/// Without a URL of its own a config takes `global.mattermost_webhook_url_file`,
/// read at each notification.
#[tokio::test(flavor = "multi_thread")]
async fn the_global_webhook_url_file_is_used_and_reread() {
    let svc = FakeService::start(Reply::text(200, "ok")).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("url");
    std::fs::write(&file, format!("{}\n", svc.url("/hooks/first"))).unwrap();
    let cfg = format!(
        r#"
global:
  mattermost_webhook_url_file: '{}'
route:
  receiver: mm
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: mm
    mattermost_configs:
      - channel: ops
"#,
        file.display()
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let seen = svc.wait(1, T).await;
    assert_eq!(seen[0].path, "/hooks/first");
    assert_eq!(seen[0].body["channel"], "ops");
    std::fs::write(&file, svc.url("/hooks/second")).unwrap();
    post_alerts(&h.base, &firing("A", &["i2"])).await;
    let seen = svc.wait(2, T).await;
    assert_eq!(seen[1].path, "/hooks/second");
}

/// The webhook URLs of all three chat integrations of this change are
/// credentials: `/api/v2/status` shows `<secret>` for each.
#[tokio::test(flavor = "multi_thread")]
async fn status_hides_the_webhook_urls() {
    let cfg = r#"
global:
  mattermost_webhook_url: 'https://mm.example.com/hooks/global-secret'
route:
  receiver: chat
receivers:
  - name: chat
    mattermost_configs:
      - webhook_url: 'https://mm.example.com/hooks/mm-secret'
      - channel: from-global
    msteams_configs:
      - webhook_url: 'https://example.webhook.office.com/webhookb2/teams-secret'
    msteamsv2_configs:
      - webhook_url: 'https://prod.logic.azure.com/workflows/w?sig=v2-secret'
"#;
    let h = start_herald(cfg, &[]).await;
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(!original.contains("secret'"), "{original}");
    for s in ["global-secret", "mm-secret", "teams-secret", "v2-secret"] {
        assert!(!original.contains(s), "{s} shown: {original}");
    }
    // The global URL, the two mattermost configs (one filled from
    // global), msteams and msteamsv2.
    assert_eq!(original.matches("<secret>").count(), 5, "{original}");
}
