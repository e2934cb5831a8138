//! The Opsgenie integration against a fake Opsgenie API: what Herald sends
//! (create, the `update_alerts` PUTs, close) compared with Alertmanager
//! 0.33.1 on the same config and alerts, and how answers are classified
//! (5xx and 429 retried, 429 after its `Retry-After`, other 4xx final).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// Opsgenie's answer to every accepted request.
fn accepted() -> Reply {
    Reply::json(
        202,
        json!({"result": "Request will be processed", "took": 0.01, "requestId": "r-1"}),
    )
}

/// `firing()` without `startsAt`, so each server stamps its own arrival
/// time: the reference Alertmanager starts after the alerts are made, and
/// an alert older than `group_wait` is flushed at once, alone.
#[cfg(feature = "system-tests")]
fn arriving(alertname: &str, instances: &[&str]) -> serde_json::Value {
    let mut alerts = firing(alertname, instances);
    for a in alerts.as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("startsAt");
    }
    alerts
}

fn route(receiver_body: &str) -> String {
    format!(
        r#"
route:
  receiver: og
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: og
    opsgenie_configs:
{receiver_body}
"#
    )
}

/// Compares two request logs: request line, content type, credentials and
/// JSON body (times aside).
#[cfg(feature = "system-tests")]
fn assert_same(ours: &[Exchange], theirs: &[Exchange]) {
    let lines = |x: &[Exchange]| x.iter().map(Exchange::line).collect::<Vec<_>>();
    assert_eq!(lines(ours), lines(theirs));
    for (o, t) in ours.iter().zip(theirs) {
        let at = o.line();
        assert_eq!(o.header("content-type"), t.header("content-type"), "{at}");
        assert_eq!(o.header("authorization"), t.header("authorization"), "{at}");
        assert_eq!(normalize(&o.body, &[]), normalize(&t.body, &[]), "{at}");
        assert!(
            o.raw.ends_with(b"\n"),
            "{at}: Go's encoder ends in a newline"
        );
    }
}

/// Every wire-changing key at once: templated message (cut to 130
/// runes), details over the common labels, responders of each kind
/// (`teams` expanded, an empty one dropped, a type sent as written), tags
/// and actions split, `update_alerts`, and the close on resolve. The
/// description and source are the default templates.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn create_update_and_close_match_alertmanager() {
    let cfg = |base: &str| {
        let message = format!(
            "[{{{{ .Status }}}}] {{{{ .CommonLabels.alertname }}}} {}",
            "ä".repeat(140)
        );
        route(&format!(
            r#"      - api_key: og-key-1
        api_url: '{base}og'
        message: '{message}'
        details:
          firing: '{{{{ len .Alerts.Firing }}}}'
          team: 'override {{{{ .CommonLabels.team }}}}'
          empty: ''
          count: 5
        responders:
          - name: '{{{{ .CommonLabels.team }}}}-oncall'
            type: schedule
          - id: 4513b7ea-3b91-438f-b7e4-e3e54af9147c
            type: team
          - username: trinity@opsgenie.test
            type: user
          - name: 'ops, {{{{ .CommonLabels.team }}}},'
            type: teams
          - name: '{{{{ .CommonLabels.missing }}}}'
            type: '{{{{ .CommonLabels.missing }}}}'
          - name: esc
            type: Escalation
        tags: ' a,{{{{ .CommonLabels.severity }}}},, b '
        note: 'note <{{{{ .GroupLabels.alertname }}}}>'
        priority: '{{{{ if eq .CommonLabels.severity "critical" }}}}P1{{{{ else }}}}P3{{{{ end }}}}'
        entity: '{{{{ .CommonLabels.team }}}}'
        actions: 'restart,ping'
        update_alerts: true
"#
        ))
    };
    let alerts = arriving("DiskFull", &["db1", "db2"]);
    let (ours, theirs) = differential(cfg, Arc::new(|_, _| accepted()), &alerts, 3, 4).await;
    assert_same(&ours, &theirs);
    // What the comparison rests on, so that a change on both sides shows.
    let create = &ours[0];
    assert_eq!(create.method, "POST");
    assert_eq!(create.path, "/og/v2/alerts");
    assert_eq!(create.header("authorization"), Some("GenieKey og-key-1"));
    let b = &create.body;
    assert_eq!(b["message"].as_str().unwrap().chars().count(), 130);
    assert_eq!(b["details"]["team"], "override db");
    assert_eq!(b["details"]["count"], "5", "a YAML number is a string");
    assert_eq!(b["details"]["instance"], json!(null), "only common labels");
    assert_eq!(b["tags"], json!(["a", "critical", " b"]));
    assert_eq!(b["responders"][3], json!({"name": "ops", "type": "team"}));
    assert_eq!(
        b["responders"][5],
        json!({"name": "esc", "type": "Escalation"})
    );
    assert_eq!(b["priority"], "P1");
    let alias = b["alias"].as_str().unwrap();
    assert_eq!(alias.len(), 64);
    assert_eq!(
        ours[1].line(),
        format!("PUT /og/v2/alerts/{alias}/message?identifierType=alias")
    );
    assert_eq!(ours[1].body, json!({"message": b["message"]}));
    assert_eq!(
        ours[2].line(),
        format!("PUT /og/v2/alerts/{alias}/description?identifierType=alias")
    );
    assert_eq!(
        ours[3].line(),
        format!("POST /og/v2/alerts/{alias}/close?identifierType=alias")
    );
    assert_eq!(ours[3].body, json!({"source": b["source"]}));
}

