//! Receiver labels and `receiver_matchers` against the reference
//! (Alertmanager 0.33.1, which has both), and route labels (0.34, which the
//! reference refuses) in Herald's own answers and payloads.

// Needs the reference binaries: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

/// Receivers with labels (team/tier), routes to each of them.
fn config(hook: &Webhook, route_labels: bool) -> String {
    let labels = if route_labels {
        "\n  labels:\n    team: ops\n    summary: '{{ .GroupLabels.alertname }} for {{ routeLabels \"team\" }}'"
    } else {
        ""
    };
    let child_labels = if route_labels {
        "\n      labels:\n        team: db\n        count: '{{ len .Alerts }}'"
    } else {
        ""
    };
    format!(
        r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h{labels}
  routes:
    - match: {{team: db}}
      receiver: db
      continue: true{child_labels}
    - matchers: ['severity="critical"']
      receiver: pager
receivers:
  - name: default
    webhook_configs: [{{url: '{default}'}}]
  - name: db
    labels: {{team: data, tier: gold}}
    webhook_configs: [{{url: '{db}'}}]
  - name: pager
    labels:
      team: sre
      tier: ""
      name: pager
    webhook_configs: [{{url: '{pager}'}}]
inhibit_rules:
  - name: critical-mutes-warning
    source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [alertname]
  - {{}}
"#,
        default = hook.url("/default"),
        db = hook.url("/db"),
        pager = hook.url("/pager"),
    )
}

fn alerts() -> Value {
    let starts = jiff::Timestamp::now().to_string();
    let mk = |labels: Value| json!({"labels": labels, "startsAt": starts, "endsAt": "2099-01-01T00:00:00Z"});
    json!([
        mk(json!({"alertname": "Slow", "team": "db", "severity": "critical"})),
        mk(json!({"alertname": "Slow", "team": "db", "instance": "b"})),
        mk(json!({"alertname": "Down", "severity": "critical"})),
        mk(json!({"alertname": "Other"})),
    ])
}

