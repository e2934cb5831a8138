//! Microsoft Teams through Power Automate workflows (an Adaptive Card in a
//! message): the requests Herald sends are Alertmanager 0.33.1's for the
//! same config and alerts, firing and resolved; retries (5xx, and 429 after
//! its Retry-After); and 0.34's global `proxy_url` under a partial
//! `http_config`.

mod common;

use std::time::Duration;

use common::fake::*;
use common::*;

const T: Duration = Duration::from_secs(30);

#[cfg(feature = "system-tests")]
fn config(base: &str) -> String {
    format!(
        r#"
route:
  receiver: teams
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: teams
    msteamsv2_configs:
      - webhook_url: '{base}workflows/defaults/triggers/manual/paths/invoke?api-version=2016-06-01&sig=s3cr3t'
      - webhook_url: '{base}workflows/custom'
        title: '{{{{ .GroupLabels.alertname }}}} is {{{{ .Status }}}} <&>'
        text: '{{{{ range .Alerts }}}}* {{{{ .Labels.instance }}}}: {{{{ .Annotations.description }}}}{{{{ "\n" }}}}{{{{ end }}}}'
"#
    )
}

/// Requests of one phase (firing or resolved) in path order: the two
/// configs of the receiver are notified concurrently.
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
    // A workflow accepts the request with 202 and runs later.
    let (ours, theirs) = differential(
        config,
        std::sync::Arc::new(|_, _| Reply::status(202)),
        &alerts,
        2,
        4,
    )
    .await;
    assert_eq!(ours.len(), 4, "{ours:?}");
    assert_eq!(theirs.len(), 4, "{theirs:?}");
    for phase in 0..2 {
        let o = sorted(ours[phase * 2..phase * 2 + 2].to_vec());
        let t = sorted(theirs[phase * 2..phase * 2 + 2].to_vec());
        for (o, t) in o.iter().zip(&t) {
            assert_eq!(o.line(), t.line());
            assert_eq!(o.header("content-type"), t.header("content-type"));
            assert_eq!(o.header("authorization"), t.header("authorization"));
            assert_eq!(
                normalize(&o.body, &[]),
                normalize(&t.body, &[]),
                "{} differs",
                o.path
            );
            // Go's encoder: HTML-escaped, one trailing newline.
            assert_eq!(
                String::from_utf8_lossy(&o.raw),
                String::from_utf8_lossy(&t.raw)
            );
        }
    }
    let fired = sorted(ours[..2].to_vec());
    assert_eq!(fired[0].path, "/workflows/custom");
    assert_eq!(
        fired[1].query, "api-version=2016-06-01&sig=s3cr3t",
        "the signed query is kept"
    );
    let card = |e: &Exchange| e.body["attachments"][0].clone();
    let a = card(&fired[1]);
    assert_eq!(fired[1].body["type"], "message");
    assert_eq!(a["contentType"], "application/vnd.microsoft.card.adaptive");
    assert!(a["contentUrl"].is_null());
    assert_eq!(a["content"]["type"], "AdaptiveCard");
    assert_eq!(a["content"]["version"], "1.2");
    assert_eq!(a["content"]["msteams"]["width"], "full");
    let heading = &a["content"]["body"][0];
    assert_eq!(heading["text"], "[FIRING:2] DiskFull db (critical)");
    assert_eq!(heading["color"], "Attention");
    assert_eq!(heading["style"], "heading");
    assert_eq!(a["content"]["body"][1]["wrap"], true);
    assert_eq!(
        card(&fired[0])["content"]["body"][0]["text"],
        "DiskFull is firing <&>"
    );
    let done = sorted(ours[2..].to_vec());
    assert_eq!(card(&done[1])["content"]["body"][0]["color"], "Good");
}

fn one_config(url: &str) -> String {
    format!(
        r#"
route:
  receiver: teams
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1h
receivers:
  - name: teams
    msteamsv2_configs:
      - webhook_url: '{url}'
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_client_errors_are_not() {
    let svc = FakeService::with(fail_first(2, Reply::status(502), Reply::status(202))).await;
    let h = start_herald(&one_config(&svc.url("/workflows/ok")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let seen = svc.wait(3, T).await;
    assert_eq!(
        seen[2].body["attachments"][0]["content"]["body"][0]["color"],
        "Attention"
    );
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_failed_total{integration="msteamsv2"}"#,
        2.0,
    )
    .await;

    let bad = FakeService::start(Reply::json(
        400,
        serde_json::json!({"error": {"code": "InvalidRequestContent"}}),
    ))
    .await;
    let h = start_herald(&one_config(&bad.url("/workflows/bad")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="msteamsv2",reason="clientError"}"#,
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
        Reply::status(202),
    ))
    .await;
    let h = start_herald(&one_config(&svc.url("/workflows/x")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let at = svc.wait(2, T).await;
    let gap = at[1].at - at[0].at;
    // Backoff alone would retry within a second.
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notifications_failed_total{integration="msteamsv2",reason="rateLimited"}"#
        )
        .await,
        0.0,
        "the retry delivered"
    );
}

/// Alertmanager 0.34 (#5379): a receiver whose `http_config` sets other
/// things but no `proxy_url` still goes out through the global proxy.
#[tokio::test(flavor = "multi_thread")]
async fn a_partial_http_config_goes_through_the_global_proxy() {
    let proxy = FakeService::start(Reply::status(202)).await;
    let cfg = format!(
        r#"
global:
  http_config:
    proxy_url: '{}'
route:
  receiver: teams
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1h
receivers:
  - name: teams
    msteamsv2_configs:
      - webhook_url: 'http://teams.invalid/workflows/w?sig=x'
        http_config:
          follow_redirects: false
"#,
        proxy.url("")
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let seen = proxy.wait(1, T).await;
    assert_eq!(seen[0].header("host"), Some("teams.invalid"));
    assert_eq!(seen[0].line(), "POST /workflows/w?sig=x");
    assert_eq!(seen[0].body["type"], "message");
}
