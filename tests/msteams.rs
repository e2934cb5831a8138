//! Microsoft Teams (Office 365 connector MessageCard): the requests Herald
//! sends are Alertmanager 0.33.1's for the same config and alerts, firing
//! and resolved; an answer's status decides retries (5xx, and 429 after its
//! Retry-After) as Herald's rule says.

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
    msteams_configs:
      - webhook_url: '{base}webhookb2/defaults'
      - webhook_url: '{base}webhookb2/custom'
        title: '{{{{ .GroupLabels.alertname }}}} is {{{{ .Status }}}}'
        summary: '{{{{ len .Alerts }}}} alerts <&>'
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
    // Teams answers a card it took with `1`.
    let (ours, theirs) = differential(
        config,
        std::sync::Arc::new(|_, _| Reply::text(200, "1")),
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
    assert_eq!(fired[0].path, "/webhookb2/custom");
    assert_eq!(fired[0].body["title"], "DiskFull is firing");
    assert_eq!(fired[0].body["themeColor"], "8C1A1A");
    assert_eq!(fired[1].body["@context"], "http://schema.org/extensions");
    assert_eq!(fired[1].body["type"], "MessageCard");
    assert_eq!(fired[1].body["title"], "[FIRING:2] DiskFull db (critical)");
    let done = sorted(ours[2..].to_vec());
    assert_eq!(done[1].body["themeColor"], "2DC72D");
    assert_eq!(done[1].body["title"], "[RESOLVED] DiskFull db (critical)");
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
    msteams_configs:
      - webhook_url: '{url}'
"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_client_errors_are_not() {
    let svc = FakeService::with(fail_first(2, Reply::status(502), Reply::text(200, "1"))).await;
    let h = start_herald(&one_config(&svc.url("/hook/ok")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let seen = svc.wait(3, T).await;
    assert_eq!(seen[2].body["themeColor"], "8C1A1A");
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_failed_total{integration="msteams"}"#,
        2.0,
    )
    .await;

    let bad = FakeService::start(Reply::text(400, "Summary or Text is required.")).await;
    let h = start_herald(&one_config(&bad.url("/hook/bad")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="msteams",reason="clientError"}"#,
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
        Reply::text(200, "1"),
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
            r#"alertmanager_notifications_failed_total{integration="msteams",reason="rateLimited"}"#
        )
        .await,
        0.0,
        "the retry delivered"
    );
}

/// A template that fails when run fails the notification for good: another
/// try would render the same.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_template_is_not_retried() {
    let svc = FakeService::start(Reply::text(200, "1")).await;
    let cfg = one_config(&svc.url("/hook")).replace(
        "      - webhook_url:",
        "      - title: '{{ template \"no.such.template\" . }}'\n        webhook_url:",
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="msteams",reason="other"}"#,
        1.0,
    )
    .await;
    assert_eq!(svc.count(), 0);
}
