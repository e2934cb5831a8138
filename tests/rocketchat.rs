//! The Rocket.Chat integration against a stand-in for its REST API: the
//! message and its auth headers (compared with Alertmanager 0.33.1 on the
//! same config and alerts), `success: false` answers permanent, 5xx and
//! 429 (after its Retry-After) retried, and the secrets of the three chat
//! integrations hidden in `/api/v2/status`.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

fn success() -> Reply {
    Reply::json(200, json!({"success": true, "message": {"_id": "m1"}}))
}

fn config(base: &str, global: &str, rocketchat_configs: &str, group_interval: &str) -> String {
    format!(
        r#"
global:
{}
route:
  receiver: rc
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: {group_interval}
receivers:
  - name: rc
    rocketchat_configs:
{}
"#,
        global.replace("{BASE}", base),
        rocketchat_configs.replace("{BASE}", base)
    )
}

/// Alerts stamped by each server on arrival (see tests/wechat.rs).
#[cfg(feature = "system-tests")]
fn fresh(mut alerts: serde_json::Value) -> serde_json::Value {
    for a in alerts.as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("startsAt");
    }
    alerts
}

#[cfg(feature = "system-tests")]
async fn compare(global: String, rocketchat_configs: &'static str) -> Vec<Exchange> {
    let alerts = fresh(firing("DiskFull", &["db1", "db2"]));
    let (ours, theirs) = differential(
        |base| config(base, &global, rocketchat_configs, "1s"),
        Arc::new(|_, _| success()),
        &alerts,
        1,
        2,
    )
    .await;
    assert_eq!(ours.len(), theirs.len(), "request count");
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.line(), t.line());
        for h in ["content-type", "x-auth-token", "x-user-id"] {
            assert_eq!(o.header(h), t.header(h), "{h}");
        }
        assert_eq!(
            String::from_utf8_lossy(&o.raw),
            String::from_utf8_lossy(&t.raw),
            "{} body",
            o.line()
        );
    }
    ours
}

/// Every key that changes the message, each a template.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn every_key_matches_alertmanager() {
    let got = compare(
        "  rocketchat_api_url: http://127.0.0.1:1/\n".into(),
        r#"      - send_resolved: true
        api_url: '{BASE}'
        token_id: user-1
        token: 'pat-<secret>'
        channel: '#{{ .GroupLabels.team }}'
        color: '{{ if eq .Status "firing" }}#ff0000{{ else }}#00ff00{{ end }}'
        title: '{{ .Status | toUpper }}: {{ .GroupLabels.alertname }}'
        title_link: 'http://runbooks.test/{{ .GroupLabels.alertname }}'
        text: '{{ range .Alerts }}{{ .Annotations.description }} on {{ .Labels.instance }}{{ "\n" }}{{ end }}'
        emoji: ':fire:'
        icon_url: 'http://icons.test/am.png'
        image_url: 'http://img.test/{{ .GroupLabels.alertname }}.png'
        thumb_url: 'http://img.test/thumb.png'
        short_fields: true
        link_names: true
        fields:
          - title: Severity
            value: '{{ .CommonLabels.severity }}'
          - title: Count
            value: '{{ len .Alerts }}'
            short: false
        actions:
          - type: link
            text: 'Silence {{ .GroupLabels.alertname }}'
            url: 'http://am.test/#/silences/new'
            imageurl: 'http://img.test/btn.png'
            iswebview: true
            msg: ack
            msginchatwindow: true
"#,
    )
    .await;
    assert_eq!(got[0].line(), "POST /api/v1/chat.postMessage");
    assert_eq!(got[0].header("x-auth-token"), Some("pat-<secret>"));
    assert_eq!(got[0].header("x-user-id"), Some("user-1"));
    assert_eq!(got[1].body["attachments"][0]["title"], "RESOLVED: DiskFull");
}

