//! Restarts and reloads that never mis-notify (Alertmanager #2492, #3407,
//! #4064): real processes, stopped by SIGKILL and by SIGTERM, restarted on
//! the same storage.

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Stop {
    Kill,
    Term,
}

/// Stops the process and waits until it is gone, so the next start finds
/// the database unlocked.
async fn stop(mut h: Server, how: Stop) {
    match how {
        Stop::Kill => h.child.kill().unwrap(),
        Stop::Term => {
            let st = std::process::Command::new("kill")
                .args(["-TERM", &h.child.id().to_string()])
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + T;
        while h.child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "herald did not exit; log:\n{}",
                h.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await
    .unwrap();
}

fn names(n: &Received) -> Vec<String> {
    let mut v: Vec<String> = n.body["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let l = &a["labels"];
            format!(
                "{}/{}",
                l["alertname"].as_str().unwrap_or(""),
                l["instance"].as_str().unwrap_or("")
            )
        })
        .collect();
    v.sort();
    v
}

async fn reload(base: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap());
}

const WAIT: Duration = Duration::from_secs(8);

/// A restart 3 s into an 8 s `group_wait` still notifies about 8 s after
/// the alert arrived, once. Alertmanager starts the wait over when it
/// loads, notifying 3 s and a restart late.
async fn restart_during_group_wait(how: Stop) {
    let hook = Webhook::start().await;
    let root = tempfile::tempdir().unwrap();
    let config = format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: {}s\n  group_interval: 4s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        WAIT.as_secs(),
        hook.url("/w")
    );
    let h = start_herald_at(root.path(), &config, &[]).await;
    let posted = Instant::now();
    post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "W", "instance": "a"}}]),
    )
    .await;
    tokio::time::sleep_until((posted + Duration::from_secs(3)).into()).await;
    stop(h, how).await;
    let h = start_herald_at(root.path(), &config, &[]).await;
    let ready = Instant::now();
    let first = hook.nth(1, T).await;
    assert_eq!(names(&first), ["W/a"]);
    // `startsAt` has the server's clock to the nanosecond; the margin
    // covers the two clocks' reading order only.
    assert!(
        first.at + Duration::from_millis(100) >= posted + WAIT,
        "{how:?}: notified {:?} after the post, before group_wait",
        first.at - posted
    );
    assert!(
        first.at < ready + WAIT - Duration::from_secs(2),
        "{how:?}: notified {:?} after the restart: group_wait started over",
        first.at - ready
    );
    // The next notification is the group_interval's, with the alert added
    // since: a second flush of the restored schedule would have been
    // another notification of W/a alone in between.
    post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "W", "instance": "b"}}]),
    )
    .await;
    let second = hook.nth(2, T).await;
    assert_eq!(names(&second), ["W/a", "W/b"], "{how:?}");
    assert!(
        second.at >= first.at + Duration::from_millis(3900),
        "{how:?}"
    );
    assert_eq!(hook.count(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_by_sigkill_during_group_wait_keeps_the_schedule() {
    restart_during_group_wait(Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_by_sigterm_during_group_wait_keeps_the_schedule() {
    restart_during_group_wait(Stop::Term).await;
}

/// Alerts an inhibit rule, a silence or a mute interval suppressed before
/// the restart stay suppressed from the first flush after it: the store
/// gives back the inhibiting source, the silence and the target at once,
/// whatever order Prometheus re-sends them in (#4064).
async fn suppressed_stay_suppressed(how: Stop) {
    let hook = Webhook::start().await;
    let root = tempfile::tempdir().unwrap();
    let config = format!(
        r#"route:
  receiver: r
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1h
  repeat_interval: 1h
  routes:
    - matchers: ['alertname="TimeMuted"']
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
        hook.url("/s")
    );
    let h = start_herald_at(root.path(), &config, &[]).await;
    let silence = create_silence(&h.base, "alertname", "Silenced", "t", "restart").await;
    let target = json!({"labels": {"alertname": "Target", "severity": "warning", "cluster": "c1", "instance": "t"}});
    let source = json!({"labels": {"alertname": "Source", "severity": "critical", "cluster": "c1", "instance": "s"}});
    let muted = json!([
        {"labels": {"alertname": "Silenced", "instance": "x"}},
        {"labels": {"alertname": "TimeMuted", "instance": "y"}},
    ]);
    post_alerts(&h.base, &json!([source])).await;
    post_alerts(&h.base, &json!([target])).await;
    post_alerts(&h.base, &muted).await;
    assert_eq!(names(&hook.nth(1, T).await), ["Source/s"]);
    // The last flush of the muted groups before the stop: every group
    // was looked at once the Target's was (they share one `group_wait`),
    // and a control group proves it.
    post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "Before", "instance": "c"}}]),
    )
    .await;
    assert_eq!(names(&hook.nth(2, T).await), ["Before/c"]);
    wait_counter(&h.base, "alertmanager_nflog_entries_written_total", 2.0).await;
    stop(h, how).await;

    let h = start_herald_at(root.path(), &config, &[]).await;
    wait_silence(&h.base, &silence).await;
    // Prometheus re-sends the target first; its source is already held.
    post_alerts(&h.base, &json!([target])).await;
    post_alerts(&h.base, &muted).await;
    // The restored groups flush at once (their alerts are older than
    // group_wait); the control group, made after them, a second later.
    post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "After", "instance": "c"}}]),
    )
    .await;
    let third = hook.nth(3, T).await;
    assert_eq!(
        names(&third),
        ["After/c"],
        "{how:?}: a suppressed or already notified group was notified"
    );
    assert_eq!(hook.count(), 3, "{how:?}");
    let alerts = get_json(&format!("{}/api/v2/alerts", h.base)).await;
    for a in alerts.as_array().unwrap() {
        let name = a["labels"]["alertname"].as_str().unwrap();
        let state = a["status"]["state"].as_str().unwrap();
        let want = if ["Target", "Silenced", "TimeMuted"].contains(&name) {
            "suppressed"
        } else {
            "active"
        };
        assert_eq!(state, want, "{how:?}: {name}: {a}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn after_sigkill_suppressed_alerts_stay_suppressed_from_the_first_flush() {
    suppressed_stay_suppressed(Stop::Kill).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_sigterm_suppressed_alerts_stay_suppressed_from_the_first_flush() {
    suppressed_stay_suppressed(Stop::Term).await;
}

fn reload_config(hook: &Webhook, receiver: &str, extra_route: &str) -> String {
    format!(
        "route:\n  receiver: {receiver}\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 2s\n  repeat_interval: 1h\n  routes:\n{extra_route}    - matchers: ['alertname=\"Control\"']\nreceivers:\n  - name: a\n    webhook_configs: [{{url: '{}', max_alerts: 0}}]\n  - name: b\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/a"),
        hook.url("/b")
    )
}

fn at(hook: &Webhook, path: &str) -> Vec<Received> {
    hook.all().into_iter().filter(|r| r.path == path).collect()
}

/// A reload that leaves a group's route as it was neither notifies the
/// group again nor sends part of it, even with thousands of alerts to
/// route back in (#2492, #3407).
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_with_an_unchanged_route_neither_renotifies_nor_sends_part() {
    let hook = Webhook::start().await;
    let h = start_herald(&reload_config(&hook, "a", ""), &[]).await;
    // Old alerts: after the reload their group is due at once, as it
    // would be in Alertmanager, while the rest are still routed in.
    let old = jiff::Timestamp::now()
        .checked_sub(jiff::SignedDuration::from_hours(1))
        .unwrap()
        .to_string();
    let alerts: Vec<Value> = (0..5000)
        .map(|i| json!({"labels": {"alertname": "Big", "instance": format!("i{i}")}, "startsAt": old}))
        .collect();
    let (code, body) = post_alerts(&h.base, &Value::Array(alerts)).await;
    assert_eq!(code, 200, "{body}");
    let first = hook.nth(1, T).await;
    assert_eq!(first.body["alerts"].as_array().unwrap().len(), 5000);
    wait_counter(&h.base, "alertmanager_nflog_entries_written_total", 1.0).await;

    for round in 0..3 {
        // An unrelated route added: the Big group's route is unchanged.
        let extra = format!("    - matchers: ['alertname=\"Other{round}\"']\n");
        std::fs::write(&h.config_path, reload_config(&hook, "a", &extra)).unwrap();
        reload(&h.base).await;
        post_alerts(
            &h.base,
            &json!([{"labels": {"alertname": "Control", "instance": format!("r{round}")}}]),
        )
        .await;
        // The control group flushes a second after the Big group's
        // restored flush was due; nothing but it may arrive.
        let control = hook.nth(2 + round, T).await;
        assert_eq!(
            names(&control),
            (0..=round)
                .map(|r| format!("Control/r{r}"))
                .collect::<Vec<_>>(),
            "round {round}: the reload notified the unchanged group"
        );
    }
    assert_eq!(at(&hook, "/a").len(), 4);
}

/// A reload that moves a group to another receiver notifies the new
/// receiver once and the old one no more.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_that_changes_the_receiver_notifies_the_new_receiver_once() {
    let hook = Webhook::start().await;
    let h = start_herald(&reload_config(&hook, "a", ""), &[]).await;
    post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "Moved", "instance": "m"}}]),
    )
    .await;
    assert_eq!(hook.nth(1, T).await.path, "/a");
    wait_counter(&h.base, "alertmanager_nflog_entries_written_total", 1.0).await;
    std::fs::write(&h.config_path, reload_config(&hook, "b", "")).unwrap();
    reload(&h.base).await;
    let moved = hook.nth(2, T).await;
    assert_eq!(moved.path, "/b");
    assert_eq!(names(&moved), ["Moved/m"]);
    // Two more group_interval flushes of the moved group: each asks the
    // notification log, and neither may notify.
    let queries = counter(&h.base, "alertmanager_nflog_queries_total").await;
    wait_until("two more flushes", T, || {
        let base = h.base.clone();
        async move {
            (counter(&base, "alertmanager_nflog_queries_total").await >= queries + 2.0)
                .then_some(())
        }
    })
    .await;
    assert_eq!(at(&hook, "/a").len(), 1);
    assert_eq!(at(&hook, "/b").len(), 1);
}