/// Answers without per-arrival times, and without 0.34's `routeLabels`
/// (which the reference does not have).
fn normalise(mut v: Value) -> Value {
    fn strip(a: &mut Value) {
        let o = a.as_object_mut().unwrap();
        o.remove("updatedAt");
    }
    for item in v.as_array_mut().unwrap() {
        if let Some(alerts) = item.get_mut("alerts").and_then(Value::as_array_mut) {
            alerts.iter_mut().for_each(strip);
            item.as_object_mut().unwrap().remove("routeLabels");
        } else {
            strip(item);
        }
    }
    v
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn wait_count(hook: &Webhook, n: usize) {
    let h = hook.clone();
    wait_for(&format!("{n} notifications"), T, move || {
        (h.count() >= n).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn receiver_labels_and_matchers_match_alertmanager() {
    let herald_hook = Webhook::start().await;
    let am_hook = Webhook::start().await;
    let herald = start_herald(&config(&herald_hook, false), &[]).await;
    let am = start_alertmanager(&config(&am_hook, false)).await;
    let firing = alerts();
    assert_eq!(
        post_alerts(&herald.base, &firing).await,
        post_alerts(&am.base, &firing).await
    );

    for path in [
        "/api/v2/receivers",
        "/api/v2/receivers?receiver_matchers=team%3D%22data%22",
        "/api/v2/receivers?receiver_matchers=name%3D~%22d.*%22&receiver_matchers=tier!%3D%22silver%22",
        // A negative matcher with an empty value keeps a present label.
        "/api/v2/receivers?receiver_matchers=tier!%3D%22%22",
        "/api/v2/receivers?receiver_matchers=nope%3D%22x%22",
    ] {
        let h = get(&format!("{}{path}", herald.base)).await;
        let a = get(&format!("{}{path}", am.base)).await;
        assert_eq!(h, a, "GET {path} differs");
    }
    for path in [
        "/api/v2/alerts?receiver_matchers=team%3D%22data%22",
        "/api/v2/alerts?receiver_matchers=tier%3D~%22gold%7C%22",
        "/api/v2/alerts?receiver_matchers=team!%3D%22data%22&receiver=pager",
        "/api/v2/alerts/groups?receiver_matchers=team%3D%22sre%22",
        "/api/v2/alerts/groups?receiver_matchers=name%3D~%22default%7Cdb%22",
        "/api/v2/alerts/groups",
    ] {
        let hv = normalise(get_json(&format!("{}{path}", herald.base)).await);
        let av = normalise(get_json(&format!("{}{path}", am.base)).await);
        assert_eq!(hv, av, "GET {path} differs");
    }
    // A matcher that does not parse is refused the same way on every
    // endpoint (the parser's own words may differ).
    for ep in ["receivers", "alerts", "alerts/groups"] {
        let path = format!("/api/v2/{ep}?receiver_matchers=%3Dbad");
        let (hc, hb) = get(&format!("{}{path}", herald.base)).await;
        let (ac, ab) = get(&format!("{}{path}", am.base)).await;
        assert_eq!((hc, ac), (400, 400), "GET {path}: {hb} / {ab}");
        let prefix = "\"failed to parse receiver_matchers param: ";
        assert!(
            hb.starts_with(prefix) && ab.starts_with(prefix),
            "{hb} / {ab}"
        );
    }

    // Payloads: the same but for 0.34's routeLabels, which Herald always
    // sends (empty here: no route has labels); notification_reason alike.
    wait_count(&am_hook, 4).await;
    wait_count(&herald_hook, 4).await;
    let by_key = |v: Vec<Received>, strip: bool| {
        let mut out: Vec<(String, Value)> = v
            .into_iter()
            .map(|r| {
                let mut b = r.body;
                if strip {
                    assert_eq!(b["routeLabels"], json!({}), "{b}");
                    b.as_object_mut().unwrap().remove("routeLabels");
                }
                (format!("{}{}", r.path, b["groupKey"]), b)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    };
    let (h, a) = (
        by_key(herald_hook.all(), true),
        by_key(am_hook.all(), false),
    );
    assert_eq!(h, a);
    assert!(a
        .iter()
        .all(|(_, b)| b["notification_reason"] == "first notification"));
}

/// Route labels (0.34): rendered per group, inherited and overridden, in
/// the groups API and the webhook payload, and kept out of the status
/// config so that amtool 0.33.1 still reads it.
#[tokio::test(flavor = "multi_thread")]
async fn route_labels_in_groups_payloads_and_amtool() {
    let hook = Webhook::start().await;
    let herald = start_herald(&config(&hook, true), &[]).await;
    post_alerts(&herald.base, &alerts()).await;
    wait_count(&hook, 4).await;
    let payload = |path: &str, alertname: &str| {
        hook.all()
            .into_iter()
            .find(|r| r.path == path && r.body["groupLabels"]["alertname"] == alertname)
            .unwrap_or_else(|| panic!("no notification to {path} for {alertname}"))
    };
    let db = payload("/db", "Slow");
    assert_eq!(
        db.body["routeLabels"],
        json!({"count": "2", "summary": "Slow for db", "team": "db"})
    );
    let raw = String::from_utf8(db.raw.clone()).unwrap();
    let order = [
        "\"commonAnnotations\"",
        "\"routeLabels\"",
        "\"externalURL\"",
    ];
    let at: Vec<usize> = order.iter().map(|k| raw.find(k).unwrap()).collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "{raw}");
    assert_eq!(
        payload("/pager", "Down").body["routeLabels"],
        json!({"summary": "Down for ops", "team": "ops"})
    );

    let groups = get_text(&format!("{}/api/v2/alerts/groups", herald.base)).await;
    let parsed: Value = serde_json::from_str(&groups).unwrap();
    let db_group = parsed
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["receiver"]["name"] == "db")
        .unwrap();
    assert_eq!(
        db_group["routeLabels"],
        json!({"count": "2", "summary": "Slow for db", "team": "db"})
    );
    assert!(
        groups.contains("},\"routeLabels\":{\"count\""),
        "key order alerts, labels, receiver, routeLabels: {groups}"
    );

    let url = format!("--alertmanager.url={}", herald.base);
    let out = std::process::Command::new(am_current_bin("amtool"))
        .args([&url, "config", "routes"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "amtool 0.33.1: {text}");
    assert!(text.contains("receiver: db"), "{text}");
}