/// The defaults, with the API URL (no trailing `/`) and the credentials
/// from `global:`, the latter in files.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn defaults_and_globals_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let (id, token) = (dir.path().join("id"), dir.path().join("token"));
    std::fs::write(&id, "user-from-file\n").unwrap();
    std::fs::write(&token, "token-from-file\n").unwrap();
    let got = compare(
        format!(
            "  rocketchat_api_url: '{{BASE}}chat'\n  rocketchat_token_id_file: {}\n  rocketchat_token_file: {}\n",
            id.display(),
            token.display()
        ),
        "      - send_resolved: true\n",
    )
    .await;
    assert_eq!(got[0].line(), "POST /chat/api/v1/chat.postMessage");
    assert_eq!(got[0].header("x-auth-token"), Some("token-from-file"));
    assert_eq!(got[0].header("x-user-id"), Some("user-from-file"));
    assert_eq!(got[0].body["attachments"][0]["color"], "red");
    assert_eq!(got[1].body["attachments"][0]["color"], "green");
}

fn laptop_config(svc: &FakeService) -> String {
    config(
        &svc.url(""),
        "  rocketchat_token_id: u\n  rocketchat_token: t\n",
        "      - api_url: '{BASE}'\n        channel: '#ops'\n",
        "1h",
    )
}

/// Rocket.Chat refusing a message with HTTP 200 is permanent.
#[tokio::test(flavor = "multi_thread")]
async fn success_false_is_a_permanent_error() {
    let svc = FakeService::start(Reply::json(
        200,
        json!({"success": false, "error": "error-room-not-found"}),
    ))
    .await;
    let h = start_herald(&laptop_config(&svc), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="rocketchat",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(svc.count(), 1, "success:false must not be retried");
}

/// 4xx is permanent, with its reason.
#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_permanent() {
    let svc = FakeService::start(Reply::json(
        401,
        json!({"status": "error", "message": "You must be logged in to do this."}),
    ))
    .await;
    let h = start_herald(&laptop_config(&svc), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="rocketchat",reason="authError"}"#,
        1.0,
    )
    .await;
    assert_eq!(svc.count(), 1);
}

/// 5xx is retried with backoff; 429 no sooner than its Retry-After.
#[tokio::test(flavor = "multi_thread")]
async fn server_errors_and_rate_limits_are_retried() {
    let at = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = at.clone();
    let svc = FakeService::with(Arc::new(move |_, before: &[Exchange]| {
        seen.lock().unwrap().push(Instant::now());
        match before.len() {
            0 => Reply::text(503, "maintenance"),
            1 => Reply::json(429, json!({"success": false, "error": "too many requests"}))
                .with_header("retry-after", "2"),
            _ => success(),
        }
    }))
    .await;
    let h = start_herald(&laptop_config(&svc), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    svc.wait(3, T).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_total{integration="rocketchat"}"#,
        3.0,
    )
    .await;
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notification_requests_failed_total{integration="rocketchat"}"#
        )
        .await,
        2.0
    );
    let at = at.lock().unwrap().clone();
    let gap = at[2] - at[1];
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
}

/// The tokens, secrets and keys of the chat integrations are `<secret>`
/// in the status API.
#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_hidden_in_the_status() {
    let h = start_herald(
        r#"
route:
  receiver: chat
receivers:
  - name: chat
    rocketchat_configs:
      - token_id: rc-id-hidden
        token: rc-token-hidden
    wechat_configs:
      - api_secret: wx-secret-hidden
        corp_id: corp
    pushover_configs:
      - user_key: po-user-hidden
        token: po-token-hidden
"#,
        &[],
    )
    .await;
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(!original.contains("hidden"), "{original}");
    assert_eq!(original.matches("<secret>").count(), 5, "{original}");
}

/// The config `/api/v2/status` shows, with the three chat integrations in
/// it (Go durations, lower-cased action keys, filled-in defaults), loads
/// in Alertmanager 0.33.1, so that its amtool can read it.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn the_status_config_loads_in_alertmanager() {
    let h = start_herald(
        r#"
route:
  receiver: chat
receivers:
  - name: chat
    rocketchat_configs:
      - token_id: i
        token: t
        fields: [{title: a, value: b, short: true}]
        actions: [{type: button, text: go, url: 'http://x', imageurl: 'http://i', msginchatwindow: true}]
    wechat_configs:
      - api_secret: s
        corp_id: corp
        message_type: markdown
    pushover_configs:
      - user_key: u
        token: t
        retry: 1m30s
        ttl: 1.5h
        monospace: true
"#,
        &[],
    )
    .await;
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(original.contains("retry: 1m30s"), "{original}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("status.yml");
    std::fs::write(&path, original).unwrap();
    let (ok, out) = check_config_file(&am_current_bin("amtool"), &path);
    assert!(ok, "{out}\n{original}");
}
