//! The PagerDuty integration against a fake PagerDuty: Events API v2 and
//! v1 events compared with Alertmanager 0.33.1 on the same config and
//! alerts (firing, then resolved), and how each API's answers are
//! retried: v2 5xx and 429 (after `Retry-After`), v1 5xx and 403, any other
//! 4xx failing at once.
//!
//! v1 posts to a fixed `https://events.pagerduty.com/...` in Alertmanager
//! and in Herald; the tests reach the fake through `http_config.proxy_url`,
//! a local CONNECT proxy that ends TLS and passes the request on.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// What PagerDuty answers an accepted event.
#[cfg(feature = "system-tests")]
fn accepted() -> Responder {
    Arc::new(|_, _| {
        Reply::json(
            202,
            json!({"status": "success", "message": "Event processed", "dedup_key": "x"}),
        )
    })
}

/// `group_interval` 1s for the comparisons, 1h where a failed flush must
/// not be flushed again while the test counts attempts.
fn config_every(group_interval: &str, pagerduty_configs: &str) -> String {
    format!(
        r#"
route:
  receiver: pd
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: {group_interval}
  repeat_interval: 1h
receivers:
  - name: pd
    pagerduty_configs:
{pagerduty_configs}"#
    )
}

fn config(pagerduty_configs: &str) -> String {
    config_every("1s", pagerduty_configs)
}

/// Every key of a v2 config that changes the event.
#[cfg(feature = "system-tests")]
fn v2_config(base: &str) -> String {
    config(&format!(
        r#"      - routing_key: 'key-{{{{ .GroupLabels.team }}}}'
        url: '{base}v2/enqueue'
        client_url: 'http://am.example/{{{{ .GroupLabels.team }}}}'
        severity: '{{{{ if eq .Status "firing" }}}}critical{{{{ else }}}}info{{{{ end }}}}'
        class: disk
        component: '{{{{ .CommonLabels.instance }}}}'
        group: '{{{{ .GroupLabels.team }}}}'
        details:
          team: '{{{{ .GroupLabels.team }}}}'
          count: '{{{{ len .Alerts }}}}'
          nested:
            list: ['{{{{ .Status }}}}', 2, true]
            '{{{{ .GroupLabels.alertname }}}}_key': '[a, b]'
        images:
          - src: 'https://img.example/{{{{ .GroupLabels.alertname }}}}.png'
            alt: graph
            href: https://grafana.example/
          - src: ''
            alt: dropped, no src
        links:
          - href: 'https://runbooks.example/{{{{ .GroupLabels.alertname }}}}'
            text: runbook
          - text: dropped, no href
"#
    ))
}

#[cfg(feature = "system-tests")]
fn assert_same(ours: &[Exchange], theirs: &[Exchange]) {
    assert_eq!(ours.len(), theirs.len(), "request count");
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(o.line(), t.line());
        assert_eq!(o.header("content-type"), t.header("content-type"));
        assert_eq!(o.header("authorization"), t.header("authorization"));
        assert_eq!(normalize(&o.body, &[]), normalize(&t.body, &[]));
        // Byte for byte but for times: key order, Go's escaping of `<>&`.
        assert_eq!(masked(&o.raw), masked(&t.raw));
    }
}

#[cfg(feature = "system-tests")]
fn masked(raw: &[u8]) -> String {
    let times = regex::Regex::new(r"\d{4}-\d\d-\d\dT[0-9:.]+(Z|[+-]\d\d:\d\d)").unwrap();
    times
        .replace_all(&String::from_utf8_lossy(raw), "<time>")
        .into_owned()
}

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn v2_firing_then_resolved_match_alertmanager() {
    // One alert: with two, 0.33.1 now and then flushes the group before
    // the second is in it.
    let alerts = firing("DiskFull", &["db1"]);
    let (ours, theirs) = differential(v2_config, accepted(), &alerts, 1, 2).await;
    assert_same(&ours, &theirs);
    let (fired, done) = (&ours[0].body, &ours[1].body);
    assert_eq!(ours[0].line(), "POST /v2/enqueue");
    assert_eq!(fired["event_action"], "trigger");
    assert_eq!(fired["routing_key"], "key-db");
    assert_eq!(fired["payload"]["custom_details"]["num_firing"], 1);
    assert_eq!(fired["payload"]["component"], "db1");
    assert_eq!(
        fired["payload"]["custom_details"]["nested"]["DiskFull_key"],
        json!(["a", "b"])
    );
    assert_eq!(fired["images"].as_array().unwrap().len(), 1);
    assert_eq!(done["event_action"], "resolve");
    assert_eq!(done["payload"]["severity"], "info");
    assert_eq!(fired["dedup_key"], done["dedup_key"]);
}

