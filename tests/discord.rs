//! The Discord integration against a fake webhook endpoint: what Herald
//! posts compared with Alertmanager 0.33.1 (firing and resolved, defaults
//! and every key, the length limits), then the retry rules (5xx retried,
//! 4xx final with Discord's answer in the error, 429 retried after its
//! `Retry-After`) and that the webhook URL stays out of the log.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// `firing()`'s alerts without `startsAt`, so that each server stamps its
/// own arrival time: both servers start after the alerts are made, and an
/// alert older than `group_wait` makes Alertmanager flush its group before
/// the rest of the request is in it.
#[cfg(feature = "system-tests")]
fn unstamped(mut alerts: serde_json::Value) -> serde_json::Value {
    for a in alerts.as_array_mut().into_iter().flatten() {
        a.as_object_mut().map(|o| o.remove("startsAt"));
    }
    alerts
}

fn route() -> &'static str {
    r#"
route:
  receiver: dc
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
"#
}

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn firing_then_resolved_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    // One file per side: each reads its own at every notification.
    let url_file = |base: &str| {
        dir.path()
            .join(base.replace(|c: char| !c.is_ascii_digit(), ""))
    };
    let long_title = "T".repeat(300);
    let long_content = "ç".repeat(2100);
    let cfg = |base: &str| {
        let file = url_file(base);
        std::fs::write(&file, format!("{base}api/webhooks/2/secret\n")).unwrap();
        format!(
            r#"{route}
receivers:
  - name: dc
    discord_configs:
      - webhook_url: '{base}api/webhooks/1/secret'
      - webhook_url_file: '{file}'
        title: '{long_title}'
        content: '{long_content} {{{{ .Status }}}}'
        message: '{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}} <{{{{ .Annotations.summary }}}}> {{{{ end }}}}'
        username: 'Herald & co'
        avatar_url: 'https://example.com/avatar.png?a=1&b=2'
"#,
            route = route(),
            file = file.display(),
        )
    };
    let alerts = unstamped(firing("DiskFull", &["db1", "db2"]));
    let (mut ours, mut theirs) =
        differential(cfg, Arc::new(|_, _| Reply::status(204)), &alerts, 2, 4).await;
    assert_eq!((ours.len(), theirs.len()), (4, 4));
    ours.sort_by_key(|e| e.path.clone());
    theirs.sort_by_key(|e| e.path.clone());
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.line(), t.line());
        assert_eq!(o.header("content-type"), t.header("content-type"));
        assert_eq!(
            normalize(&o.body, &[]),
            normalize(&t.body, &[]),
            "{}",
            o.line()
        );
        // Go's encoder: HTML characters escaped, a newline at the end.
        assert_eq!(
            String::from_utf8_lossy(&o.raw),
            String::from_utf8_lossy(&t.raw)
        );
    }
    let embed = |i: usize| &ours[i].body["embeds"][0];
    assert_eq!(embed(0)["color"], 0x992D22);
    assert_eq!(embed(1)["color"], 0x2ECC71);
    assert_eq!(ours[0].body["content"], "");
    assert_eq!(embed(2)["title"].as_str().unwrap().chars().count(), 256);
    assert_eq!(
        ours[2].body["content"].as_str().unwrap().chars().count(),
        2000
    );
    assert_eq!(ours[2].body["username"], "Herald & co");
    assert!(ours[0].body.get("username").is_none());
}

fn config(base: &str) -> String {
    format!(
        r#"{route}
receivers:
  - name: dc
    discord_configs:
      - webhook_url: '{base}api/webhooks/1/s3cr3t-t0ken'
"#,
        route = route()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_retried_refusals_final() {
    let svc = FakeService::with(Arc::new(|_, seen: &[Exchange]| {
        if seen.len() < 2 {
            Reply::text(502, "bad gateway")
        } else {
            Reply::status(204)
        }
    }))
    .await;
    let h = start_herald(&config(&svc.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    svc.wait(3, T).await;
    drop(h);

    let svc = FakeService::start(Reply::json(
        400,
        json!({"message": "Cannot send an empty message", "code": 50006}),
    ))
    .await;
    let h = start_herald(&config(&svc.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="discord",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(svc.count(), 1, "a 400 must not be retried");
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.contains("unexpected status code 400") && log.contains("Cannot send an empty message"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_honour_retry_after() {
    let svc = FakeService::with(Arc::new(move |_, seen: &[Exchange]| {
        if seen.is_empty() {
            Reply::json(
                429,
                json!({"message": "You are being rate limited.", "retry_after": 2.0, "global": false}),
            )
            .with_header("retry-after", "2")
        } else {
            Reply::status(204)
        }
    }))
    .await;
    let h = start_herald(&config(&svc.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let at: Vec<_> = svc.wait(2, T).await.iter().map(|e| e.at).collect();
    let gap = at[1] - at[0];
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
    drop(h);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webhook_url_stays_secret() {
    let port = free_port();
    let h = start_herald(&config(&format!("http://127.0.0.1:{port}/")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let log = wait_for("a failed attempt in the log", T, || {
        let log = h.log.lock().unwrap().clone();
        log.contains("Notify attempt failed").then_some(log)
    })
    .await;
    assert!(
        !log.contains("s3cr3t-t0ken"),
        "the webhook URL leaked: {log}"
    );
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap_or("");
    assert!(!original.contains("s3cr3t-t0ken"), "{original}");
    assert!(original.contains("webhook_url: <secret>"), "{original}");
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_and_colours() {
    let svc = FakeService::start(Reply::status(204)).await;
    let cfg = format!(
        r#"{route}
receivers:
  - name: dc
    discord_configs:
      - webhook_url: '{base}api/webhooks/1/x'
        title: '{title}'
        message: '{{{{ range .Alerts }}}}{message}{{{{ end }}}}'
        content: '{content}'
        avatar_url: "http://x/%zz"
"#,
        route = route(),
        base = svc.url(""),
        title = "ä".repeat(300),
        message = "m".repeat(2500),
        content = "c".repeat(2001),
    );
    let h = start_herald(&cfg, &[]).await;
    let alerts = firing("A", &["i1", "i2"]);
    post_alerts(&h.base, &alerts).await;
    let got = svc.wait(1, T).await;
    let b = &got[0].body;
    let runes = |v: &serde_json::Value| v.as_str().unwrap().chars().count();
    assert_eq!(runes(&b["embeds"][0]["title"]), 256);
    assert_eq!(runes(&b["embeds"][0]["description"]), 4096);
    assert_eq!(runes(&b["content"]), 2000);
    assert!(b["content"].as_str().unwrap().ends_with('…'));
    assert_eq!(b["embeds"][0]["color"], 0x992D22);
    // An avatar URL that Go cannot parse is left out.
    assert!(b.get("avatar_url").is_none(), "{b}");
    post_alerts(&h.base, &resolved(&alerts)).await;
    let got = svc.wait(2, T).await;
    assert_eq!(got[1].body["embeds"][0]["color"], 0x2ECC71);
}
