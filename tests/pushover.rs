//! The Pushover integration. Its API URL is fixed (in Alertmanager too), so
//! both servers reach the stand-in through `http_config.proxy_url`: a
//! CONNECT proxy that ends the TLS of `api.pushover.net` with a test
//! certificate (trusted through `tls_config`) and passes the request on to
//! a `FakeService`. Compared with Alertmanager 0.33.1: the query string of
//! the firing and resolved messages, with the defaults and with every key;
//! then 5xx and 429 (after its Retry-After) retried, 4xx permanent.

// Needs openssl for the certificate and, for the differential tests,
// Alertmanager 0.33.1: the system tier only.
#![cfg(feature = "system-tests")]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake::*;
use common::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

const T: Duration = Duration::from_secs(30);

/// Terminates the TLS of whatever host a client CONNECTs to with the test
/// certificate (for `localhost`) and relays the plain HTTP to the fake.
#[derive(Clone)]
struct Intercept {
    acceptor: tokio_rustls::TlsAcceptor,
    /// The CONNECT request lines seen.
    connects: Arc<Mutex<Vec<String>>>,
}

impl Intercept {
    fn new(certs: &Certs) -> Intercept {
        let chain = CertificateDer::pem_file_iter(&certs.cert)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&certs.key).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Intercept {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
            connects: Arc::default(),
        }
    }

    /// A proxy in front of `target`; its URL. Callable from synchronous
    /// code inside the runtime (the config closures of `differential`).
    fn proxy_to(&self, target: SocketAddr) -> String {
        let std = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std.set_nonblocking(true).unwrap();
        let addr = std.local_addr().unwrap();
        let listener = tokio::net::TcpListener::from_std(std).unwrap();
        let me = self.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(me.clone().relay(sock, target));
            }
        });
        format!("http://{addr}")
    }

    async fn relay(self, mut sock: tokio::net::TcpStream, target: SocketAddr) {
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match sock.read(&mut b).await {
                Ok(1) => head.push(b[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let line = head.lines().next().unwrap_or("").to_string();
        self.connects.lock().unwrap().push(line.clone());
        if !line.starts_with("CONNECT ") {
            let _ = sock
                .write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                .await;
            return;
        }
        if sock
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await
            .is_err()
        {
            return;
        }
        let Ok(mut tls) = self.acceptor.accept(sock).await else {
            return;
        };
        let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await else {
            return;
        };
        let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
    }
}

fn config(proxy: &str, ca: &Path, pushover_configs: &str, group_interval: &str) -> String {
    format!(
        r#"
route:
  receiver: po
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: {group_interval}
receivers:
  - name: po
    pushover_configs:
      - http_config:
          proxy_url: {proxy}
          tls_config:
            ca_file: {ca}
            server_name: localhost
{pushover_configs}
"#,
        ca = ca.display()
    )
}

/// Alerts stamped by each server on arrival (see tests/wechat.rs).
fn fresh(mut alerts: serde_json::Value) -> serde_json::Value {
    for a in alerts.as_array_mut().unwrap() {
        a.as_object_mut().unwrap().remove("startsAt");
    }
    alerts
}

fn fake_addr(base: &str) -> SocketAddr {
    base.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap()
}

async fn compare(pushover_configs: &str) -> Vec<Exchange> {
    let dir = tempfile::tempdir().unwrap();
    let certs = make_certs(dir.path());
    let intercept = Intercept::new(&certs);
    let alerts = fresh(firing("DiskFull", &["db1", "db2"]));
    let (ours, theirs) = differential(
        |base| {
            config(
                &intercept.proxy_to(fake_addr(base)),
                &certs.ca,
                pushover_configs,
                "1s",
            )
        },
        Arc::new(|_, _| Reply::json(200, json!({"status": 1, "request": "r-1"}))),
        &alerts,
        1,
        2,
    )
    .await;
    assert_eq!(ours.len(), theirs.len(), "request count");
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.method, t.method);
        assert_eq!(o.path, t.path);
        // Pair by pair, so that a difference names its parameter.
        assert_eq!(o.query_pairs(), t.query_pairs());
        assert_eq!(o.query, t.query, "the encoding of the query");
        for h in ["content-type", "content-length", "host"] {
            assert_eq!(o.header(h), t.header(h), "{h}");
        }
        assert_eq!(o.raw, t.raw);
    }
    let connects = intercept.connects.lock().unwrap().clone();
    assert!(
        connects
            .iter()
            .all(|l| l.starts_with("CONNECT api.pushover.net:443 ")),
        "{connects:?}"
    );
    ours
}

