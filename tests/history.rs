//! The notification history (`GET /api/herald/v1/notifications`) against
//! the real binary: what a delivery, a retried one, a failed one, a
//! silenced group and repeated deduplicated flushes leave in it, its
//! filters and pages, a restart, the size bound and bad parameters.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

/// Groups by alertname, flushing at once and then every second (so
/// deduplicated flushes come quickly); `team` picks the receiver.
fn config(ok: &Webhook, flaky: &Webhook, broken: &Webhook, group_interval: &str) -> String {
    format!(
        r#"route:
  receiver: ok
  group_by: [alertname]
  group_wait: 0s
  group_interval: {group_interval}
  repeat_interval: 1h
  routes:
    - matchers: ['team="flaky"']
      receiver: flaky
    - matchers: ['team="broken"']
      receiver: broken
receivers:
  - name: ok
    webhook_configs: [{{url: '{}'}}]
  - name: flaky
    webhook_configs: [{{url: '{}'}}]
  - name: broken
    webhook_configs: [{{url: '{}'}}]
"#,
        ok.url("/ok"),
        flaky.url("/flaky"),
        broken.url("/broken")
    )
}

async fn hooks() -> (Webhook, Webhook, Webhook) {
    (
        Webhook::start().await,
        Webhook::start().await,
        Webhook::start().await,
    )
}

fn alert(name: &str, team: &str) -> Value {
    json!({"labels": {"alertname": name, "team": team, "instance": format!("{name}-host")}})
}

async fn post(base: &str, alerts: Value) {
    let (code, body) = post_alerts(base, &alerts).await;
    assert_eq!(code, 200, "{body}");
}

/// The answer to `GET /api/herald/v1/notifications?query`, with its status.
async fn history_raw(base: &str, query: &str) -> (u16, Value) {
    let r = reqwest::get(format!("{base}/api/herald/v1/notifications?{query}"))
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap())
}

async fn history(base: &str, query: &str) -> Vec<Value> {
    let (code, v) = history_raw(base, query).await;
    assert_eq!(code, 200, "{v}");
    v["notifications"].as_array().unwrap().clone()
}

/// Waits until the records that `query` selects satisfy `ok`.
async fn wait_history(
    base: &str,
    query: &str,
    what: &str,
    ok: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    wait_until(what, WAIT, || async {
        let records = history(base, query).await;
        ok(&records).then_some(records)
    })
    .await
}

