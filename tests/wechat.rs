//! The WeChat integration against a stand-in for WeChat Work's API: the
//! token request and the message (compared with Alertmanager 0.33.1 on the
//! same config and alerts), the cached token, an expired token (errcode
//! 42001) fetched again, other errcodes permanent, 5xx and 429 retried.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// WeChat's protocol: `gettoken` answers `tok-<n>` for the n-th request,
/// `message/send` answers what `send` says for the n-th message.
fn wechat(send: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Responder {
    Arc::new(move |ex: &Exchange, seen: &[Exchange]| {
        let count = |p: &str| seen.iter().filter(|e| e.path.ends_with(p)).count();
        if ex.path.ends_with("/gettoken") {
            Reply::json(
                200,
                json!({"errcode": 0, "errmsg": "ok", "access_token": format!("tok-{}", count("/gettoken") + 1), "expires_in": 7200}),
            )
        } else {
            send(count("/message/send") + 1)
        }
    })
}

/// Alerts without `startsAt`, so that each server stamps them when they
/// arrive: `firing()`'s "now" is from before the servers started, and an
/// alert older than `group_wait` makes Alertmanager flush its group at
/// once, before the second alert of the request is in it.
#[cfg(feature = "system-tests")]
fn fresh(mut alerts: serde_json::Value) -> serde_json::Value {
    for a in alerts.as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("startsAt");
    }
    alerts
}

fn ok() -> Reply {
    Reply::json(200, json!({"errcode": 0, "errmsg": "ok"}))
}

fn config(base: &str, wechat_configs: &str, group_interval: &str) -> String {
    format!(
        r#"
global:
  wechat_api_url: '{base}cgi-bin'
  wechat_api_secret: 'corp secret/&?'
  wechat_api_corp_id: ww0123
route:
  receiver: wx
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: {group_interval}
receivers:
  - name: wx
    wechat_configs:
{}
"#,
        wechat_configs.replace("{BASE}", base)
    )
}

#[cfg(feature = "system-tests")]
async fn compare(wechat_configs: &'static str, expect: usize) -> Vec<Exchange> {
    let alerts = fresh(firing("DiskFull", &["db1", "db2"]));
    let (ours, theirs) = differential(
        |base| config(base, wechat_configs, "1s"),
        wechat(|_| ok()),
        &alerts,
        2,
        expect,
    )
    .await;
    assert_eq!(ours.len(), theirs.len(), "request count");
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.line(), t.line());
        assert_eq!(o.header("content-type"), t.header("content-type"));
        assert_eq!(
            String::from_utf8_lossy(&o.raw),
            String::from_utf8_lossy(&t.raw),
            "{} body",
            o.line()
        );
    }
    ours
}

/// The default message (text), fired and resolved: one token for both.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn defaults_match_alertmanager() {
    let got = compare("      - send_resolved: true\n", 3).await;
    assert_eq!(
        got[0].line(),
        "GET /cgi-bin/gettoken?corpid=ww0123&corpsecret=corp+secret%2F%26%3F"
    );
    assert_eq!(
        got[1].line(),
        "POST /cgi-bin/message/send?access_token=tok-1"
    );
    assert_eq!(
        got[2].line(),
        "POST /cgi-bin/message/send?access_token=tok-1"
    );
    assert_eq!(got[1].body["msgtype"], "text");
    assert!(got[2].body["text"]["content"]
        .as_str()
        .unwrap()
        .contains("RESOLVED"));
}

/// Markdown, every addressing template, a local API URL with its own
/// query parameter and secret.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn markdown_and_templated_addressing_match_alertmanager() {
    let got = compare(
        r#"      - send_resolved: true
        api_url: '{BASE}local?debug=1'
        api_secret: local
        corp_id: '{{ .GroupLabels.team }}-corp'
        message_type: markdown
        message: '**{{ .Status }}** {{ range .Alerts }}{{ .Annotations.description }} {{ end }}'
        to_user: '{{ .CommonLabels.team }}-oncall'
        to_party: '2|3'
        to_tag: '{{ .GroupLabels.alertname }}'
        agent_id: '1000002'
"#,
        3,
    )
    .await;
    assert_eq!(
        got[0].line(),
        "GET /local/gettoken?corpid=db-corp&corpsecret=local"
    );
    assert_eq!(
        got[1].line(),
        "POST /local/message/send?access_token=tok-1&debug=1"
    );
    assert_eq!(got[1].body["touser"], "db-oncall");
    assert_eq!(got[1].body["text"], json!({"content": ""}));
}

