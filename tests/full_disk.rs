//! A full disk under `--storage.path`: every change is answered as the
//! server's failure (503 with `Retry-After`, a message naming storage),
//! counted and logged once for the episode; once space returns the same
//! requests succeed without a restart, and everything acknowledged before,
//! during and after is still there after one. Needs root: the storage is a
//! small tmpfs.

#![cfg(feature = "system-tests")]

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

const CONFIG: &str = "route:\n  receiver: none\nreceivers:\n  - name: none\n";
const T: Duration = Duration::from_secs(20);
const FAILED: &str = "writing to the database failed";

/// A tmpfs mounted for the test, unmounted (lazily, in case Herald still
/// holds it) when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(at).unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .expect("mount");
        assert!(st.success(), "mounting a tmpfs needs root");
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `file` until the file system has no byte left.
fn fill(file: &Path) {
    let mut f = std::fs::File::create(file).unwrap();
    for chunk in [1 << 20, 4096, 1] {
        let zeros = vec![0u8; chunk];
        while f.write_all(&zeros).is_ok() {}
    }
    let _ = f.sync_all();
}

fn in_an_hour() -> (String, String) {
    let now = jiff::Timestamp::now();
    (
        now.to_string(),
        now.checked_add(jiff::SignedDuration::from_hours(1))
            .unwrap()
            .to_string(),
    )
}

fn silence_body(id: Option<&str>, value: &str, comment: &str) -> Value {
    let (starts, ends) = in_an_hour();
    let mut b = json!({
        "matchers": [{"name": "alertname", "value": value, "isRegex": false}],
        "startsAt": starts,
        "endsAt": ends,
        "createdBy": "full-disk test",
        "comment": comment,
    });
    if let Some(id) = id {
        b["id"] = json!(id);
    }
    b
}

fn alert(name: &str) -> Value {
    json!({"labels": {"alertname": name, "job": "disk"}})
}

/// An answer's status, `Retry-After` and body.
struct Answer {
    code: u16,
    retry_after: Option<String>,
    body: String,
}

async fn answer(r: reqwest::RequestBuilder) -> Answer {
    let r = r.send().await.unwrap();
    Answer {
        code: r.status().as_u16(),
        retry_after: r
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string()),
        body: r.text().await.unwrap(),
    }
}

fn assert_storage_503(what: &str, a: &Answer) {
    assert_eq!(a.code, 503, "{what}: {}", a.body);
    assert_eq!(a.retry_after.as_deref(), Some("5"), "{what}");
    assert!(
        a.body
            .contains("storage unavailable: database or disk is full")
            && a.body.contains("nothing was stored"),
        "{what}: {}",
        a.body
    );
    assert!(!a.body.contains("invalid"), "{what} blames the input");
}