/// The `global:` defaults: the API URL (a `/` added to its path) and the
/// key from a file, for a config that sets neither.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn global_url_and_key_file_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("og-key");
    std::fs::write(&key, "key-from-file\n").unwrap();
    let key = key.display().to_string();
    let cfg = move |base: &str| {
        format!(
            "global:\n  opsgenie_api_url: '{base}api'\n  opsgenie_api_key_file: {key}\n{}",
            route("      - {}\n")
        )
    };
    let alerts = arriving("Load", &["web1"]);
    let (ours, theirs) = differential(cfg, Arc::new(|_, _| accepted()), &alerts, 1, 2).await;
    assert_same(&ours, &theirs);
    assert_eq!(ours[0].path, "/api/v2/alerts");
    assert_eq!(
        ours[0].header("authorization"),
        Some("GenieKey key-from-file")
    );
    assert!(ours[1].path.ends_with("/close"));
}

/// Herald alone against a fake Opsgenie answering `first` to the first
/// request and 202 after; one flush per group (`group_interval: 1h`), so
/// every request after the first is a retry.
async fn answered(first: Reply, extra: &str) -> (Server, FakeService) {
    let og = FakeService::with(Arc::new(move |_, seen| {
        if seen.is_empty() {
            first.clone()
        } else {
            accepted()
        }
    }))
    .await;
    let body = format!(
        "      - api_key: k\n        api_url: {}\n{extra}",
        og.url("/")
    );
    let cfg = route(&body).replace("group_interval: 1s", "group_interval: 1h");
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    (h, og)
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried() {
    let (h, og) = answered(Reply::status(503), "").await;
    let seen = og.wait(2, T).await;
    assert_eq!(seen[0].line(), seen[1].line());
    assert_eq!(seen[0].line(), "POST /v2/alerts");
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_failed_total{integration="opsgenie"}"#,
        1.0,
    )
    .await;
}

/// A refused request (422: Opsgenie's answer to a bad field) is final:
/// the flush fails after one attempt, counted as a client error, and
/// the `update_alerts` calls after the failed create are not made.
#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_not_retried() {
    let (h, og) = answered(
        Reply::json(422, json!({"message": "Request body is not processable"})),
        "        update_alerts: true\n",
    )
    .await;
    // Counted when the flush gives up, which a retried error would only
    // do after a second attempt.
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="opsgenie",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(og.count(), 1, "{:?}", og.requests());
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.contains("unexpected status code 422: {") && log.contains("not processable"),
        "Go puts the answer's body in the error: {log}"
    );
}

/// 429 is retried, and no sooner than Opsgenie's `Retry-After`.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_retried_after_retry_after() {
    let (_h, og) = answered(Reply::status(429).with_header("retry-after", "2"), "").await;
    let first = og.wait(1, T).await;
    let t0 = Instant::now();
    let seen = og.wait(2, T).await;
    let gap = t0.elapsed();
    assert_eq!(first[0].line(), seen[1].line());
    // Backoff alone would retry within a second.
    assert!(gap >= Duration::from_millis(1800), "retried after {gap:?}");
}

/// The API key is a secret in the status page; the URL is not.
#[tokio::test(flavor = "multi_thread")]
async fn the_api_key_is_hidden_in_the_status() {
    let h = start_herald(
        &route("      - api_key: very-secret-key\n        api_url: http://og.test/\n"),
        &[],
    )
    .await;
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(original.contains("api_key: <secret>"), "{original}");
    assert!(!original.contains("very-secret-key"), "{original}");
    assert!(original.contains("http://og.test/"), "{original}");
}
