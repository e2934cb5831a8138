//! Crash safety: what the API acknowledged survives SIGKILL, and a restart
//! neither repeats a delivered notification nor swallows a due resolution.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(20);

fn config(hook: &Webhook) -> String {
    format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/d")
    )
}

fn kill(mut s: Server) {
    // SIGKILL: no shutdown path runs.
    s.child.kill().unwrap();
    s.child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_silences_and_alerts_survive_sigkill() {
    let hook = Webhook::start().await;
    let root = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let mut silences: Vec<String> = Vec::new();
    let mut alerts: Vec<String> = Vec::new();
    for round in 0..5 {
        let h = start_herald_at(root.path(), &config(&hook), &[]).await;
        // Everything acknowledged in earlier rounds is back.
        let got = get_json(&format!("{}/api/v2/silences", h.base)).await;
        let ids: Vec<&str> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        for id in &silences {
            assert!(
                ids.contains(&id.as_str()),
                "round {round}: silence {id} lost; have {ids:?}"
            );
        }
        let got = get_json(&format!("{}/api/v2/alerts", h.base)).await;
        let names: Vec<&str> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap())
            .collect();
        for n in &alerts {
            assert!(
                names.contains(&n.as_str()),
                "round {round}: alert {n} lost; have {names:?}"
            );
        }
        // Acknowledge a few more, then kill at once.
        for i in 0..3 {
            let name = format!("R{round}A{i}");
            let (code, _) = post_alerts(&h.base, &json!([{"labels": {"alertname": name}}])).await;
            assert_eq!(code, 200);
            alerts.push(name);
            let now = jiff::Timestamp::now();
            let sil = json!({"matchers": [{"name": "alertname", "value": format!("R{round}S{i}"), "isRegex": false}], "startsAt": now.to_string(), "endsAt": now.checked_add(jiff::SignedDuration::from_hours(1)).unwrap().to_string(), "createdBy": "t", "comment": "c"});
            let r = client
                .post(format!("{}/api/v2/silences", h.base))
                .json(&sil)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status().as_u16(), 200);
            silences.push(
                r.json::<Value>().await.unwrap()["silenceID"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        kill(h);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn restart_neither_repeats_nor_swallows_notifications() {
    let hook = Webhook::start().await;
    let root = tempfile::tempdir().unwrap();
    let h = start_herald_at(root.path(), &config(&hook), &[]).await;
    post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "G", "instance": "a"}}]),
    )
    .await;
    let first = hook.nth(1, T).await;
    assert_eq!(first.body["alerts"].as_array().unwrap().len(), 1);
    // Delivered is not yet logged: a kill between the two repeats the
    // notification after the restart (at least once, as Alertmanager).
    // This test is about what happens once it is logged.
    wait_counter(&h.base, "alertmanager_nflog_entries_written_total", 1.0).await;
    kill(h);

    // After the restart the stored alert's group flushes at once; the
    // restored notification log must hold that flush back. The next
    // notification is the one the new alert causes, with both alerts.
    let h = start_herald_at(root.path(), &config(&hook), &[]).await;
    post_alerts(
        &h.base,
        &json!([{"labels": {"alertname": "G", "instance": "b"}}]),
    )
    .await;
    let second = hook.nth(2, T).await;
    assert_eq!(
        second.body["alerts"].as_array().unwrap().len(),
        2,
        "{}",
        second.body
    );
    assert_eq!(second.body["notification_reason"], "new alerts added");
    wait_counter(&h.base, "alertmanager_nflog_entries_written_total", 1.0).await;
    kill(h);

    // Resolving after another restart sends the resolution.
    let h = start_herald_at(root.path(), &config(&hook), &[]).await;
    let ended = jiff::Timestamp::now().to_string();
    post_alerts(&h.base, &json!([{"labels": {"alertname": "G", "instance": "a"}, "endsAt": ended}, {"labels": {"alertname": "G", "instance": "b"}, "endsAt": ended}])).await;
    let third = hook.nth(3, T).await;
    assert_eq!(third.body["status"], "resolved");
    assert_eq!(hook.count(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_from_a_newer_herald_stops_startup_without_damage() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join("herald.db");
    // Written with rusqlite (Herald's own SQLite) rather than a python3
    // script, so the test needs nothing beyond the Rust toolchain.
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("create table t(x); pragma user_version=42;")
        .unwrap();
    drop(c);
    let before = std::fs::read(&db).unwrap();
    std::fs::write(
        root.path().join("herald.yml"),
        "route:\n  receiver: r\nreceivers:\n  - name: r\n",
    )
    .unwrap();
    let out = std::process::Command::new(herald_bin())
        .arg(format!(
            "--config.file={}",
            root.path().join("herald.yml").display()
        ))
        .arg(format!("--storage.path={}", data.display()))
        .arg("--web.listen-address=127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("newer Herald"), "{log}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the database must not be touched"
    );
}

/// Silences and alerts are posted continuously while Herald is SIGKILLed at
/// varying moments (mid-request, mid-commit): everything acknowledged before
/// the kill is there after the restart.
#[tokio::test(flavor = "multi_thread")]
async fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let hook = Webhook::start().await;
    let root = tempfile::tempdir().unwrap();
    let acked_silences = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let acked_alerts = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for round in 0..4 {
        let h = start_herald_at(root.path(), &config(&hook), &[]).await;
        let got = get_json(&format!("{}/api/v2/silences", h.base)).await;
        let ids: Vec<String> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_string())
            .collect();
        for id in acked_silences.lock().unwrap().iter() {
            assert!(
                ids.contains(id),
                "round {round}: acknowledged silence {id} lost"
            );
        }
        let got = get_json(&format!("{}/api/v2/alerts", h.base)).await;
        let names: Vec<String> = got
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
            .collect();
        for n in acked_alerts.lock().unwrap().iter() {
            assert!(
                names.contains(n),
                "round {round}: acknowledged alert {n} lost"
            );
        }
        // Writers run until the process dies under them.
        let base = h.base.clone();
        let (sil, al) = (acked_silences.clone(), acked_alerts.clone());
        let writer = tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0.. {
                let name = format!("K{round}-{i}");
                let now = jiff::Timestamp::now();
                let body = json!({"matchers": [{"name": "alertname", "value": name, "isRegex": false}], "startsAt": now.to_string(), "endsAt": now.checked_add(jiff::SignedDuration::from_hours(1)).unwrap().to_string(), "createdBy": "k", "comment": "c"});
                match client
                    .post(format!("{base}/api/v2/silences"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => match r.json::<Value>().await {
                        Ok(v) => sil
                            .lock()
                            .unwrap()
                            .push(v["silenceID"].as_str().unwrap().to_string()),
                        Err(_) => break,
                    },
                    _ => break,
                }
                match client
                    .post(format!("{base}/api/v2/alerts"))
                    .json(&json!([{"labels": {"alertname": name}}]))
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => al.lock().unwrap().push(name),
                    _ => break,
                }
            }
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(50 + seed % 250)).await;
        kill(h);
        let _ = writer.await;
    }
    // What the last round acknowledged is there too.
    let h = start_herald_at(root.path(), &config(&hook), &[]).await;
    let got = get_text(&format!("{}/api/v2/silences", h.base)).await;
    for id in acked_silences.lock().unwrap().iter() {
        assert!(got.contains(id.as_str()), "acknowledged silence {id} lost");
    }
    let got = get_text(&format!("{}/api/v2/alerts", h.base)).await;
    for n in acked_alerts.lock().unwrap().iter() {
        assert!(
            got.contains(&format!("\"{n}\"")),
            "acknowledged alert {n} lost"
        );
    }
    assert!(
        acked_silences.lock().unwrap().len() > 10,
        "the writers made progress"
    );
}