/// An event over PagerDuty's 512000 bytes goes out without its details,
/// replaced by Alertmanager's note.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn oversized_events_lose_their_details_like_alertmanager() {
    let mut alerts = firing("Huge", &["db1"]);
    alerts[0]["annotations"]["big"] = json!("x".repeat(600_000));
    let cfg = |base: &str| {
        config(&format!(
            "      - routing_key: k\n        url: '{base}v2/enqueue'\n        details:\n          big: '{{{{ .CommonAnnotations.big }}}}'\n"
        ))
    };
    let (ours, theirs) = differential(cfg, accepted(), &alerts, 1, 1).await;
    assert_same(&ours, &theirs);
    assert_eq!(
        ours[0].body["payload"]["custom_details"],
        json!({"error": "Custom details have been removed because the original event exceeds the maximum size of 512KB"})
    );
    assert!(ours[0].raw.len() < 512_000);
}

/// A CONNECT proxy that ends TLS with `tls` and passes what it decrypts to
/// `target` in clear: how a test stands in for a fixed https URL.
#[cfg(feature = "system-tests")]
fn tls_proxy(tls: Arc<tokio_rustls::rustls::ServerConfig>, target: std::net::SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let addr = std_listener.local_addr().unwrap();
    tokio::spawn(async move {
        let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // The CONNECT request, up to its blank line.
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if conn.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                assert!(head.starts_with(b"CONNECT events.pagerduty.com:443 "));
                conn.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let Ok(mut tls) = acceptor.accept(conn).await else {
                    return;
                };
                let mut upstream = tokio::net::TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
            });
        }
    });
    format!("http://{addr}")
}

#[cfg(feature = "system-tests")]
fn tls_config(dir: &std::path::Path) -> Arc<tokio_rustls::rustls::ServerConfig> {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = make_certs(dir);
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&certs.cert)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let key = PrivateKeyDer::from_pem_file(&certs.key).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Arc::new(
        rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
    )
}

/// A v1 config whose fixed URL is reached through a local proxy to the
/// fake at `base`.
#[cfg(feature = "system-tests")]
fn v1_config(
    tls: &Arc<tokio_rustls::rustls::ServerConfig>,
    base: &str,
    group_interval: &str,
) -> String {
    let target = url::Url::parse(base)
        .unwrap()
        .socket_addrs(|| None)
        .unwrap()[0];
    let proxy = tls_proxy(tls.clone(), target);
    config_every(
        group_interval,
        &format!(
            r#"      - service_key: 'svc-{{{{ .GroupLabels.team }}}}'
        url: http://ignored.example/by-v1
        client: 'Herald {{{{ .Receiver }}}}'
        details:
          team: '{{{{ .GroupLabels.team }}}}'
        http_config:
          proxy_url: '{proxy}'
          tls_config:
            insecure_skip_verify: true
"#
        ),
    )
}

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn v1_firing_then_resolved_match_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_config(dir.path());
    let alerts = firing("DiskFull", &["db1"]);
    let (ours, theirs) = differential(
        |base| v1_config(&tls, base, "1s"),
        Arc::new(|_, _| Reply::json(200, json!({"status": "success", "incident_key": "x"}))),
        &alerts,
        1,
        2,
    )
    .await;
    assert_same(&ours, &theirs);
    let (fired, done) = (&ours[0].body, &ours[1].body);
    assert_eq!(ours[0].line(), "POST /generic/2010-04-15/create_event.json");
    assert_eq!(fired["service_key"], "svc-db");
    assert_eq!(fired["event_type"], "trigger");
    assert_eq!(fired["client"], "Herald pd");
    assert_eq!(fired["details"]["num_firing"], 1);
    assert_eq!(done["event_type"], "resolve");
    assert_eq!(done.get("client"), None);
    assert_eq!(fired["incident_key"], done["incident_key"]);
}

