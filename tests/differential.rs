//! Differential tests: the same config and the same alerts go into Herald
//! and into the reference Alertmanager (0.33.1); webhook payloads and API
//! answers must match, minus the fields that depend on arrival time and the
//! fields newer Alertmanager releases added (listed in docs/compatibility.md).

// Needs Debian's Alertmanager: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

fn config(hook: &Webhook) -> String {
    format!(
        r#"
route:
  receiver: default
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['severity=~"crit.*"']
      receiver: pager
      group_by: [alertname, cluster]
      continue: true
    - match: {{team: db}}
      receiver: db
      group_by: ['...']
    - matchers: ['env!="dev"', 'service=~"api|web"']
      receiver: frontend
      routes:
        - match_re: {{tier: 'gold|silver'}}
          receiver: vip
receivers:
  - name: default
    webhook_configs: [{{url: '{default}'}}]
  - name: pager
    webhook_configs: [{{url: '{pager}', max_alerts: 2}}]
  - name: db
    webhook_configs: [{{url: '{db}'}}]
  - name: frontend
    webhook_configs: [{{url: '{frontend}', send_resolved: false}}]
  - name: vip
    webhook_configs: [{{url: '{vip}'}}]
"#,
        default = hook.url("/default"),
        pager = hook.url("/pager"),
        db = hook.url("/db"),
        frontend = hook.url("/frontend"),
        vip = hook.url("/vip"),
    )
}

/// The test's alerts. They start when the test does: an alert older than
/// group_wait makes Alertmanager flush its group at once, possibly before
/// the rest of the request is in it.
fn alerts(starts: &str, ends_at: &str) -> Value {
    let mk = |labels: Value| json!({"labels": labels, "annotations": {"summary": "<b>disk</b> & \"quotes\"", "runbook": "https://x/y?a=1&b=2"}, "startsAt": starts, "endsAt": ends_at, "generatorURL": "http://prom:9090/graph?g0.expr=up"});
    json!([
        mk(
            json!({"alertname": "DiskFull", "severity": "critical", "cluster": "eu1", "instance": "n1:9100", "job": "node"})
        ),
        mk(
            json!({"alertname": "DiskFull", "severity": "critical", "cluster": "eu1", "instance": "n2:9100", "job": "node"})
        ),
        mk(
            json!({"alertname": "DiskFull", "severity": "critical", "cluster": "eu1", "instance": "n3:9100", "job": "node"})
        ),
        mk(
            json!({"alertname": "DiskFull", "severity": "critical", "cluster": "us\"2\n", "instance": "n4:9100"})
        ),
        mk(json!({"alertname": "Slow", "team": "db", "a0": "x", "a": "y", "uni": "cödé ✓"})),
        mk(json!({"alertname": "Err", "service": "api", "env": "prod", "tier": "gold"})),
        mk(json!({"alertname": "Err", "service": "web", "env": "prod"})),
        mk(json!({"alertname": "Err", "service": "web", "env": "dev", "empty": ""})),
    ])
}

/// Notifications by (receiver path, groupKey), with Herald-only fields gone.
fn by_group(received: &[Received]) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    for r in received {
        let mut body = r.body.clone();
        body.as_object_mut().unwrap().remove("notification_reason");
        // 0.34 adds routeLabels; the reference (0.33.1) predates it.
        body.as_object_mut().unwrap().remove("routeLabels");
        let key = (
            r.path.clone(),
            body["groupKey"].as_str().unwrap().to_string(),
        );
        out.insert(key, body);
    }
    out
}

/// API answers without per-arrival times and fields 0.25 does not have.
fn normalise(mut v: Value) -> Value {
    fn strip(a: &mut Value) {
        let o = a.as_object_mut().unwrap();
        o.remove("updatedAt");
        if let Some(s) = o.get_mut("status").and_then(Value::as_object_mut) {
            s.remove("mutedBy");
        }
    }
    for item in v.as_array_mut().unwrap() {
        if let Some(alerts) = item.get_mut("alerts").and_then(Value::as_array_mut) {
            alerts.iter_mut().for_each(strip);
            // A group's routeLabels are 0.34's; the reference is 0.33.1.
            item.as_object_mut().unwrap().remove("routeLabels");
        } else {
            strip(item);
        }
    }
    v
}