/// Alertmanager, too, fetches a new token after errcode 42001 and sends
/// the message again with it.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_refetched_as_alertmanager_does() {
    let expired = |n: usize| {
        if n == 1 {
            Reply::json(
                200,
                json!({"errcode": 42001, "errmsg": "access_token expired"}),
            )
        } else {
            ok()
        }
    };
    let (ours, theirs) = differential(
        |base| config(base, "      - {}\n", "1h"),
        wechat(expired),
        &fresh(firing("A", &["i1"])),
        4,
        4,
    )
    .await;
    let lines = |x: &[Exchange]| x.iter().map(|e| e.line()).collect::<Vec<_>>();
    assert_eq!(lines(&ours), lines(&theirs));
    assert_eq!(
        ours[3].line(),
        "POST /cgi-bin/message/send?access_token=tok-2"
    );
}

/// An expired token (errcode 42001) is dropped and the retry fetches a
/// new one.
#[tokio::test(flavor = "multi_thread")]
async fn an_expired_token_is_fetched_again() {
    let svc = FakeService::with(wechat(|n| {
        if n == 1 {
            Reply::json(
                200,
                json!({"errcode": 42001, "errmsg": "access_token expired"}),
            )
        } else {
            ok()
        }
    }))
    .await;
    let h = start_herald(&config(&svc.url(""), "      - {}\n", "1h"), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let got = svc.wait(4, T).await;
    let lines: Vec<String> = got.iter().map(|e| e.line()).collect();
    assert_eq!(
        lines,
        [
            "GET /cgi-bin/gettoken?corpid=ww0123&corpsecret=corp+secret%2F%26%3F",
            "POST /cgi-bin/message/send?access_token=tok-1",
            "GET /cgi-bin/gettoken?corpid=ww0123&corpsecret=corp+secret%2F%26%3F",
            "POST /cgi-bin/message/send?access_token=tok-2",
        ]
    );
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_total{integration="wechat"}"#,
        2.0,
    )
    .await;
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notification_requests_failed_total{integration="wechat"}"#
        )
        .await,
        1.0
    );
}

/// A token endpoint that is down (503) is tried again after its
/// Retry-After, instead of failing for good as in Alertmanager.
#[tokio::test(flavor = "multi_thread")]
async fn an_unavailable_token_endpoint_is_retried() {
    let inner = wechat(|_| ok());
    let svc = FakeService::with(Arc::new(move |ex: &Exchange, seen: &[Exchange]| {
        if seen.is_empty() {
            Reply::text(503, "<html>maintenance</html>").with_header("retry-after", "1")
        } else {
            inner(ex, &seen[1..])
        }
    }))
    .await;
    let h = start_herald(&config(&svc.url(""), "      - {}\n", "1h"), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let got = svc.wait(3, T).await;
    assert!(got[0].path.ends_with("/gettoken") && got[1].path.ends_with("/gettoken"));
    assert_eq!(
        got[2].line(),
        "POST /cgi-bin/message/send?access_token=tok-1"
    );
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_total{integration="wechat"}"#,
        2.0,
    )
    .await;
}

/// Any other errcode is permanent: one attempt, failure reason `other`.
#[tokio::test(flavor = "multi_thread")]
async fn other_errcodes_are_permanent() {
    let svc = FakeService::with(wechat(|_| {
        Reply::json(
            200,
            json!({"errcode": 60020, "errmsg": "not allow to access from your ip"}),
        )
    }))
    .await;
    let h = start_herald(&config(&svc.url(""), "      - {}\n", "1h"), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="wechat",reason="other"}"#,
        1.0,
    )
    .await;
    let sends = svc
        .requests()
        .iter()
        .filter(|e| e.path.ends_with("/message/send"))
        .count();
    assert_eq!(sends, 1, "a permanent error must not be retried");
}

/// 5xx is retried with backoff; 429 no sooner than its Retry-After.
#[tokio::test(flavor = "multi_thread")]
async fn server_errors_and_rate_limits_are_retried() {
    let at = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = at.clone();
    let svc = FakeService::with(wechat(move |n| {
        seen.lock().unwrap().push(Instant::now());
        match n {
            1 => Reply::text(502, "bad gateway"),
            2 => Reply::text(429, "slow down").with_header("retry-after", "2"),
            _ => ok(),
        }
    }))
    .await;
    let h = start_herald(&config(&svc.url(""), "      - {}\n", "1h"), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    // One token, three messages.
    let got = svc.wait(4, T).await;
    assert_eq!(
        got.iter().filter(|e| e.path.ends_with("/gettoken")).count(),
        1
    );
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_total{integration="wechat"}"#,
        3.0,
    )
    .await;
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notification_requests_failed_total{integration="wechat"}"#
        )
        .await,
        2.0
    );
    let at = at.lock().unwrap().clone();
    let gap = at[2] - at[1];
    // Backoff alone would retry within a second.
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
}
