//! The incident.io integration against a fake alert source: the JSON and
//! credentials Herald sends compared with Alertmanager 0.33.1 on the same
//! config and alerts, and how answers are classified (5xx and 429
//! retried, 429 after its `Retry-After`, other 4xx final with
//! incident.io's error text).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// incident.io's answer to an accepted alert.
fn accepted() -> Reply {
    Reply::json(
        202,
        json!({"status": "success", "message": "Event accepted for processing", "deduplication_key": "k"}),
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
  receiver: iio
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: iio
    incidentio_configs:
{receiver_body}
"#
    )
}

/// Compares two request logs: request line, content type, credentials and
/// the JSON body (times aside). 0.34 added `routeLabels` to the template
/// data, which Herald sends and 0.33.1 does not.
#[cfg(feature = "system-tests")]
fn assert_same(ours: &[Exchange], theirs: &[Exchange]) {
    let lines = |x: &[Exchange]| x.iter().map(Exchange::line).collect::<Vec<_>>();
    assert_eq!(lines(ours), lines(theirs));
    for (o, t) in ours.iter().zip(theirs) {
        let at = o.line();
        assert_eq!(o.header("content-type"), t.header("content-type"), "{at}");
        assert_eq!(o.header("authorization"), t.header("authorization"), "{at}");
        let mut ob = o.body.clone();
        assert_eq!(
            ob.as_object_mut().unwrap().remove("routeLabels"),
            Some(json!({})),
            "{at}"
        );
        assert_eq!(normalize(&ob, &[]), normalize(&t.body, &[]), "{at}");
        assert!(
            o.raw.ends_with(b"\n"),
            "{at}: Go's encoder ends in a newline"
        );
    }
}

/// An inline URL and token, `max_alerts` cutting the group: firing then
/// resolved.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn firing_and_resolved_match_alertmanager() {
    let cfg = |base: &str| {
        route(&format!(
            "      - url: '{base}v2/alert_events/http/01HX'\n        alert_source_token: src-token-1\n        max_alerts: 2\n        timeout: 10s\n"
        ))
    };
    let alerts = arriving("DiskFull", &["db1", "db2", "db3"]);
    let (ours, theirs) = differential(cfg, Arc::new(|_, _| accepted()), &alerts, 1, 2).await;
    assert_same(&ours, &theirs);
    let b = &ours[0].body;
    assert_eq!(ours[0].line(), "POST /v2/alert_events/http/01HX");
    assert_eq!(ours[0].header("authorization"), Some("Bearer src-token-1"));
    assert_eq!(b["version"], "1");
    assert_eq!(b["truncatedAlerts"], 1);
    assert_eq!(b["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(ours[1].body["status"], "resolved");
}

/// The URL and the token from files.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn url_and_token_files_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "token-from-file\n").unwrap();
    let (dir_path, token) = (dir.path().to_path_buf(), token.display().to_string());
    let cfg = move |base: &str| {
        // Each side has its own fake service, so its own URL file.
        let port = base.trim_end_matches('/').rsplit(':').next().unwrap_or("x");
        let url_file = dir_path.join(format!("url-{port}")).display().to_string();
        std::fs::write(&url_file, format!("{base}hook\n")).unwrap();
        route(&format!(
            "      - url_file: {url_file}\n        alert_source_token_file: {token}\n"
        ))
    };
    let alerts = arriving("Load", &["web1"]);
    let (ours, theirs) = differential(cfg, Arc::new(|_, _| accepted()), &alerts, 1, 2).await;
    assert_same(&ours, &theirs);
    assert_eq!(ours[0].path, "/hook");
    assert_eq!(
        ours[0].header("authorization"),
        Some("Bearer token-from-file")
    );
}

/// Herald alone against a fake alert source answering `first` to the
/// first request and 202 after; one flush per group, so every request
/// after the first is a retry.
async fn answered(first: Reply) -> (Server, FakeService) {
    let iio = FakeService::with(Arc::new(move |_, seen| {
        if seen.is_empty() {
            first.clone()
        } else {
            accepted()
        }
    }))
    .await;
    let body = format!(
        "      - url: {}\n        alert_source_token: t\n",
        iio.url("/hook")
    );
    let cfg = route(&body).replace("group_interval: 1s", "group_interval: 1h");
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    (h, iio)
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried() {
    let (h, iio) = answered(Reply::status(502)).await;
    let seen = iio.wait(2, T).await;
    assert_eq!(seen[0].body, seen[1].body);
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_failed_total{integration="incidentio"}"#,
        1.0,
    )
    .await;
}