/// v1 is rate-limited with 403, which is retried; a v1 400 is not.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn v1_retries_403_but_not_400() {
    let dir = tempfile::tempdir().unwrap();
    let tls = tls_config(dir.path());
    let pd = FakeService::with(Arc::new(|_, seen: &[Exchange]| match seen.len() {
        0 => Reply::json(403, json!({"status": "throttled"})),
        _ => Reply::json(200, json!({"status": "success"})),
    }))
    .await;
    let h = start_herald(&v1_config(&tls, &pd.url(""), "1h"), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let seen = pd.wait(2, T).await;
    assert_eq!(seen[1].body["event_type"], "trigger");
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_total{integration="pagerduty"}"#,
        1.0,
    )
    .await;

    pd.respond(Arc::new(|_, _| {
        Reply::json(
            400,
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["bad"]}),
        )
    }));
    let before = pd.count();
    post_alerts(&h.base, &firing("B", &["i1"])).await;
    // Go never labelled v1 failures by status.
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="pagerduty",reason="other"}"#,
        1.0,
    )
    .await;
    assert_eq!(pd.count(), before + 1, "a v1 400 must not be retried");
}

#[tokio::test(flavor = "multi_thread")]
async fn v2_retries_5xx_and_429_after_retry_after_but_not_400() {
    let pd = FakeService::with(Arc::new(|_, seen: &[Exchange]| match seen.len() {
        0 => Reply::json(500, json!({"status": "error"})),
        1 => Reply::json(429, json!({"status": "throttled"})).with_header("retry-after", "2"),
        _ => Reply::json(202, json!({"status": "success"})),
    }))
    .await;
    let h = start_herald(
        &config_every(
            "1h",
            &format!(
                "      - routing_key: k\n        url: '{}'\n",
                pd.url("v2/enqueue")
            ),
        ),
        &[],
    )
    .await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    pd.wait(3, T).await;
    let at = wait_counter(
        &h.base,
        r#"alertmanager_notifications_total{integration="pagerduty"}"#,
        1.0,
    )
    .await;
    assert_eq!(at, 1.0);
    let failed = |reason: &str| {
        format!(
            r#"alertmanager_notifications_failed_total{{integration="pagerduty",reason="{reason}"}}"#
        )
    };
    // Retries within one notification are not failures of it.
    assert_eq!(counter(&h.base, &failed("serverError")).await, 0.0);
    assert!(pd
        .requests()
        .iter()
        .all(|e| e.body["event_action"] == "trigger"));

    pd.respond(Arc::new(|_, _| {
        Reply::json(
            400,
            json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["Length of 'routing_key' is incorrect"]}),
        )
    }));
    post_alerts(&h.base, &firing("B", &["i1"])).await;
    wait_counter(&h.base, &failed("clientError"), 1.0).await;
    assert_eq!(pd.count(), 4, "a 400 must not be retried");
}

/// The wait a 429 asks for is kept between the attempts.
#[tokio::test(flavor = "multi_thread")]
async fn v2_429_waits_for_retry_after() {
    let stamps = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s = stamps.clone();
    let pd = FakeService::with(Arc::new(move |_, seen: &[Exchange]| {
        s.lock().unwrap().push(std::time::Instant::now());
        match seen.len() {
            0 => Reply::json(429, json!({})).with_header("retry-after", "2"),
            _ => Reply::json(202, json!({"status": "success"})),
        }
    }))
    .await;
    let h = start_herald(
        &config_every(
            "1h",
            &format!(
                "      - routing_key: k\n        url: '{}'\n",
                pd.url("v2/enqueue")
            ),
        ),
        &[],
    )
    .await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    pd.wait(2, T).await;
    let at = stamps.lock().unwrap().clone();
    let gap = at[1] - at[0];
    // Backoff alone would retry after 0.25–0.75s.
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
    drop(h);
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_secret_in_the_status() {
    let h = start_herald(
        &config(
            "      - routing_key: rk-sekrit\n      - service_key: sk-sekrit\n        client: x\n",
        ),
        &[],
    )
    .await;
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(!original.contains("sekrit"), "{original}");
    assert_eq!(original.matches("<secret>").count(), 2, "{original}");
}

/// `timeout` ends an attempt PagerDuty does not answer, and the next one
/// starts: without it the first attempt would hang for the whole flush.
#[tokio::test(flavor = "multi_thread")]
async fn timeout_ends_an_unanswered_attempt() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(std::sync::Mutex::new(Vec::new()));
    let held = conns.clone();
    tokio::spawn(async move {
        // Accepted and never answered.
        while let Ok((c, _)) = listener.accept().await {
            held.lock().unwrap().push(c);
        }
    });
    let h = start_herald(
        &config_every(
            "1h",
            &format!("      - routing_key: k\n        url: 'http://{addr}/v2/enqueue'\n        timeout: 1s\n"),
        ),
        &[],
    )
    .await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let seen = conns.clone();
    wait_for("a second attempt", Duration::from_secs(10), move || {
        (seen.lock().unwrap().len() >= 2).then_some(())
    })
    .await;
}