async fn wait_count(hook: &Webhook, n: usize) {
    let h = hook.clone();
    let waited = tokio::time::timeout(
        T,
        wait_for(&format!("{n} notifications"), T, move || {
            (h.count() >= n).then_some(())
        }),
    )
    .await;
    if waited.is_err() || hook.count() < n {
        let got: Vec<(String, Value)> = hook
            .all()
            .into_iter()
            .map(|r| (r.path, r.body["groupKey"].clone()))
            .collect();
        panic!("expected {n} notifications, got {got:#?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_payloads_and_api_match_alertmanager() {
    let herald_hook = Webhook::start().await;
    let am_hook = Webhook::start().await;
    let herald = start_herald(&config(&herald_hook), &[]).await;
    let am = start_alertmanager(&config(&am_hook)).await;

    let started = jiff::Timestamp::now().to_string();
    let firing = alerts(&started, "2099-01-01T00:00:00Z");
    let (hc, hb) = post_alerts(&herald.base, &firing).await;
    let (ac, ab) = post_alerts(&am.base, &firing).await;
    assert_eq!((hc, hb), (ac, ab), "POST answers differ");

    // Expected groups: pager ×2 (eu1, us"2), default (Err in dev), db,
    // frontend (web prod), vip (api gold).
    wait_count(&am_hook, 6).await;
    wait_count(&herald_hook, 6).await;
    let (h, a) = (by_group(&herald_hook.all()), by_group(&am_hook.all()));
    assert_eq!(
        h.keys().collect::<Vec<_>>(),
        a.keys().collect::<Vec<_>>(),
        "different groups notified"
    );
    for (k, av) in &a {
        assert_eq!(&h[k], av, "payload for {k:?} differs");
    }
    // Byte for byte, too: key order, Go's escaping, the trailing newline.
    let raw = |v: &[Received]| -> BTreeMap<String, String> {
        v.iter()
            .map(|r| {
                let text = String::from_utf8(r.raw.clone()).unwrap();
                let text = match (
                    text.find(",\"notification_reason\":\""),
                    text.find(",\"groupLabels\""),
                ) {
                    (Some(a), Some(b)) if a < b => format!("{}{}", &text[..a], &text[b..]),
                    _ => text,
                };
                let text = text.replace(",\"routeLabels\":{}", "");
                (format!("{}{}", r.path, r.body["groupKey"]), text)
            })
            .collect()
    };
    assert_eq!(
        raw(&herald_hook.all()),
        raw(&am_hook.all()),
        "raw payloads differ"
    );

    for path in [
        "/api/v2/alerts",
        "/api/v2/alerts/groups",
        "/api/v2/alerts?filter=alertname%3D%22DiskFull%22&receiver=pager",
    ] {
        let hv = normalise(get_json(&format!("{}{path}", herald.base)).await);
        let av = normalise(get_json(&format!("{}{path}", am.base)).await);
        assert_eq!(hv, av, "GET {path} differs");
    }
    let hr = get_json(&format!("{}/api/v2/receivers", herald.base)).await;
    let ar = get_json(&format!("{}/api/v2/receivers", am.base)).await;
    assert_eq!(hr, ar);

    // Resolve everything: the resolved notifications must match too
    // (frontend has send_resolved: false and sends nothing).
    let resolved = alerts(&started, &jiff::Timestamp::now().to_string());
    post_alerts(&herald.base, &resolved).await;
    post_alerts(&am.base, &resolved).await;
    wait_count(&am_hook, 11).await;
    wait_count(&herald_hook, 11).await;
    let later = |v: &[Received]| by_group(&v[6..]);
    let (h, a) = (later(&herald_hook.all()), later(&am_hook.all()));
    assert_eq!(h, a, "resolved notifications differ");
    assert!(a.values().all(|b| b["status"] == "resolved"));
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_errors_match_alertmanager() {
    let hook = Webhook::start().await;
    let herald = start_herald(&config(&hook), &[]).await;
    let am = start_alertmanager(&config(&hook)).await;
    let cases = [
        json!([{"labels": {"a": "1"}, "startsAt": "2024-01-02T00:00:00Z", "endsAt": "2024-01-01T00:00:00Z"}]),
        json!([{"labels": {"a": ""}}]),
        json!([{"labels": {"a": "1"}}, {"labels": {}}, {"labels": {"b": "2"}, "startsAt": "2024-01-02T00:00:00Z", "endsAt": "2024-01-01T00:00:00Z"}]),
    ];
    for c in cases {
        let h = post_alerts(&herald.base, &c).await;
        let a = post_alerts(&am.base, &c).await;
        assert_eq!(h, a, "answers to {c} differ");
    }
}

/// The same sequence of changes to one group (an alert added, one resolved,
/// all resolved) must give the same sequence of notifications.
#[tokio::test(flavor = "multi_thread")]
async fn notification_sequence_matches_alertmanager() {
    let herald_hook = Webhook::start().await;
    let am_hook = Webhook::start().await;
    let cfg = |hook: &Webhook| {
        format!(
            "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
            hook.url("/seq")
        )
    };
    let herald = start_herald(&cfg(&herald_hook), &[]).await;
    let am = start_alertmanager(&cfg(&am_hook)).await;
    let a = |inst: &str, ends: &str| json!({"labels": {"alertname": "Seq", "instance": inst}, "startsAt": "2024-05-01T10:00:00Z", "endsAt": ends});
    let far = "2099-01-01T00:00:00Z";
    let past = "2024-05-01T11:00:00Z";
    let steps = [
        json!([a("i1", far)]),
        json!([a("i1", far), a("i2", far)]),
        json!([a("i1", past), a("i2", far)]),
        json!([a("i1", past), a("i2", past)]),
    ];
    for (i, step) in steps.iter().enumerate() {
        post_alerts(&herald.base, step).await;
        post_alerts(&am.base, step).await;
        wait_count(&am_hook, i + 1).await;
        wait_count(&herald_hook, i + 1).await;
    }
    let strip = |v: Vec<Received>| {
        v.into_iter()
            .map(|r| {
                let mut b = r.body;
                b.as_object_mut().unwrap().remove("notification_reason");
                b.as_object_mut().unwrap().remove("routeLabels");
                b
            })
            .collect::<Vec<_>>()
    };
    let (h, a) = (strip(herald_hook.all()), strip(am_hook.all()));
    assert_eq!(h.len(), 4);
    assert_eq!(h, a);
    assert_eq!(a[1]["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(a[2]["alerts"][0]["status"], "resolved");
    assert_eq!(a[3]["status"], "resolved");
}

/// Mute and active time intervals hold back the same notifications as in
/// Alertmanager (including a location with DST and negative days).
#[tokio::test(flavor = "multi_thread")]
async fn time_interval_muting_matches_alertmanager() {
    let cfg = |hook: &Webhook| {
        format!(
            r#"
route:
  receiver: open
  group_by: [alertname]
  group_wait: 1s
  routes:
    - matchers: ['alertname=~"M.*"']
      receiver: muted
      mute_time_intervals: [always, weekdays-berlin]
    - matchers: ['alertname=~"A.*"']
      receiver: muted
      active_time_intervals: [long-ago]
    - matchers: ['alertname=~"N.*"']
      receiver: never-muted
      mute_time_intervals: [long-ago]
    - receiver: open
      group_wait: 2s
time_intervals:
  - name: always
    time_intervals: [{{times: [{{start_time: '00:00', end_time: '24:00'}}], days_of_month: ['1:-1']}}]
  - name: weekdays-berlin
    time_intervals: [{{weekdays: ['monday:friday'], location: Europe/Berlin}}]
  - name: long-ago
    time_intervals: [{{years: ['1999:2000']}}]
receivers:
  - name: open
    webhook_configs: [{{url: '{open}'}}]
  - name: muted
    webhook_configs: [{{url: '{muted}'}}]
  - name: never-muted
    webhook_configs: [{{url: '{never}'}}]
"#,
            open = hook.url("/open"),
            muted = hook.url("/muted"),
            never = hook.url("/never")
        )
    };
    let herald_hook = Webhook::start().await;
    let am_hook = Webhook::start().await;
    let herald = start_herald(&cfg(&herald_hook), &[]).await;
    let am = start_alertmanager(&cfg(&am_hook)).await;
    let alerts = json!([
        {"labels": {"alertname": "M1"}}, {"labels": {"alertname": "A1"}},
        {"labels": {"alertname": "N1"}}, {"labels": {"alertname": "O1"}}
    ]);
    post_alerts(&herald.base, &alerts).await;
    post_alerts(&am.base, &alerts).await;
    // The open route waits 2s; by then the 1s groups have flushed.
    let paths = |hook: &Webhook| {
        let mut p: Vec<String> = hook.all().into_iter().map(|r| r.path).collect();
        p.sort();
        p
    };
    for hook in [&herald_hook, &am_hook] {
        let h = hook.clone();
        wait_for("the open route's notification", T, move || {
            h.all().iter().any(|r| r.path == "/open").then_some(())
        })
        .await;
    }
    assert_eq!(paths(&herald_hook), paths(&am_hook));
    assert_eq!(paths(&am_hook), ["/never", "/open"]);
}

/// Inhibition: a critical alert mutes warnings on the same instance while it
/// fires and releases them when it resolves, as in Alertmanager; the API
/// reports `inhibitedBy` and `suppressed` the same way.
#[tokio::test(flavor = "multi_thread")]
async fn inhibition_matches_alertmanager() {
    let cfg = |hook: &Webhook| {
        format!(
            r#"
route:
  receiver: r
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [instance]
  - source_match: {{alertname: NodeDown}}
    target_match_re: {{alertname: '.*'}}
    equal: [instance, cluster]
receivers:
  - name: r
    webhook_configs: [{{url: '{}'}}]
"#,
            hook.url("/inh")
        )
    };
    let herald_hook = Webhook::start().await;
    let am_hook = Webhook::start().await;
    let herald = start_herald(&cfg(&herald_hook), &[]).await;
    let am = start_alertmanager(&cfg(&am_hook)).await;
    // New alerts: an old one makes Alertmanager flush its group at once,
    // sometimes before its inhibitor has seen the source alert.
    let started = jiff::Timestamp::now().to_string();
    let a = |name: &str, sev: &str, inst: &str, ends: &str| json!({"labels": {"alertname": name, "severity": sev, "instance": inst}, "startsAt": started, "endsAt": ends});
    let far = "2099-01-01T00:00:00Z";
    let firing = json!([
        a("Disk", "critical", "a", far),
        a("Slow", "warning", "a", far),
        a("Slow", "warning", "b", far),
        a("Load", "info", "a", far)
    ]);
    post_alerts(&herald.base, &firing).await;
    post_alerts(&am.base, &firing).await;
    // Disk@a, Slow@b and Load@a notify; Slow@a is inhibited.
    wait_count(&am_hook, 3).await;
    wait_count(&herald_hook, 3).await;
    let keys = |hook: &Webhook| {
        let mut k: Vec<String> = hook
            .all()
            .iter()
            .map(|r| r.body["groupKey"].as_str().unwrap().to_string())
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys(&herald_hook), keys(&am_hook));
    for path in [
        "/api/v2/alerts",
        "/api/v2/alerts?inhibited=false",
        "/api/v2/alerts?active=false",
        "/api/v2/alerts/groups",
    ] {
        let hv = normalise(get_json(&format!("{}{path}", herald.base)).await);
        let av = normalise(get_json(&format!("{}{path}", am.base)).await);
        assert_eq!(hv, av, "GET {path} differs");
    }
    let all = get_json(&format!("{}/api/v2/alerts", am.base)).await;
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .any(|x| x["status"]["state"] == "suppressed"),
        "{all}"
    );

    // The source resolves: its resolved notification, then Slow@a.
    let ended = jiff::Timestamp::now().to_string();
    let resolved = json!([a("Disk", "critical", "a", &ended)]);
    post_alerts(&herald.base, &resolved).await;
    post_alerts(&am.base, &resolved).await;
    wait_count(&am_hook, 5).await;
    wait_count(&herald_hook, 5).await;
    let later = |v: &[Received]| by_group(&v[3..]);
    assert_eq!(later(&herald_hook.all()), later(&am_hook.all()));
    assert_eq!(keys(&am_hook).len(), 5);
}

/// Silence API: the same bad inputs get the same answers, and listed
/// silences have the same shape and order.
#[tokio::test(flavor = "multi_thread")]
async fn silence_api_matches_alertmanager() {
    let cfg = "route:\n  receiver: r\n  group_wait: 1h\nreceivers:\n  - name: r\n";
    let herald = start_herald(cfg, &[]).await;
    let am = start_alertmanager(cfg).await;
    let client = reqwest::Client::new();
    let now = jiff::Timestamp::now();
    let at = |h: i64| {
        now.checked_add(jiff::SignedDuration::from_hours(h))
            .unwrap()
            .to_string()
    };
    let m =
        |name: &str, value: &str, re: bool| json!({"name": name, "value": value, "isRegex": re});
    let sil = |matchers: Value, start: String, end: String| json!({"matchers": matchers, "startsAt": start, "endsAt": end, "createdBy": "diff", "comment": "c"});
    let post = |base: String, body: Value| {
        let client = client.clone();
        async move {
            let r = client
                .post(format!("{base}/api/v2/silences"))
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let exact = [
        sil(json!([m("a", "b", false)]), at(2), at(1)),
        sil(json!([m("a", "b", false)]), at(-3), at(-2)),
        sil(json!([m("a", "", false)]), at(0), at(1)),
        sil(json!([m("a", ".*", true)]), at(0), at(1)),
        json!({"matchers": [m("a", "b", false)], "startsAt": at(0), "endsAt": at(1), "createdBy": "x"}),
        {
            let mut s = sil(json!([m("a", "b", false)]), at(0), at(1));
            s["id"] = json!("6f6b7bde-3b0c-4d2e-9a4f-2f0c7c0e2a11");
            s
        },
    ];
    for body in exact {
        let h = post(herald.base.clone(), body.clone()).await;
        let a = post(am.base.clone(), body.clone()).await;
        assert_eq!(h, a, "answers to {body} differ");
    }
    let bad_regex = sil(json!([m("a", "(", true)]), at(0), at(1));
    assert_eq!(
        post(herald.base.clone(), bad_regex.clone()).await.0,
        post(am.base.clone(), bad_regex).await.0
    );

    for body in [
        sil(
            json!([m("alertname", "Disk", false), m("instance", "a|b", true)]),
            at(0),
            at(3),
        ),
        sil(json!([m("team", "ops", false)]), at(0), at(2)),
        sil(json!([m("team", "db", false)]), at(5), at(6)),
    ] {
        assert_eq!(post(herald.base.clone(), body.clone()).await.0, 200);
        assert_eq!(post(am.base.clone(), body).await.0, 200);
    }
    let norm = |v: Value| -> Value {
        Value::Array(
            v.as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    let mut s = s.clone();
                    let o = s.as_object_mut().unwrap();
                    for k in ["id", "updatedAt", "startsAt", "endsAt"] {
                        o.remove(k);
                    }
                    s
                })
                .collect(),
        )
    };
    for path in [
        "/api/v2/silences",
        "/api/v2/silences?filter=team%3D%22ops%22",
    ] {
        let h = norm(get_json(&format!("{}{path}", herald.base)).await);
        let a = norm(get_json(&format!("{}{path}", am.base)).await);
        assert_eq!(h, a, "GET {path} differs");
    }
}

/// A silence mutes the same notifications, and the API reports the same
/// statuses (silence ids aside), as in Alertmanager.
#[tokio::test(flavor = "multi_thread")]
async fn silencing_matches_alertmanager() {
    let cfg = |hook: &Webhook| {
        format!(
            "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
            hook.url("/s")
        )
    };
    let herald_hook = Webhook::start().await;
    let am_hook = Webhook::start().await;
    let herald = start_herald(&cfg(&herald_hook), &[]).await;
    let am = start_alertmanager(&cfg(&am_hook)).await;
    let now = jiff::Timestamp::now();
    let sil = json!({"matchers": [{"name": "alertname", "value": "S.*", "isRegex": true}, {"name": "env", "value": "dev", "isRegex": false, "isEqual": false}],
        "startsAt": now.to_string(), "endsAt": now.checked_add(jiff::SignedDuration::from_hours(1)).unwrap().to_string(), "createdBy": "d", "comment": "c"});
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for base in [&herald.base, &am.base] {
        let r = client
            .post(format!("{base}/api/v2/silences"))
            .json(&sil)
            .send()
            .await
            .unwrap();
        ids.push(
            r.json::<Value>().await.unwrap()["silenceID"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let a = |name: &str, env: &str| json!({"labels": {"alertname": name, "env": env}, "startsAt": "2024-05-01T10:00:00Z", "endsAt": "2099-01-01T00:00:00Z"});
    let alerts = json!([a("Sx", "prod"), a("Sy", "dev"), a("T", "prod")]);
    post_alerts(&herald.base, &alerts).await;
    post_alerts(&am.base, &alerts).await;
    // Sy (env=dev) and T notify; Sx is silenced.
    wait_count(&am_hook, 2).await;
    wait_count(&herald_hook, 2).await;
    assert_eq!(by_group(&herald_hook.all()), by_group(&am_hook.all()));
    let strip_ids = |v: Value, id: &str| {
        Value::from(
            serde_json::to_string(&normalise(v))
                .unwrap()
                .replace(id, "<silence>"),
        )
    };
    for path in [
        "/api/v2/alerts",
        "/api/v2/alerts?silenced=false",
        "/api/v2/alerts/groups",
    ] {
        let hv = strip_ids(get_json(&format!("{}{path}", herald.base)).await, &ids[0]);
        let av = strip_ids(get_json(&format!("{}{path}", am.base)).await, &ids[1]);
        assert_eq!(hv, av, "GET {path} differs");
    }
}