fn param(e: &Exchange, k: &str) -> Option<String> {
    e.query_pairs()
        .into_iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v)
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_match_alertmanager() {
    let got = compare("        user_key: 'user key/1'\n        token: 'app+token'\n").await;
    assert_eq!(
        got[0].line().split('?').next(),
        Some("POST /1/messages.json")
    );
    assert_eq!(param(&got[0], "token").as_deref(), Some("app+token"));
    assert_eq!(param(&got[0], "priority").as_deref(), Some("2"));
    assert_eq!(param(&got[1], "priority").as_deref(), Some("0"));
    assert_eq!(param(&got[0], "retry").as_deref(), Some("60"));
    assert_eq!(param(&got[0], "ttl"), None);
    assert_eq!(got[0].raw, b"");
}

/// Every key, HTML escaping and the rune limits of title, message and URL.
#[tokio::test(flavor = "multi_thread")]
async fn every_key_and_the_limits_match_alertmanager() {
    let keys = format!(
        r#"        user_key: u
        token: t
        title: '{{{{ range .Alerts }}}}{title} {{{{ .Labels.instance }}}} {{{{ end }}}}'
        message: '<b>{{{{ .Status }}}}</b> {{{{ range .Alerts }}}}{{{{ .Annotations.description }}}} {message} {{{{ end }}}}'
        url: 'http://am.test/{{{{ range .Alerts }}}}{{{{ .Labels.instance }}}}/{url}/{{{{ end }}}}'
        url_title: 'Open {{{{ .GroupLabels.alertname }}}}'
        device: 'phone-{{{{ .CommonLabels.team }}}}'
        sound: siren
        priority: '{{{{ if eq .Status "firing" }}}}1{{{{ else }}}}-1{{{{ end }}}}'
        retry: 1m30s
        expire: 1.5h
        ttl: 2h45m30.9s
        html: true
"#,
        title = "Ünïcödé ".repeat(20),
        message = "✓".repeat(600),
        url = "ä".repeat(300),
    );
    let got = compare(&keys).await;
    let title = param(&got[0], "title").unwrap();
    assert_eq!(title.chars().count(), 250, "{title}");
    assert!(title.ends_with('…'));
    let message = param(&got[0], "message").unwrap();
    assert_eq!(message.chars().count(), 1024);
    // The template's own markup stays, the data is escaped.
    assert!(
        message.starts_with("<b>firing</b> Disk &lt;95%&gt; full &amp; &#34;rising&#34;"),
        "{message}"
    );
    assert_eq!(param(&got[0], "url").unwrap().chars().count(), 512);
    assert_eq!(param(&got[0], "html").as_deref(), Some("1"));
    assert_eq!(param(&got[0], "ttl").as_deref(), Some("9930"));
    assert_eq!(param(&got[0], "expire").as_deref(), Some("5400"));
    assert_eq!(param(&got[1], "priority").as_deref(), Some("-1"));
}

/// Herald alone against the stand-in: (Herald, the fake, the request
/// times).
async fn herald_against(
    dir: &Path,
    answer: impl Fn(usize) -> Reply + Send + Sync + 'static,
) -> (Server, FakeService, Arc<Mutex<Vec<Instant>>>) {
    let certs = make_certs(dir);
    let intercept = Intercept::new(&certs);
    let at = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = at.clone();
    let svc = FakeService::with(Arc::new(move |_, before: &[Exchange]| {
        seen.lock().unwrap().push(Instant::now());
        answer(before.len() + 1)
    }))
    .await;
    let proxy = intercept.proxy_to(svc.addr);
    let h = start_herald(
        &config(
            &proxy,
            &certs.ca,
            "        user_key: u\n        token: t\n",
            "1h",
        ),
        &[],
    )
    .await;
    (h, svc, at)
}

/// 5xx is retried with backoff; 429 no sooner than its Retry-After.
#[tokio::test(flavor = "multi_thread")]
async fn server_errors_and_rate_limits_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (h, svc, at) = herald_against(dir.path(), |n| match n {
        1 => Reply::text(500, "oops"),
        2 => Reply::json(429, json!({"status": 0, "errors": ["too many"]}))
            .with_header("retry-after", "2"),
        _ => Reply::json(200, json!({"status": 1})),
    })
    .await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    svc.wait(3, T).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notification_requests_total{integration="pushover"}"#,
        3.0,
    )
    .await;
    assert_eq!(
        counter(
            &h.base,
            r#"alertmanager_notification_requests_failed_total{integration="pushover"}"#
        )
        .await,
        2.0
    );
    let at = at.lock().unwrap().clone();
    let gap = at[2] - at[1];
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
}

/// Pushover's 4xx (a bad token or user) is permanent.
#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_permanent() {
    let dir = tempfile::tempdir().unwrap();
    let (h, svc, _) = herald_against(dir.path(), |_| {
        Reply::json(
            400,
            json!({"user": "invalid", "errors": ["user identifier is invalid"], "status": 0}),
        )
    })
    .await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="pushover",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(svc.count(), 1, "a 4xx must not be retried");
}
