//! The VictorOps integration against a fake REST endpoint: events compared
//! with Alertmanager 0.33.1 on the same config and alerts (firing, then
//! resolved), retries of 5xx and not of 4xx, and the API key kept out of
//! the status page.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

fn config(group_interval: &str, victorops_configs: &str) -> String {
    format!(
        r#"
global:
  victorops_api_key: global-key
route:
  receiver: vo
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: {group_interval}
  repeat_interval: 1h
receivers:
  - name: vo
    victorops_configs:
{victorops_configs}"#
    )
}

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn firing_then_resolved_match_alertmanager() {
    // The URL has no trailing `/` (Go adds one) and a second config takes
    // the global key.
    let cfg = |base: &str| {
        config(
            "1s",
            &format!(
                r#"      - api_key: local-key
        api_url: '{base}integrations/generic/alert'
        routing_key: 'team-{{{{ .GroupLabels.team }}}}'
        message_type: '{{{{ if eq .CommonLabels.severity "critical" }}}}WARNING{{{{ end }}}}'
        entity_display_name: '{{{{ .CommonLabels.alertname }}}} on {{{{ .GroupLabels.team }}}}'
        monitoring_tool: Herald
        custom_fields:
          runbook: 'https://runbooks.example/{{{{ .GroupLabels.alertname }}}}'
          team: '{{{{ .GroupLabels.team }}}}'
      - api_url: '{base}second/'
        routing_key: ops
"#
            ),
        )
    };
    // One alert: with two, 0.33.1 now and then flushes the group before
    // the second is in it.
    let alerts = firing("DiskFull", &["db1"]);
    let ok =
        Arc::new(|_: &Exchange, _: &[Exchange]| Reply::json(200, json!({"result": "success"})));
    let (mut ours, mut theirs) = differential(cfg, ok, &alerts, 2, 4).await;
    // The two configs post concurrently: compare in a fixed order.
    let order = |v: &mut Vec<Exchange>| {
        v.sort_by_key(|e| (e.body["message_type"] == "RECOVERY", e.path.clone()))
    };
    order(&mut ours);
    order(&mut theirs);
    assert_eq!(ours.len(), theirs.len(), "request count");
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.line(), t.line());
        assert_eq!(o.header("content-type"), t.header("content-type"));
        assert_eq!(normalize(&o.body, &[]), normalize(&t.body, &[]));
        // Byte for byte: sorted keys, Go's escaping of `<>&`.
        assert_eq!(
            String::from_utf8_lossy(&o.raw),
            String::from_utf8_lossy(&t.raw)
        );
    }
    let lines: Vec<String> = ours.iter().map(Exchange::line).collect();
    assert_eq!(
        lines,
        [
            "POST /integrations/generic/alert/local-key/team-db",
            "POST /second/global-key/ops",
            "POST /integrations/generic/alert/local-key/team-db",
            "POST /second/global-key/ops",
        ]
    );
    let fired = &ours[0].body;
    assert_eq!(fired["message_type"], "WARNING");
    assert_eq!(fired["team"], "db");
    assert_eq!(fired["entity_display_name"], "DiskFull on db");
    assert_eq!(ours[1].body["message_type"], "CRITICAL");
    assert_eq!(ours[2].body["message_type"], "RECOVERY");
    assert_eq!(fired["entity_id"], ours[2].body["entity_id"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_client_errors_are_not() {
    let vo = FakeService::with(Arc::new(|_, seen: &[Exchange]| match seen.len() {
        0 => Reply::json(503, json!({"result": "failure"})),
        _ => Reply::json(200, json!({"result": "success"})),
    }))
    .await;
    let h = start_herald(
        &config(
            "1h",
            &format!(
                "      - api_url: '{}'\n        routing_key: ops\n",
                vo.url("alert/")
            ),
        ),
        &[],
    )
    .await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let seen = vo.wait(2, T).await;
    assert_eq!(seen[1].line(), "POST /alert/global-key/ops");
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_total{integration="victorops"}"#,
        1.0,
    )
    .await;

    vo.respond(Arc::new(|_, _| {
        Reply::json(
            400,
            json!({"result": "failure", "message": "bad routing key"}),
        )
    }));
    post_alerts(&h.base, &firing("B", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="victorops",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(vo.count(), 3, "a 400 must not be retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_secret_in_the_status() {
    let h = start_herald(
        &config(
            "1h",
            "      - api_key: local-sekrit\n        routing_key: ops\n",
        )
        .replace("global-key", "global-sekrit"),
        &[],
    )
    .await;
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(!original.contains("sekrit"), "{original}");
    assert!(original.contains("<secret>"), "{original}");
}