#[tokio::test]
async fn a_sent_notification_is_recorded_with_its_alerts_and_reason() {
    let (ok, flaky, broken) = hooks().await;
    let h = start_herald(&config(&ok, &flaky, &broken, "1h"), &[]).await;
    post(&h.base, json!([alert("Sent", "a")])).await;
    let got = ok.nth(1, WAIT).await;
    let records = wait_history(&h.base, "outcome=success", "the success record", |r| {
        !r.is_empty()
    })
    .await;
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(r["receiver"], "ok");
    assert_eq!(r["integration"], "webhook");
    assert_eq!(r["index"], 0);
    assert_eq!(r["reason"], "first notification");
    assert_eq!(r["attempts"], 1);
    assert_eq!(r["count"], 1);
    assert_eq!(r["error"], Value::Null);
    assert_eq!(r["node"], "", "no cluster");
    assert_eq!(r["groupLabels"], json!({"alertname": "Sent"}));
    assert_eq!(r["groupKey"], got.body["groupKey"]);
    let alerts = r["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["status"], "firing");
    assert_eq!(alerts[0]["labels"]["instance"], "Sent-host");
    assert_eq!(
        alerts[0]["fingerprint"],
        got.body["alerts"][0]["fingerprint"]
    );
    assert!(r["id"].as_i64().unwrap() > 0);
    assert_eq!(r["time"], r["lastAt"]);
    assert_eq!(r["firstAt"], r["lastAt"]);
    let t: jiff::Timestamp = r["time"].as_str().unwrap().parse().unwrap();
    assert!(
        jiff::Timestamp::now().duration_since(t).as_secs().abs() < 60,
        "recorded now: {t}"
    );
    assert!(r["time"].as_str().unwrap().ends_with('Z'), "in UTC");
}

#[tokio::test]
async fn retried_and_failed_notifications_are_recorded() {
    let (ok, flaky, broken) = hooks().await;
    flaky.fail(2, 500);
    broken.fail(1000, 400);
    let h = start_herald(&config(&ok, &flaky, &broken, "1h"), &[]).await;
    post(
        &h.base,
        json!([alert("Flaky", "flaky"), alert("Broken", "broken")]),
    )
    .await;
    flaky.nth(1, WAIT).await;
    let retried = wait_history(&h.base, "receiver=flaky", "the flaky record", |r| {
        !r.is_empty()
    })
    .await;
    assert_eq!(retried[0]["outcome"], "success");
    assert_eq!(retried[0]["attempts"], 3, "{retried:?}");
    let failed = wait_history(&h.base, "receiver=broken", "the broken record", |r| {
        !r.is_empty()
    })
    .await;
    let f = &failed[0];
    assert_eq!(f["outcome"], "failure");
    assert_eq!(f["failureReason"], "clientError");
    assert_eq!(f["attempts"], 1, "a 400 is not retried");
    let err = f["error"].as_str().unwrap();
    assert!(err.contains("400"), "{err}");
    assert_eq!(f["alerts"][0]["labels"]["alertname"], "Broken");
    assert_eq!(
        history(&h.base, "outcome=failure&receiver=flaky")
            .await
            .len(),
        0,
        "the flaky receiver's attempts that failed are one success"
    );
}

/// A silenced group leaves a receiver-level `silenced` record, and its
/// next flushes coalesce into it; so do deduplicated flushes of a group
/// that was sent.
#[tokio::test]
async fn muted_and_deduplicated_flushes_are_recorded_and_coalesced() {
    let (ok, flaky, broken) = hooks().await;
    let h = start_herald(&config(&ok, &flaky, &broken, "1s"), &[]).await;
    create_silence(&h.base, "alertname", "Quiet", "test", "quiet").await;
    post(&h.base, json!([alert("Quiet", "a"), alert("Loud", "a")])).await;
    ok.nth(1, WAIT).await;
    let muted = wait_history(
        &h.base,
        "outcome=muted",
        "the silenced record, coalesced",
        |r| r.first().is_some_and(|m| m["count"].as_u64() >= Some(3)),
    )
    .await;
    assert_eq!(muted.len(), 1, "one row: {muted:?}");
    let m = &muted[0];
    assert_eq!(m["outcome"], "silenced");
    assert_eq!(m["integration"], "");
    assert_eq!(m["index"], Value::Null);
    assert_eq!(m["groupLabels"], json!({"alertname": "Quiet"}));
    assert_eq!(m["alerts"][0]["labels"]["alertname"], "Quiet");
    assert!(m["firstAt"].as_str() < m["lastAt"].as_str(), "{m}");
    let dedup = wait_history(
        &h.base,
        "outcome=deduplicated",
        "the deduplicated record, coalesced",
        |r| r.first().is_some_and(|d| d["count"].as_u64() >= Some(3)),
    )
    .await;
    assert_eq!(dedup.len(), 1, "one row: {dedup:?}");
    assert_eq!(dedup[0]["groupLabels"], json!({"alertname": "Loud"}));
    assert_eq!(dedup[0]["integration"], "webhook");
    assert_eq!(ok.count(), 1, "deduplicated: sent once");
    let all = history(&h.base, "").await;
    assert_eq!(all.len(), 3, "success, silenced, deduplicated: {all:?}");
    // A new alert in the group is news: a send, then a new dedup row
    // (another alert set).
    post(&h.base, json!([alert("Loud", "b")])).await;
    ok.nth(2, WAIT).await;
    wait_history(
        &h.base,
        "outcome=deduplicated",
        "a second deduplicated row",
        |r| r.len() == 2,
    )
    .await;
}

#[tokio::test]
async fn filters_select_and_pages_cover_everything_once() {
    let (ok, flaky, broken) = hooks().await;
    broken.fail(1000, 400);
    let h = start_herald(&config(&ok, &flaky, &broken, "1h"), &[]).await;
    let before = jiff::Timestamp::now();
    let mut alerts = Vec::new();
    for i in 0..7 {
        alerts.push(alert(&format!("Ok{i}"), "a"));
    }
    alerts.push(alert("Flaky", "flaky"));
    alerts.push(alert("Broken", "broken"));
    post(&h.base, Value::Array(alerts)).await;
    let all = wait_history(&h.base, "", "nine records", |r| r.len() == 9).await;
    let after = jiff::Timestamp::now();
    let names = |rs: &[Value]| -> Vec<String> {
        let mut n: Vec<String> = rs
            .iter()
            .map(|r| r["groupLabels"]["alertname"].as_str().unwrap().to_string())
            .collect();
        n.sort();
        n
    };
    assert_eq!(names(&history(&h.base, "receiver=flaky").await), ["Flaky"]);
    assert_eq!(
        names(&history(&h.base, "receiver=fl.*%7Cbroken").await),
        ["Broken", "Flaky"],
        "an anchored regex"
    );
    assert!(history(&h.base, "receiver=fla").await.is_empty());
    assert_eq!(
        names(&history(&h.base, "filter=instance%3D%22Ok3-host%22").await),
        ["Ok3"]
    );
    assert_eq!(
        names(
            &history(
                &h.base,
                "filter=team%3D%22a%22&filter=alertname%3D~%22Ok%5B12%5D%22"
            )
            .await
        ),
        ["Ok1", "Ok2"]
    );
    assert_eq!(
        names(&history(&h.base, "group=alertname%3D%22Ok5%22").await),
        ["Ok5"]
    );
    assert_eq!(
        names(&history(&h.base, "outcome=failure").await),
        ["Broken"]
    );
    assert_eq!(history(&h.base, "outcome=success").await.len(), 8);
    assert_eq!(
        history(&h.base, "outcome=success&outcome=failure")
            .await
            .len(),
        9
    );
    assert_eq!(history(&h.base, "integration=webhook").await.len(), 9);
    assert!(history(&h.base, "integration=slack").await.is_empty());
    let q = |t: jiff::Timestamp| {
        url::form_urlencoded::byte_serialize(t.to_string().as_bytes()).collect::<String>()
    };
    assert_eq!(
        history(&h.base, &format!("since={}&until={}", q(before), q(after)))
            .await
            .len(),
        9
    );
    assert!(history(&h.base, &format!("since={}", q(after)))
        .await
        .is_empty());
    assert!(history(&h.base, &format!("until={}", q(before)))
        .await
        .is_empty());

    // Pages of two, newest first, cover the nine once each.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &next {
            None => "limit=2".to_string(),
            Some(n) => format!("limit=2&before={n}"),
        };
        let (code, page) = history_raw(&h.base, &query).await;
        assert_eq!(code, 200, "{page}");
        pages += 1;
        let records = page["notifications"].as_array().unwrap();
        assert!(records.len() <= 2);
        seen.extend(records.iter().map(|r| r["id"].as_i64().unwrap()));
        match page["next"].as_str() {
            Some(n) => next = Some(n.to_string()),
            None => break,
        }
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 5);
    let all_ids: Vec<i64> = all.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, all_ids, "the pages, in order, are the whole list");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 9);
    // A filtered page ends where the matches do.
    let (_, page) = history_raw(&h.base, "limit=8&outcome=success").await;
    assert_eq!(page["notifications"].as_array().unwrap().len(), 8);
    assert_eq!(page["next"], Value::Null);
}