/// A 4xx other than 429 is final; its JSON error goes into the error as
/// Go's `errDetails` summarises it.
#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_final_with_incidentio_s_words() {
    let (h, iio) = answered(Reply::json(
        400,
        json!({"type": "validation_error", "message": "Invalid payload", "errors": ["title is required", "status is invalid"]}),
    ))
    .await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="incidentio",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(iio.count(), 1);
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.contains(
            "unexpected status code 400: Invalid payload: title is required, status is invalid"
        ),
        "{log}"
    );
}

/// An invalid token (401) is final too, counted as an auth error.
#[tokio::test(flavor = "multi_thread")]
async fn auth_errors_are_final() {
    let (h, iio) = answered(Reply::json(401, json!({"error": "unauthorized"}))).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="incidentio",reason="authError"}"#,
        1.0,
    )
    .await;
    assert_eq!(iio.count(), 1);
}

/// 429 is retried, and no sooner than its `Retry-After`.
#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_are_retried_after_retry_after() {
    let (_h, iio) = answered(Reply::status(429).with_header("retry-after", "2")).await;
    iio.wait(1, T).await;
    let t0 = Instant::now();
    iio.wait(2, T).await;
    let gap = t0.elapsed();
    // Backoff alone would retry within a second.
    assert!(gap >= Duration::from_millis(1800), "retried after {gap:?}");
}

/// `timeout` ends an attempt that gets no answer, which is retried, with
/// Go's words and without the URL.
#[tokio::test(flavor = "multi_thread")]
async fn a_silent_alert_source_times_out_and_is_retried() {
    // Accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let accepted = Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = accepted.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = silent.accept().await {
            held.lock().unwrap().push(conn);
        }
    });
    let cfg = route(&format!(
        "      - url: http://{addr}/hook/secret-path\n        alert_source_token: t\n        timeout: 1s\n"
    ));
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    // A second connection is the retry after the first attempt timed out.
    wait_for("a retried attempt", T, || {
        (accepted.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
    let log = h.log.clone();
    let line = wait_for("the timeout in the log", T, move || {
        log.lock()
            .unwrap()
            .lines()
            .find(|l| l.contains("configured incident.io timeout reached (1s)"))
            .map(str::to_string)
    })
    .await;
    assert!(
        line.contains(r#"Post \"<redacted>\": context deadline exceeded"#),
        "{line}"
    );
    assert!(!line.contains("secret-path"), "{line}");
}

/// A group too big for incident.io (over 512 KiB) is sent with its first
/// alert only, the rest of the payload unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_group_is_cut_to_its_first_alert() {
    let iio = FakeService::start(accepted()).await;
    let cfg = route(&format!(
        "      - url: {}\n        alert_source_token: t\n",
        iio.url("/hook")
    ));
    let h = start_herald(&cfg, &[]).await;
    let mut alerts = firing("Big", &["a1", "a2", "a3", "a4", "a5", "a6"]);
    for a in alerts.as_array_mut().unwrap() {
        a["annotations"]["blob"] = json!("x".repeat(100 * 1024));
    }
    post_alerts(&h.base, &alerts).await;
    let seen = iio.wait(1, T).await;
    let b = &seen[0].body;
    assert!(seen[0].raw.len() <= 512 * 1024, "{}", seen[0].raw.len());
    assert_eq!(b["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(b["truncatedAlerts"], 0);
    assert_eq!(b["commonLabels"]["alertname"], "Big");
}

/// The token is a secret in the status page.
#[tokio::test(flavor = "multi_thread")]
async fn the_token_is_hidden_in_the_status() {
    let h = start_herald(
        &route(
            "      - url: http://iio.test/hook\n        alert_source_token: very-secret-token\n",
        ),
        &[],
    )
    .await;
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(
        original.contains("alert_source_token: <secret>"),
        "{original}"
    );
    assert!(!original.contains("very-secret-token"), "{original}");
}