fn token(html: &str) -> String {
    let at = html.find(r#"name="csrf" value=""#).expect("a csrf field") + 19;
    html[at..at + 64].to_string()
}

fn lines(h: &Server, what: &str) -> usize {
    h.log
        .lock()
        .unwrap()
        .lines()
        .filter(|l| l.contains(what))
        .count()
}

async fn ids(base: &str) -> Vec<(String, String, String)> {
    let mut v: Vec<_> = get_json(&format!("{base}/api/v2/silences"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["comment"].as_str().unwrap().to_string(),
                s["status"]["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

async fn alert_names(base: &str) -> Vec<String> {
    let mut v: Vec<String> = get_json(&format!("{base}/api/v2/alerts"))
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["labels"]["alertname"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_is_answered_as_the_servers_failure_and_herald_recovers() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let _fs = Tmpfs::mount(&data, "16m");
    let h = start_herald_at(root.path(), CONFIG, &[]).await;
    let base = h.base.clone();
    let c = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Acknowledged before the disk fills.
    let kept = create_silence(&base, "alertname", "Kept", "t", "before").await;
    let doomed = create_silence(&base, "alertname", "Doomed", "t", "before").await;
    assert_eq!(post_alerts(&base, &json!([alert("Before")])).await.0, 200);

    // Fill the disk, then keep creating (large) silences until a commit
    // fails: SQLite may still reuse space it holds. Each one acknowledged
    // meanwhile must survive.
    let filler = data.join("filler");
    fill(&filler);
    let big = "x".repeat(64 << 10);
    let mut acknowledged = vec![kept.clone(), doomed.clone()];
    let first_failure = {
        let mut n = 0;
        loop {
            let a = answer(
                c.post(format!("{base}/api/v2/silences"))
                    .json(&silence_body(None, &format!("Fill{n}"), &big)),
            )
            .await;
            if a.code != 200 {
                break a;
            }
            let v: Value = serde_json::from_str(&a.body).unwrap();
            acknowledged.push(v["silenceID"].as_str().unwrap().to_string());
            n += 1;
            assert!(n < 200, "the commits never failed on a full disk");
        }
    };
    assert_storage_503("creating a silence", &first_failure);
    eprintln!(
        "{} large silences acknowledged after the filler took the last byte",
        acknowledged.len() - 2
    );
    let before = ids(&base).await;

    // Every path that commits answers the same.
    assert_storage_503(
        "updating a silence",
        &answer(
            c.post(format!("{base}/api/v2/silences"))
                .json(&silence_body(Some(&kept), "Kept", "changed")),
        )
        .await,
    );
    assert_storage_503(
        "expiring a silence",
        &answer(c.delete(format!("{base}/api/v2/silence/{doomed}"))).await,
    );
    assert_storage_503(
        "posting alerts",
        &answer(
            c.post(format!("{base}/api/v2/alerts"))
                .json(&json!([alert("Never1"), alert("Never2")])),
        )
        .await,
    );
    let form = c
        .get(format!("{base}/silences/new"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = token(&form);
    let ui_form = |comment: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("m0_name", "alertname".to_string()),
            ("m0_op", "=".to_string()),
            ("m0_value", "FromUi".to_string()),
            (
                "starts_at",
                jiff::Timestamp::now()
                    .strftime("%Y-%m-%dT%H:%M:%S")
                    .to_string(),
            ),
            ("duration", "1h".to_string()),
            ("created_by", "tester".to_string()),
            ("comment", comment.to_string()),
            ("action", "save".to_string()),
        ]
    };
    let ui = answer(
        c.post(format!("{base}/silences/new"))
            .form(&ui_form("from the UI")),
    )
    .await;
    assert_eq!(ui.code, 503, "the UI's save: {}", ui.body);
    assert_eq!(ui.retry_after.as_deref(), Some("5"));
    assert!(ui.body.contains("storage unavailable"), "{}", ui.body);
    assert!(
        ui.body.contains("from the UI"),
        "the form is shown again, filled in"
    );
    let ui = answer(
        c.post(format!("{base}/silences/{doomed}/expire"))
            .form(&[("csrf", csrf.clone())]),
    )
    .await;
    assert_eq!(ui.code, 503, "the UI's expire: {}", ui.body);
    assert_eq!(ui.retry_after.as_deref(), Some("5"));
    assert!(ui.body.contains("storage unavailable"), "{}", ui.body);

    // Nothing changed in memory either.
    assert_eq!(ids(&base).await, before);

    // Counted, by reason; logged once.
    let failures = counter(
        &base,
        r#"herald_storage_write_failures_total{reason="disk_full"}"#,
    )
    .await;
    assert!(failures >= 7.0, "{failures} failed writes counted");
    eprintln!("{failures} failed writes counted");
    assert_eq!(
        counter(&base, r#"herald_storage_write_failures_total{reason="io"}"#).await,
        0.0
    );

    // Space returns: the same requests succeed, without a restart.
    std::fs::remove_file(&filler).unwrap();
    let updated = answer(
        c.post(format!("{base}/api/v2/silences"))
            .json(&silence_body(Some(&kept), "Kept", "changed")),
    )
    .await;
    assert_eq!(updated.code, 200, "{}", updated.body);
    // In place or as a successor (a new start), as Alertmanager decides.
    let changed: Value = serde_json::from_str(&updated.body).unwrap();
    let changed = changed["silenceID"].as_str().unwrap().to_string();
    let a = answer(c.delete(format!("{base}/api/v2/silence/{doomed}"))).await;
    assert_eq!(a.code, 200, "{}", a.body);
    assert_eq!(post_alerts(&base, &json!([alert("After")])).await.0, 200);
    let ui = answer(
        c.post(format!("{base}/silences/new"))
            .form(&ui_form("from the UI")),
    )
    .await;
    assert_eq!(ui.code, 303, "the UI's save: {}", ui.body);

    let again = wait_for("the recovery's log line", T, || {
        let log = h.log.lock().unwrap();
        log.lines()
            .find(|l| l.contains("storage writable again"))
            .map(str::to_string)
    })
    .await;
    assert!(
        again.contains(&format!("failed_writes={failures}")),
        "{again}"
    );
    assert_eq!(
        lines(&h, FAILED),
        1,
        "one error line for the episode:\n{}",
        h.log.lock().unwrap()
    );
    let cause = h
        .log
        .lock()
        .unwrap()
        .lines()
        .find(|l| l.contains(FAILED))
        .unwrap()
        .to_string();
    assert!(
        cause.contains("level=error") && cause.contains("database or disk is full"),
        "{cause}"
    );

    // A restart finds everything acknowledged, and nothing that was not.
    let now_ids = ids(&base).await;
    let now_alerts = alert_names(&base).await;
    assert_eq!(
        now_alerts,
        ["After", "Before", "Never1", "Never2"],
        "memory kept the refused batch, as Alertmanager would"
    );
    drop(h);
    let h = start_herald_at(root.path(), CONFIG, &[]).await;
    assert_eq!(ids(&h.base).await, now_ids);
    for id in &acknowledged {
        assert!(now_ids.iter().any(|(i, _, _)| i == id), "{id} lost");
    }
    let changed_now = get_json(&format!("{}/api/v2/silence/{changed}", h.base)).await;
    assert_eq!(changed_now["comment"], "changed");
    let doomed_now = get_json(&format!("{}/api/v2/silence/{doomed}", h.base)).await;
    assert_eq!(doomed_now["status"]["state"], "expired");
    assert_eq!(
        alert_names(&h.base).await,
        ["After", "Before"],
        "the refused batch is not on disk, not even half of it"
    );
}

/// Alertmanager's notification log is in memory and never fails after a
/// send; Herald's durable one may. A notification sent while the disk is
/// full is still a delivered notification: the flush does not fail (no
/// "Notify for alerts failed"), and the
/// entry stays in memory, so the alerts' resolution is sent when it comes
/// (without an entry, a flush of only resolved alerts sends nothing).
#[tokio::test(flavor = "multi_thread")]
async fn notifications_go_on_while_their_log_cannot_be_stored() {
    let hook = Webhook::start().await;
    let config = format!(
        "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: r\n    webhook_configs: [{{url: '{}'}}]\n",
        hook.url("/d")
    );
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let _fs = Tmpfs::mount(&data, "16m");
    let h = start_herald_at(root.path(), &config, &[]).await;
    fill(&data.join("filler"));
    // Refused (not on disk), yet in memory and notified, as Alertmanager
    // would: the alert is real, and the client sends it again.
    let (code, body) = post_alerts(&h.base, &json!([alert("Full")])).await;
    assert_eq!(code, 503, "{body}");
    let firing = hook.nth(1, T).await;
    assert_eq!(firing.body["status"], "firing");
    wait_until("the failed notification-log commit", T, || async {
        (counter(
            &h.base,
            r#"herald_storage_write_failures_total{reason="disk_full"}"#,
        )
        .await
            >= 2.0)
            .then_some(())
    })
    .await;
    let resolved = json!([{
        "labels": {"alertname": "Full", "job": "disk"},
        "endsAt": jiff::Timestamp::now().to_string(),
    }]);
    assert_eq!(post_alerts(&h.base, &resolved).await.0, 503);
    let last = wait_for("the resolved notification", T, || {
        hook.all()
            .into_iter()
            .find(|r| r.body["status"] == "resolved")
    })
    .await;
    assert_eq!(last.body["alerts"][0]["labels"]["alertname"], "Full");
    assert_eq!(
        lines(&h, "Notify for alerts failed"),
        0,
        "{}",
        h.log.lock().unwrap()
    );
    assert_eq!(lines(&h, FAILED), 1, "{}", h.log.lock().unwrap());
}