#[tokio::test]
async fn history_survives_a_restart_and_a_reload() {
    let (ok, flaky, broken) = hooks().await;
    let root = tempfile::tempdir().unwrap();
    let cfg = config(&ok, &flaky, &broken, "1h");
    let id = {
        let h = start_herald_at(root.path(), &cfg, &[]).await;
        post(&h.base, json!([alert("Kept", "a")])).await;
        let r = wait_history(&h.base, "", "the record", |r| r.len() == 1).await;
        // A reload keeps it (it is in the database, not the pipeline).
        let code = reqwest::Client::new()
            .post(format!("{}/-/reload", h.base))
            .send()
            .await
            .unwrap()
            .status();
        assert!(code.is_success());
        // (The reloaded dispatcher flushes the group again: a
        // deduplicated record may follow.)
        assert_eq!(history(&h.base, "outcome=success").await, r);
        r[0]["id"].as_i64().unwrap()
        // Killed here (SIGKILL): what the API read was committed.
    };
    let h = start_herald_at(root.path(), &cfg, &[]).await;
    let records = history(&h.base, "outcome=success").await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["id"], id);
    assert_eq!(records[0]["groupLabels"]["alertname"], "Kept");
}

#[tokio::test]
async fn the_size_bound_holds_and_zero_records_nothing() {
    let (ok, flaky, broken) = hooks().await;
    let cfg = config(&ok, &flaky, &broken, "1h");
    let h = start_herald(&cfg, &["--notification-history.max-records=3"]).await;
    for i in 0..6 {
        let name = format!("Bound{i}");
        post(&h.base, json!([alert(&name, "a")])).await;
        // Each record is in before the next group is posted: the newest
        // is the last one sent.
        wait_history(&h.base, "", &format!("{name} recorded"), |r| {
            r.first()
                .is_some_and(|f| f["groupLabels"]["alertname"] == name.as_str())
        })
        .await;
        assert!(history(&h.base, "").await.len() <= 3);
    }
    let names: Vec<String> = history(&h.base, "")
        .await
        .iter()
        .map(|r| r["groupLabels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["Bound5", "Bound4", "Bound3"],
        "the oldest went first"
    );
    drop(h);

    let (ok, flaky, broken) = hooks().await;
    let h = start_herald(
        &config(&ok, &flaky, &broken, "1h"),
        &["--notification-history.max-records=0"],
    )
    .await;
    post(&h.base, json!([alert("Unrecorded", "a")])).await;
    ok.nth(1, WAIT).await;
    // Recording happens right after the send; a send recorded after this
    // one (the success of a second group) shows nothing is pending.
    post(&h.base, json!([alert("Second", "a")])).await;
    ok.nth(2, WAIT).await;
    let (code, v) = history_raw(&h.base, "").await;
    assert_eq!(code, 200);
    assert_eq!(v, json!({"notifications": [], "next": null}));
}

#[tokio::test]
async fn bad_parameters_are_refused_with_400() {
    let (ok, flaky, broken) = hooks().await;
    let h = start_herald(&config(&ok, &flaky, &broken, "1h"), &[]).await;
    for (query, says) in [
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=ten", "limit"),
        ("since=yesterday", "since"),
        ("until=2026-13-01T00:00:00Z", "until"),
        ("outcome=sent", "outcome"),
        ("filter=%7Balertname%3D%22A%22%7D", "filter"),
        ("group=alertname%3D%22A", "group"),
        ("receiver=(", "receiver"),
        ("before=abc", "before"),
        ("reciever=ok", "unknown parameter"),
    ] {
        let (code, v) = history_raw(&h.base, query).await;
        assert_eq!(code, 400, "{query}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(says), "{query}: {msg}");
    }
    let (code, _) = history_raw(&h.base, "limit=1000").await;
    assert_eq!(code, 200);
}

/// An inhibited group and a time-muted one are recorded as such, at the
/// receiver, with the mute interval named; neither is sent.
#[tokio::test]
async fn inhibited_and_time_muted_flushes_are_recorded() {
    let hook = Webhook::start().await;
    let config = format!(
        r#"route:
  receiver: r
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="Night"']
      mute_time_intervals: [always]
receivers:
  - name: r
    webhook_configs: [{{url: '{}'}}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
    equal: [cluster]
time_intervals:
  - name: always
    time_intervals:
      - times: [{{start_time: '00:00', end_time: '24:00'}}]
"#,
        hook.url("/r")
    );
    let h = start_herald(&config, &[]).await;
    post(
        &h.base,
        json!([{"labels": {"alertname": "Source", "severity": "critical", "cluster": "c"}}]),
    )
    .await;
    hook.nth(1, WAIT).await;
    post(
        &h.base,
        json!([{"labels": {"alertname": "Target", "severity": "warning", "cluster": "c"}},
               {"labels": {"alertname": "Night", "instance": "n"}}]),
    )
    .await;
    let inhibited = wait_history(&h.base, "outcome=inhibited", "the inhibited record", |r| {
        !r.is_empty()
    })
    .await;
    assert_eq!(inhibited.len(), 1, "{inhibited:?}");
    assert_eq!(inhibited[0]["groupLabels"], json!({"alertname": "Target"}));
    assert_eq!(inhibited[0]["integration"], "");
    let muted = wait_history(
        &h.base,
        "outcome=time_muted",
        "the time-muted record",
        |r| !r.is_empty(),
    )
    .await;
    assert_eq!(muted.len(), 1, "{muted:?}");
    assert_eq!(muted[0]["groupLabels"], json!({"alertname": "Night"}));
    assert_eq!(muted[0]["mutedBy"], json!(["always"]));
    // `muted` selects the three kinds together.
    let both = history(&h.base, "outcome=muted").await;
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(hook.count(), 1, "only the source was sent");
}
