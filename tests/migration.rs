//! Pointing Herald at an Alertmanager data directory: the real Alertmanager
//! writes its snapshot files, Herald imports them on first start and keeps
//! the silences (same ids) and the notification log (no repeat).

// Needs Debian's Alertmanager: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn takes_over_an_alertmanager_data_directory() {
    let hook = Webhook::start().await;
    let root = tempfile::tempdir().unwrap();
    let cfg = format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/m")
    );
    let mut am = start_alertmanager_025_at(root.path(), &cfg).await;
    let now = jiff::Timestamp::now();
    let sil = json!({"matchers": [{"name": "alertname", "value": "Quiet", "isRegex": false}], "startsAt": now.to_string(), "endsAt": now.checked_add(jiff::SignedDuration::from_hours(2)).unwrap().to_string(), "createdBy": "am-user", "comment": "from Alertmanager"});
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/silences", am.base))
        .json(&sil)
        .send()
        .await
        .unwrap();
    let silence_id = r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    let a =
        json!({"labels": {"alertname": "G", "instance": "a"}, "startsAt": "2024-05-01T10:00:00Z"});
    post_alerts(&am.base, &json!([a])).await;
    let first = hook.nth(1, T).await;
    assert_eq!(first.body["alerts"].as_array().unwrap().len(), 1);
    // The hook records the request before it answers: Alertmanager logs
    // the notification only once it has the answer, and a stop before
    // that leaves the log without it (Herald would then rightly notify
    // `a` again). Its latency histogram is observed just before the log
    // entry is written.
    wait_counter(
        &am.base,
        r#"alertmanager_notification_latency_seconds_count{integration="webhook"}"#,
        1.0,
    )
    .await;
    // A clean stop writes Alertmanager's snapshots.
    let pid = am.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    am.child.wait().unwrap();
    assert!(root.path().join("data/silences").exists() && root.path().join("data/nflog").exists());

    let h = start_herald_at(root.path(), &cfg, &[]).await;
    let silences = get_json(&format!("{}/api/v2/silences", h.base)).await;
    let s = silences
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == silence_id.as_str())
        .expect("the silence kept its id");
    assert_eq!(s["createdBy"], "am-user");
    assert_eq!(s["status"]["state"], "active");
    // Alertmanager already notified about G{instance=a}: Herald's first
    // notification for the group is the one a new alert causes.
    post_alerts(&h.base, &json!([a])).await;
    post_alerts(&h.base, &json!([{"labels": {"alertname": "G", "instance": "b"}, "startsAt": "2024-05-01T10:00:00Z"}])).await;
    let second = hook.nth(2, T).await;
    assert_eq!(
        second.body["alerts"].as_array().unwrap().len(),
        2,
        "{}",
        second.body
    );
    assert_eq!(second.body["notification_reason"], "new alerts added");
}

/// A data directory of the reference release (0.33.1): silences with
/// annotations and matcher sets, and a notification log keyed by group
/// labels in name order (`a` before `a0`), which Herald's keys must equal
/// or the group would be notified again.
#[tokio::test(flavor = "multi_thread")]
async fn takes_over_a_current_alertmanager_data_directory() {
    let hook = Webhook::start().await;
    let root = tempfile::tempdir().unwrap();
    let cfg = format!(
        "route:\n  receiver: r\n  group_by: [a, a0]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/m")
    );
    let mut am = start_alertmanager_at(root.path(), &cfg).await;
    let now = jiff::Timestamp::now();
    let sil = json!({"matchers": [
            {"name": "alertname", "value": "Quiet", "isRegex": false},
            {"name": "instance", "value": "db.*", "isRegex": true},
            {"name": "env", "value": "dev", "isRegex": false, "isEqual": false}],
        "startsAt": now.to_string(),
        "endsAt": now.checked_add(jiff::SignedDuration::from_hours(2)).unwrap().to_string(),
        "createdBy": "am-user", "comment": "from Alertmanager 0.33",
        "annotations": {"ticket": "T-1", "runbook": "https://example.org/r"}});
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/silences", am.base))
        .json(&sil)
        .send()
        .await
        .unwrap();
    let silence_id = r.json::<Value>().await.unwrap()["silenceID"]
        .as_str()
        .unwrap()
        .to_string();
    let am_view = wait_silence(&am.base, &silence_id).await;
    let a = json!({"labels": {"alertname": "G", "a": "x", "a0": "y", "instance": "1"}, "startsAt": "2024-05-01T10:00:00Z"});
    post_alerts(&am.base, &json!([a])).await;
    let first = hook.nth(1, T).await;
    assert_eq!(first.body["alerts"].as_array().unwrap().len(), 1);
    let pid = am.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    am.child.wait().unwrap();
    assert!(root.path().join("data/silences").exists() && root.path().join("data/nflog").exists());

    let h = start_herald_at(root.path(), &cfg, &[]).await;
    let s = wait_silence(&h.base, &silence_id).await;
    for k in [
        "matchers",
        "annotations",
        "createdBy",
        "comment",
        "startsAt",
        "endsAt",
    ] {
        assert_eq!(s[k], am_view[k], "{k}: {s} vs {am_view}");
    }
    assert_eq!(
        s["annotations"],
        json!({"runbook": "https://example.org/r", "ticket": "T-1"})
    );
    // Alertmanager notified the group {a="x", a0="y"}: the next
    // notification is the one a new alert in it causes.
    post_alerts(&h.base, &json!([a])).await;
    post_alerts(&h.base, &json!([{"labels": {"alertname": "G", "a": "x", "a0": "y", "instance": "2"}, "startsAt": "2024-05-01T10:00:00Z"}])).await;
    let second = hook.nth(2, T).await;
    assert_eq!(
        second.body["alerts"].as_array().unwrap().len(),
        2,
        "{}",
        second.body
    );
    assert_eq!(second.body["notification_reason"], "new alerts added");
    assert_eq!(second.body["groupKey"], first.body["groupKey"]);
}
