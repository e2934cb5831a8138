//! The event recorder (`event_recorder:` with
//! `--enable-feature=event-recorder`): file and webhook outputs, the
//! events' JSON compared with what Alertmanager 0.33.1 writes for the same
//! input, and which blocks load.

mod common;

#[cfg(feature = "system-tests")]
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use common::*;

const SILENCE: &str = r#"{"matchers":[{"name":"alertname","value":"Quiet","isRegex":false}],"startsAt":"2026-01-01T00:00:00Z","endsAt":"2099-01-01T00:00:00Z","createdBy":"me","comment":"c"}"#;

fn config(hook: &str, outputs: &str) -> String {
    format!(
        "route:\n  receiver: wh\n  group_wait: 1s\n  group_by: [alertname]\nreceivers:\n- name: wh\n  webhook_configs:\n  - url: {hook}\ninhibit_rules:\n- name: crit-mutes-warn\n  source_matchers: ['sev=\"crit\"']\n  target_matchers: ['sev=\"warn\"']\n  equal: [team]\nevent_recorder:\n{outputs}"
    )
}

fn read_events(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

/// The name of the event's payload (`alertCreated`, ...).
fn kind(e: &Value) -> String {
    e["data"]
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .unwrap_or_default()
}

fn kinds(events: &[Value]) -> Vec<String> {
    events.iter().map(kind).collect()
}

/// The notification of the source alert, the inhibition of the target and
/// the silencing of the third are all there.
fn complete(events: &[Value]) -> bool {
    let k = kinds(events);
    ["notification", "inhibitionMutedAlert", "silenceMutedAlert"]
        .iter()
        .all(|want| k.iter().any(|k| k == want))
}

async fn post_silence(base: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/silences"))
        .header("content-type", "application/json")
        .body(SILENCE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

/// Posts an alert and a silence, waits for the notification.
async fn drive(base: &str, hook: &Webhook) {
    let (code, body) = post_alerts(
        base,
        &json!([
            {"labels": {"alertname": "Rec", "sev": "crit", "team": "a"}, "annotations": {"summary": "s"}},
            {"labels": {"alertname": "Muted", "sev": "warn", "team": "a"}},
            {"labels": {"alertname": "Quiet"}}
        ]),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    post_silence(base).await;
    hook.nth(1, Duration::from_secs(15)).await;
}

#[tokio::test]
async fn file_output_records_the_alert_path_relative_to_the_config_dir() {
    let hook = Webhook::start().await;
    let cfg = config(
        &hook.url("/hook"),
        "  file_outputs:\n  - path: events.jsonl\n",
    );
    let server = start_herald(&cfg, &["--enable-feature=event-recorder"]).await;
    drive(&server.base, &hook).await;
    let file = server.root.join("events.jsonl");
    let events = wait_for("the notification event", Duration::from_secs(10), || {
        let e = read_events(&file);
        complete(&e).then_some(e)
    })
    .await;
    let ks = kinds(&events);
    for k in [
        "alertmanagerStartupEvent",
        "alertCreated",
        "alertGrouped",
        "silenceCreated",
        "notification",
        "inhibitionMutedAlert",
        "silenceMutedAlert",
    ] {
        assert!(ks.contains(&k.to_string()), "{k} missing from {ks:?}");
    }
    let created = events
        .iter()
        .find(|e| kind(e) == "alertCreated" && e["data"]["alertCreated"]["alert"]["name"] == "Rec")
        .unwrap();
    let alert = &created["data"]["alertCreated"]["alert"];
    assert_eq!(alert["name"], "Rec");
    assert_eq!(
        alert["labels"]["labels"],
        json!([
            {"key": "alertname", "value": "Rec"},
            {"key": "sev", "value": "crit"},
            {"key": "team", "value": "a"}
        ])
    );
    // protojson writes 64-bit integers as strings.
    assert!(alert["fingerprint"].is_string());
    let n = &events.iter().find(|e| kind(e) == "notification").unwrap()["data"]["notification"];
    assert_eq!(n["reason"], "NOTIFY_REASON_FIRST_NOTIFICATION");
    assert_eq!(n["integration"]["name"], "webhook");
    assert_eq!(n["groupInfo"]["receiverName"], "wh");
    assert_eq!(n["groupInfo"]["groupKey"], "{}:{alertname=\"Rec\"}");
    assert_eq!(n["repeatInterval"], "14400s");
    assert_eq!(n["flushId"], "1");
    assert!(n["groupInfo"]["groupUuid"]
        .as_str()
        .is_some_and(|u| u.len() == 36));
    assert_eq!(n["firingAlerts"][0]["hash"], n["alerts"][0]["hash"]);
    // A firing alert goes out without an end, as Go's zero time.
    assert_eq!(n["alerts"][0]["details"]["endsAt"], "0001-01-01T00:00:00Z");

    let i = &events
        .iter()
        .find(|e| kind(e) == "inhibitionMutedAlert")
        .unwrap()["data"]["inhibitionMutedAlert"];
    assert_eq!(i["inhibitRules"][0]["name"], "crit-mutes-warn");
    assert_eq!(i["inhibitRules"][0]["equalLabels"], json!(["team"]));
    assert_eq!(
        i["inhibitRules"][0]["sourceMatchers"][0]["rendered"],
        "sev=\"crit\""
    );
    let rec = created["data"]["alertCreated"]["alert"]["fingerprint"].clone();
    assert_eq!(i["inhibitingFingerprints"], json!([rec]));

    let metrics = get_text(&format!("{}/metrics", server.base)).await;
    let series = format!(
        "alertmanager_events_recorded_total{{event_type=\"alert_created\",output=\"file:{}\",result=\"success\"}} 3",
        file.display()
    );
    assert!(metrics.contains(&series), "{series} not in\n{metrics}");
}

#[tokio::test]
async fn a_rotated_file_is_opened_again() {
    let hook = Webhook::start().await;
    let cfg = config(
        &hook.url("/hook"),
        "  file_outputs:\n  - path: events.jsonl\n",
    );
    let server = start_herald(&cfg, &["--enable-feature=event-recorder,classic-mode"]).await;
    let file = server.root.join("events.jsonl");
    wait_for("the startup event", Duration::from_secs(10), || {
        (!read_events(&file).is_empty()).then_some(())
    })
    .await;
    // What logrotate does: move the file away, the writer must follow.
    std::fs::rename(&file, server.root.join("events.jsonl.1")).unwrap();
    post_alerts(&server.base, &json!([{"labels": {"alertname": "After"}}])).await;
    let events = wait_for("events in the new file", Duration::from_secs(10), || {
        let e = read_events(&file);
        kinds(&e).contains(&"alertCreated".to_string()).then_some(e)
    })
    .await;
    assert!(!kinds(&events).contains(&"alertmanagerStartupEvent".to_string()));
    let old = read_events(&server.root.join("events.jsonl.1"));
    assert_eq!(kinds(&old), ["alertmanagerStartupEvent"]);
}

#[tokio::test]
async fn without_the_feature_the_block_only_loads() {
    let hook = Webhook::start().await;
    let cfg = config(
        &hook.url("/hook"),
        "  file_outputs:\n  - path: events.jsonl\n",
    );
    let server = start_herald(&cfg, &[]).await;
    drive(&server.base, &hook).await;
    assert!(!server.root.join("events.jsonl").exists());
    let metrics = get_text(&format!("{}/metrics", server.base)).await;
    assert!(!metrics.contains("alertmanager_events_recorded"));
}

#[tokio::test]
async fn webhook_output_posts_each_event_and_batches_when_asked() {
    let hook = Webhook::start().await;
    let events = Webhook::start().await;
    let batched = Webhook::start().await;
    let cfg = config(
        &hook.url("/hook"),
        &format!(
            "  webhook_outputs:\n  - url: {}\n  - url: {}\n    batch: true\n    batch_max_events: 2\n    batch_flush_interval: 50ms\n",
            events.url("/events"),
            batched.url("/batch")
        ),
    );
    let server = start_herald(&cfg, &["--enable-feature=event-recorder"]).await;
    drive(&server.base, &hook).await;
    let got = wait_for(
        "the notification event by webhook",
        Duration::from_secs(10),
        || {
            let all: Vec<Value> = events.all().into_iter().map(|r| r.body).collect();
            kinds(&all)
                .contains(&"notification".to_string())
                .then_some(all)
        },
    )
    .await;
    assert_eq!(kinds(&got)[0], "alertmanagerStartupEvent");
    for r in events.all() {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/json")
        );
    }
    // Batched: JSON arrays of at most two events, the same events.
    let plain = kinds(&got);
    wait_for(
        "the same events in batches",
        Duration::from_secs(10),
        || {
            let mut flat = Vec::new();
            for r in batched.all() {
                let arr = r.body.as_array().expect("a batch is a JSON array").clone();
                assert!(!arr.is_empty() && arr.len() <= 2, "{arr:?}");
                flat.extend(arr);
            }
            let batched = kinds(&flat);
            plain.iter().all(|k| batched.contains(k)).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_failing_event_webhook_is_retried_with_backoff() {
    let hook = Webhook::start().await;
    let events = Webhook::start().await;
    // The first two attempts fail (5xx); the third of max_retries gets through.
    events.fail(2, 503);
    let cfg = config(
        &hook.url("/hook"),
        &format!(
            "  webhook_outputs:\n  - url: {}\n    workers: 1\n    max_retries: 3\n    retry_backoff: 20ms\n",
            events.url("/events")
        ),
    );
    let _server = start_herald(&cfg, &["--enable-feature=event-recorder"]).await;
    let got = wait_for(
        "the startup event after two failures",
        Duration::from_secs(10),
        || events.all().into_iter().next(),
    )
    .await;
    assert_eq!(kind(&got.body), "alertmanagerStartupEvent");
    let attempts = events.attempts();
    assert!(attempts.len() >= 3, "{attempts:?}");
    // Exponential: 20ms, then 40ms.
    assert!(attempts[2].duration_since(attempts[1]) >= Duration::from_millis(40));
    assert!(attempts[1].duration_since(attempts[0]) >= Duration::from_millis(20));
}

#[test]
fn blocks_load_with_alertmanagers_rules() {
    let base = "route:\n  receiver: r\nreceivers:\n- name: r\n";
    let load = |extra: &str| herald::config::Config::load(&format!("{base}{extra}"));
    for ok in [
        "tracing:\n  endpoint: collector:4317\n",
        "tracing:\n  client_type: http\n  endpoint: collector:4318\n  insecure: true\n  compression: gzip\n  timeout: 5s\n  sampling_fraction: 0.5\n  headers:\n    X-Tenant:\n      values: [a]\n",
        "tracing:\n",
        "event_recorder:\n  file_outputs:\n  - path: /tmp/x.jsonl\n  webhook_outputs:\n  - url: http://h/x\n    workers: 2\n    max_retries: 5\n    retry_backoff: 1s\n    timeout: 3s\n  stdout_outputs: [{}]\n",
        "event_recorder:\n  webhook_outputs:\n  - url: https://h/x\n    batch: true\n    batch_max_events: 10\n    batch_max_bytes: 1000\n    batch_flush_interval: 1s\n",
    ] {
        if let Err(e) = load(ok) {
            panic!("refused {ok:?}: {e}");
        }
    }
    for (bad, why) in [
        ("tracing:\n  insecure: true\n", "tracing endpoint must be set"),
        (
            "tracing:\n  endpoint: x:1\n  client_type: udp\n",
            "expected tracing client type to be to be http or grpc, but got udp",
        ),
        (
            "tracing:\n  endpoint: x:1\n  compression: zstd\n",
            "invalid compression type zstd provided, valid options: gzip",
        ),
        ("tracing:\n  endpoint: x:1\n  sampler: 1\n", "sampler"),
        (
            "event_recorder:\n  file_outputs:\n  - {}\n",
            "event_recorder file output requires a path",
        ),
        (
            "event_recorder:\n  webhook_outputs:\n  - timeout: 1s\n",
            "event_recorder webhook output requires a url",
        ),
        (
            "event_recorder:\n  webhook_outputs:\n  - url: /relative\n",
            "event_recorder webhook output requires an absolute http(s) url",
        ),
        (
            "event_recorder:\n  webhook_outputs:\n  - url: http://h/\n    batch_max_events: 3\n",
            "event_recorder webhook batch settings require batch: true",
        ),
        (
            "event_recorder:\n  webhook_outputs:\n  - url: http://h/\n    batch: true\n    batch_max_bytes: -1\n",
            "event_recorder webhook batch settings cannot be negative",
        ),
        (
            "event_recorder:\n  kafka_outputs:\n  - brokers: [k:9092]\n    topic: t\n",
            "kafka_outputs",
        ),
    ] {
        match load(bad) {
            Ok(_) => panic!("accepted {bad:?}"),
            Err(e) => assert!(e.to_string().contains(why), "{bad:?}: {e}"),
        }
    }
}

#[cfg(feature = "system-tests")]
/// Every key path of a JSON value (array positions collapsed), which is
/// what consumers of the events depend on.
fn shape(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let p = format!("{prefix}.{k}");
                out.insert(p.clone());
                shape(v, &p, out);
            }
        }
        Value::Array(a) => {
            for v in a {
                shape(v, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(feature = "system-tests")]
fn shapes(events: &[Value]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for e in events {
        shape(e, "", out.entry(kind(e)).or_default());
    }
    out
}

#[cfg(feature = "system-tests")]
struct Reference {
    child: std::process::Child,
    base: String,
    _dir: tempfile::TempDir,
    events: std::path::PathBuf,
}

#[cfg(feature = "system-tests")]
impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// 0.33.1 with the feature on (the harness starts it without flags).
#[cfg(feature = "system-tests")]
async fn start_reference(cfg: &str) -> Reference {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alertmanager.yml");
    std::fs::write(&path, cfg).unwrap();
    let port = free_port();
    let child = std::process::Command::new(am_current_bin("alertmanager"))
        .arg(format!("--config.file={}", path.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .arg("--enable-feature=event-recorder")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start alertmanager 0.33.1");
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&base).await;
    let events = dir.path().join("events.jsonl");
    Reference {
        child,
        base,
        _dir: dir,
        events,
    }
}

/// What 0.34 added over the reference 0.33.1, which Herald follows.
#[cfg(feature = "system-tests")]
const SINCE_0_34: &[&str] = &[".data.inhibitionMutedAlert.inhibitRules[].name"];

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn events_have_the_shapes_of_alertmanager_0_33() {
    let hook_h = Webhook::start().await;
    let hook_a = Webhook::start().await;
    let outputs = "  file_outputs:\n  - path: events.jsonl\n";
    let herald = start_herald(
        &config(&hook_h.url("/hook"), outputs),
        &["--enable-feature=event-recorder"],
    )
    .await;
    let am = start_reference(&config(&hook_a.url("/hook"), outputs)).await;
    drive(&herald.base, &hook_h).await;
    drive(&am.base, &hook_a).await;
    let wanted = |path: &Path| {
        let e = read_events(path);
        complete(&e).then_some(e)
    };
    let h = wait_for("herald's events", Duration::from_secs(10), || {
        wanted(&herald.root.join("events.jsonl"))
    })
    .await;
    let a = wait_for("alertmanager's events", Duration::from_secs(10), || {
        wanted(&am.events)
    })
    .await;
    let (hs, as_) = (shapes(&h), shapes(&a));
    for (k, go) in &as_ {
        let ours = hs
            .get(k)
            .unwrap_or_else(|| panic!("herald recorded no {k}; it has {:?}", hs.keys()));
        let missing: Vec<&String> = go.difference(ours).collect();
        let extra: Vec<&String> = ours
            .difference(go)
            .filter(|p| !SINCE_0_34.contains(&p.as_str()))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{k}: herald lacks {missing:?}, adds {extra:?}"
        );
    }
    assert_eq!(
        kinds(&h).iter().collect::<BTreeSet<_>>(),
        kinds(&a).iter().collect::<BTreeSet<_>>()
    );
}

/// Herald's config loading against 0.33.1's `amtool check-config` on the
/// blocks 0.33.1 knows (`stdout_outputs` and batching came with 0.34).
#[cfg(feature = "system-tests")]
#[test]
fn blocks_are_accepted_and_refused_as_amtool_0_33_does() {
    let base = "route:\n  receiver: r\nreceivers:\n- name: r\n";
    let dir = tempfile::tempdir().unwrap();
    for (i, (extra, valid)) in [
        ("tracing:\n  endpoint: collector:4317\n", true),
        (
            "tracing:\n  client_type: http\n  endpoint: c:4318\n  insecure: true\n  compression: gzip\n  timeout: 5s\n  sampling_fraction: 0.25\n",
            true,
        ),
        ("tracing:\n  insecure: true\n", false),
        ("tracing:\n  endpoint: x:1\n  client_type: udp\n", false),
        ("tracing:\n  endpoint: x:1\n  compression: zstd\n", false),
        ("tracing:\n  endpoint: x:1\n  unknown: 1\n", false),
        (
            "event_recorder:\n  file_outputs:\n  - path: x.jsonl\n  webhook_outputs:\n  - url: http://h/x\n    workers: 2\n    max_retries: 5\n    retry_backoff: 1s\n    timeout: 3s\n",
            true,
        ),
        ("event_recorder:\n  file_outputs:\n  - {}\n", false),
        ("event_recorder:\n  webhook_outputs:\n  - timeout: 1s\n", false),
        ("event_recorder:\n  webhook_outputs:\n  - url: /rel\n", false),
        ("event_recorder:\n  nope: []\n", false),
    ]
    .into_iter()
    .enumerate()
    {
        let f = dir.path().join(format!("c{i}.yml"));
        std::fs::write(&f, format!("{base}{extra}")).unwrap();
        let am = std::process::Command::new(am_current_bin("amtool"))
            .args(["check-config", f.to_str().unwrap()])
            .output()
            .unwrap();
        let ours = herald::config::Config::load_file(&f);
        assert_eq!(
            am.status.success(),
            valid,
            "amtool on {extra:?}: {}",
            String::from_utf8_lossy(&am.stdout)
        );
        assert_eq!(ours.is_ok(), valid, "herald on {extra:?}: {:?}", ours.err());
    }
}

/// `GET /api/v2/status` shows both blocks as 0.33.1 does, secrets hidden.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_blocks_as_alertmanager_does() {
    let cfg = "route:\n  receiver: wh\nreceivers:\n- name: wh\ntracing:\n  endpoint: c:4317\n  insecure: true\n  sampling_fraction: 0.5\n  headers:\n    X-Tok:\n      secrets: [abc]\n  timeout: 5s\nevent_recorder:\n  file_outputs:\n  - path: /nonexistent/ev.jsonl\n  webhook_outputs:\n  - url: http://u:p@h/x?q=1\n    workers: 2\n";
    let herald = start_herald(cfg, &[]).await;
    let am = start_alertmanager(cfg).await;
    let original = |v: Value| {
        v["config"]["original"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let ours = original(get_json(&format!("{}/api/v2/status", herald.base)).await);
    let theirs = original(get_json(&format!("{}/api/v2/status", am.base)).await);
    let tail = |s: &str| s[s.find("tracing:").unwrap_or(0)..].to_string();
    assert_eq!(tail(&ours), tail(&theirs));
    assert!(!ours.contains("abc") && !ours.contains("u:p"));
}
