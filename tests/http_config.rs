//! `http_config` end to end: OAuth2 client credentials against a token
//! endpoint the test runs, `http_headers` (files read per request),
//! `proxy_connect_header` seen by a proxy, the
//! refusals (reserved headers, `*_ref` keys), the webhook `timeout`, the
//! web config's `rate_limit`, and (system tier) config acceptance compared
//! with Alertmanager 0.33.1's `amtool check-config`.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use common::*;
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(30);

fn alert(name: &str) -> Value {
    json!({"labels": {"alertname": name}, "startsAt": jiff::Timestamp::now().to_string()})
}

fn config(webhook: &str) -> String {
    format!(
        r#"
route:
  receiver: hook
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1h
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
{webhook}
"#
    )
}

/// One request to the token endpoint: its form fields and Authorization.
#[derive(Clone, Debug)]
struct TokenRequest {
    form: HashMap<String, String>,
    authorization: Option<String>,
}

/// A token endpoint: hands out `tok-1`, `tok-2`, ... with `expires_in`,
/// after `delay`. With `params_only` it refuses client auth by HTTP basic
/// auth and wants the id and secret as form fields.
#[derive(Clone)]
struct TokenServer {
    requests: Arc<Mutex<Vec<TokenRequest>>>,
    issued: Arc<Mutex<Vec<String>>>,
    expires_in: u64,
    delay: Duration,
    params_only: bool,
    url: String,
}

impl TokenServer {
    async fn start(expires_in: u64, delay: Duration, params_only: bool) -> TokenServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/oauth/token", listener.local_addr().unwrap());
        let s = TokenServer {
            requests: Arc::default(),
            issued: Arc::default(),
            expires_in,
            delay,
            params_only,
            url,
        };
        let app = Router::new()
            .route("/oauth/token", post(issue))
            .with_state(s.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        s
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.requests.lock().unwrap().clone()
    }
}

/// JSON with its content type: golang.org/x/oauth2 (and Herald) read a
/// `text/plain` answer as form-encoded.
type TokenAnswer = (StatusCode, [(&'static str, &'static str); 1], String);

async fn issue(State(s): State<TokenServer>, headers: HeaderMap, body: String) -> TokenAnswer {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    s.requests.lock().unwrap().push(TokenRequest {
        form: form.clone(),
        authorization: authorization.clone(),
    });
    tokio::time::sleep(s.delay).await;
    let authenticated = if s.params_only {
        authorization.is_none()
            && form.get("client_id").map(String::as_str) == Some("herald")
            && form.get("client_secret").map(String::as_str) == Some("s3cret/x")
    } else {
        // Go escapes id and secret (url.QueryEscape) before basic auth.
        let want = base64::engine::general_purpose::STANDARD.encode("herald:s3cret%2Fx");
        authorization == Some(format!("Basic {want}"))
    };
    if !authenticated {
        return (
            StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            r#"{"error":"invalid_client"}"#.into(),
        );
    }
    let token = {
        let mut issued = s.issued.lock().unwrap();
        let t = format!("tok-{}", issued.len() + 1);
        issued.push(t.clone());
        t
    };
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({"access_token": token, "token_type": "bearer", "expires_in": s.expires_in})
            .to_string(),
    )
}

/// A receiver that accepts only a bearer token the token endpoint issued,
/// and records the ones it accepted.
#[derive(Clone)]
struct GuardedReceiver {
    issued: Arc<Mutex<Vec<String>>>,
    accepted: Arc<Mutex<Vec<String>>>,
    refused: Arc<Mutex<usize>>,
    url: String,
}

impl GuardedReceiver {
    async fn start(tokens: &TokenServer) -> GuardedReceiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let r = GuardedReceiver {
            issued: tokens.issued.clone(),
            accepted: Arc::default(),
            refused: Arc::default(),
            url: format!("http://{}/hook", listener.local_addr().unwrap()),
        };
        let app = Router::new()
            .route("/hook", post(guarded))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        r
    }

    fn accepted(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }
}

async fn guarded(State(r): State<GuardedReceiver>, headers: HeaderMap) -> StatusCode {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    match token {
        Some(t) if r.issued.lock().unwrap().contains(&t) => {
            r.accepted.lock().unwrap().push(t);
            StatusCode::OK
        }
        _ => {
            *r.refused.lock().unwrap() += 1;
            StatusCode::UNAUTHORIZED
        }
    }
}

/// `wait_for` that shows Herald's log when the condition never holds.
async fn wait_logged(herald: &Server, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !f() {
        if Instant::now() > deadline {
            panic!(
                "timed out waiting for {what}; log:\n{}",
                herald.log.lock().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn oauth2_webhook(receiver: &GuardedReceiver, tokens: &TokenServer, secret_file: &str) -> String {
    format!(
        r#"      - url: {url}
        http_config:
          oauth2:
            client_id: herald
            client_secret_file: {secret_file}
            token_url: {token_url}
            scopes: [read, write]
            endpoint_params:
              audience: alertmanager
"#,
        url = receiver.url,
        token_url = tokens.url,
    )
}

/// Concurrent notifications of one integration share a single token
/// request; the token is reused while it is valid; the form and the client
/// authentication are what golang.org/x/oauth2 sends.
#[tokio::test]
async fn oauth2_token_is_fetched_once_and_shared() {
    let tokens = TokenServer::start(3600, Duration::from_millis(300), false).await;
    let receiver = GuardedReceiver::start(&tokens).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret/x\n").unwrap();
    let herald = start_herald(
        &config(&oauth2_webhook(
            &receiver,
            &tokens,
            secret.to_str().unwrap(),
        )),
        &[],
    )
    .await;
    let alerts: Vec<Value> = (0..4).map(|i| alert(&format!("A{i}"))).collect();
    assert_eq!(post_alerts(&herald.base, &json!(alerts)).await.0, 200);
    let r = receiver.clone();
    wait_logged(&herald, "four notifications", move || {
        r.accepted().len() >= 4
    })
    .await;
    assert_eq!(receiver.accepted(), vec!["tok-1"; 4]);
    let reqs = tokens.requests();
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    let form = &reqs[0].form;
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(form["scope"], "read write");
    assert_eq!(form["audience"], "alertmanager");
    assert!(!form.contains_key("client_secret"), "{form:?}");
    // A later notification still uses the cached token.
    assert_eq!(post_alerts(&herald.base, &json!([alert("B")])).await.0, 200);
    let r = receiver.clone();
    wait_logged(&herald, "fifth notification", move || {
        r.accepted().len() >= 5
    })
    .await;
    assert_eq!(tokens.requests().len(), 1);
}

/// A token that expires within Go's 10 s margin is fetched anew for each
/// notification; a server that refuses basic auth gets the credentials as
/// form fields, and later fetches go straight to that style.
#[tokio::test]
async fn oauth2_short_lived_token_is_refreshed_with_form_credentials() {
    let tokens = TokenServer::start(10, Duration::ZERO, true).await;
    let receiver = GuardedReceiver::start(&tokens).await;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "s3cret/x").unwrap();
    let herald = start_herald(
        &config(&oauth2_webhook(
            &receiver,
            &tokens,
            secret.to_str().unwrap(),
        )),
        &[],
    )
    .await;
    assert_eq!(post_alerts(&herald.base, &json!([alert("A")])).await.0, 200);
    let r = receiver.clone();
    wait_logged(&herald, "first notification", move || {
        !r.accepted().is_empty()
    })
    .await;
    assert_eq!(post_alerts(&herald.base, &json!([alert("B")])).await.0, 200);
    let r = receiver.clone();
    wait_logged(&herald, "second notification", move || {
        r.accepted().len() >= 2
    })
    .await;
    assert_eq!(receiver.accepted(), vec!["tok-1", "tok-2"]);
    let reqs = tokens.requests();
    // Basic auth tried and refused, then form fields; then form fields only.
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    assert!(reqs[0].authorization.is_some());
    assert!(reqs[1].authorization.is_none() && reqs[2].authorization.is_none());
    assert_eq!(reqs[2].form["client_secret"], "s3cret/x");
    assert_eq!(*receiver.refused.lock().unwrap(), 0);
}

/// `http_headers`: values, secrets and file contents all arrive; a file is
/// read for each request, so a rotated value is used without a reload.
#[tokio::test]
async fn http_headers_are_sent_and_files_read_per_request() {
    let hook = Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tenant");
    std::fs::write(&file, "first\n").unwrap();
    let herald = start_herald(
        &config(&format!(
            r#"      - url: {url}
        http_config:
          http_headers:
            x-scope-orgid:
              values: [team-a, team-b]
              secrets: [hidden]
            X-Tenant:
              files: [{file}]
"#,
            url = hook.url("/h"),
            file = file.display()
        )),
        &[],
    )
    .await;
    assert_eq!(post_alerts(&herald.base, &json!([alert("A")])).await.0, 200);
    let first = hook.nth(1, T).await;
    let values = |r: &Received, name: &str| -> Vec<String> {
        r.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        values(&first, "x-scope-orgid"),
        ["team-a", "team-b", "hidden"]
    );
    assert_eq!(values(&first, "x-tenant"), ["first"]);
    std::fs::write(&file, "second").unwrap();
    assert_eq!(post_alerts(&herald.base, &json!([alert("B")])).await.0, 200);
    let second = hook.nth(2, T).await;
    assert_eq!(values(&second, "x-tenant"), ["second"]);
    // The secret is not shown in the status API.
    let status = get_json(&format!("{}/api/v2/status", herald.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(!original.contains("hidden"), "{original}");
}

/// `proxy_connect_header` reaches the proxy: the test's receiver stands in
/// for a forward proxy (a plain-HTTP request through a proxy is sent to it
/// in absolute form, with the proxy's headers).
#[tokio::test]
async fn proxy_connect_header_is_sent_to_the_proxy() {
    let proxy = Webhook::start().await;
    let herald = start_herald(
        &config(&format!(
            r#"      - url: http://receiver.invalid/through-proxy
        http_config:
          proxy_url: {proxy}
          proxy_connect_header:
            X-Proxy-Team: [ops]
            Proxy-Authorization: [Basic b3BzOnMzY3JldA==]
"#,
            proxy = proxy.url("/").trim_end_matches('/')
        )),
        &[],
    )
    .await;
    assert_eq!(post_alerts(&herald.base, &json!([alert("P")])).await.0, 200);
    let got = proxy.nth(1, T).await;
    assert_eq!(got.path, "/through-proxy");
    assert_eq!(got.headers.get("host").unwrap(), "receiver.invalid");
    assert_eq!(got.headers.get("x-proxy-team").unwrap(), "ops");
    assert_eq!(
        got.headers.get("proxy-authorization").unwrap(),
        "Basic b3BzOnMzY3JldA=="
    );
}

fn check_config(yaml: &str) -> (bool, String) {
    check_config_text(std::path::Path::new(herald_bin()), yaml)
}

fn with_http_config(http_config: &str) -> String {
    config(&format!(
        "      - url: http://127.0.0.1:1/x\n        http_config:\n{}",
        http_config
            .lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>()
    ))
}

#[test]
fn reserved_headers_are_refused() {
    for (name, canonical) in [
        ("authorization", "Authorization"),
        ("user-agent", "User-Agent"),
        ("X-AMZ-DATE", "X-Amz-Date"),
    ] {
        let (ok, out) = check_config(&with_http_config(&format!(
            "http_headers:\n  {name}:\n    values: [x]"
        )));
        assert!(!ok, "{out}");
        assert!(
            out.contains(&format!(r#"setting header "{canonical}" is not allowed"#)),
            "{out}"
        );
    }
}

/// A `*_ref` key passes `check-config` (as with amtool) but the server
/// refuses the config, naming the secret as Alertmanager does.
#[tokio::test]
async fn secret_refs_are_refused_at_load() {
    for (http_config, what) in [
        ("basic_auth: {username_ref: u}", "username"),
        ("basic_auth: {username: u, password_ref: p}", "password"),
        ("authorization: {credentials_ref: c}", "credentials"),
        ("tls_config: {ca_ref: c}", "CA cert"),
        (
            "oauth2: {client_id: a, client_secret_ref: s, token_url: 'http://127.0.0.1:1/t'}",
            "client secret",
        ),
    ] {
        let yaml = with_http_config(http_config);
        let (ok, out) = check_config(&yaml);
        assert!(ok, "{http_config}: {out}");
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yml");
        std::fs::write(&f, &yaml).unwrap();
        let mut child = tokio::process::Command::new(herald_bin())
            .arg(format!("--config.file={}", f.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg("--web.listen-address=127.0.0.1:0")
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let status = tokio::time::timeout(T, child.wait())
            .await
            .expect("herald keeps running with a secret ref")
            .unwrap();
        let mut log = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut log)
            .await
            .unwrap();
        assert!(!status.success(), "{log}");
        assert!(
            log.contains(&format!(
                "unable to use {what}: cannot use secret ref without manager"
            )),
            "{http_config}: {log}"
        );
    }
}

/// A receiver that answers the first request only after `stall`.
#[derive(Clone, Default)]
struct SlowReceiver {
    arrivals: Arc<Mutex<Vec<Instant>>>,
    completed: Arc<Mutex<usize>>,
}

async fn slow(State(r): State<(SlowReceiver, Duration)>) -> StatusCode {
    let n = {
        let mut a = r.0.arrivals.lock().unwrap();
        a.push(Instant::now());
        a.len()
    };
    if n == 1 {
        tokio::time::sleep(r.1).await;
    }
    *r.0.completed.lock().unwrap() += 1;
    StatusCode::OK
}

/// A receiver slower than `timeout` is cut off; the attempt counts as a
/// failure and is retried, and the retry delivers.
#[tokio::test]
async fn slow_webhook_is_cut_off_by_timeout_and_retried() {
    let stall = Duration::from_secs(20);
    let recv = SlowReceiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/slow", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/slow", post(slow))
        .with_state((recv.clone(), stall));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let herald = start_herald(
        &config(&format!("      - url: {url}\n        timeout: 500ms\n")),
        &[],
    )
    .await;
    assert_eq!(post_alerts(&herald.base, &json!([alert("A")])).await.0, 200);
    let r = recv.clone();
    wait_logged(&herald, "the retry to be answered", move || {
        *r.completed.lock().unwrap() >= 1
    })
    .await;
    let arrivals = recv.arrivals.lock().unwrap().clone();
    let log = herald.log.lock().unwrap().clone();
    assert!(arrivals.len() >= 2, "{arrivals:?}\n{log}");
    // The retry came long before the stalled answer would have.
    assert!(arrivals[1] - arrivals[0] < stall / 2);
    let failed = wait_counter(
        &herald.base,
        r#"alertmanager_notification_requests_failed_total{integration="webhook"}"#,
        1.0,
    )
    .await;
    assert!(failed >= 1.0);
    assert!(
        log.contains("configured webhook timeout reached (500ms)"),
        "{log}"
    );
}

/// `rate_limit`: a bucket of `burst` requests that refills slowly; past it
/// every request is answered 429, whatever the path.
#[tokio::test]
async fn rate_limit_answers_429_when_exceeded() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "rate_limit:\n  burst: 20\n  interval: 1h\n").unwrap();
    let herald = start_herald(
        &config("      - url: http://127.0.0.1:1/x\n"),
        &[&format!("--web.config.file={}", web.display())],
    )
    .await;
    let client = reqwest::Client::new();
    let mut codes = Vec::new();
    for _ in 0..25 {
        let r = client
            .get(format!("{}/api/v2/status", herald.base))
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            assert_eq!(r.text().await.unwrap(), "Too Many Requests\n");
        }
    }
    // The readiness checks took some of the burst; once 429 starts, it
    // stays.
    let first = codes.iter().position(|c| *c == 429).expect("no 429");
    assert!(first > 0, "{codes:?}");
    assert!(codes[..first].iter().all(|c| *c == 200), "{codes:?}");
    assert!(codes[first..].iter().all(|c| *c == 429), "{codes:?}");
    let r = client
        .get(format!("{}/-/healthy", herald.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
}

/// The same configs through Alertmanager 0.33.1's `amtool check-config`
/// and `herald check-config`: accepted and refused alike, with the same
/// reason. The jwt-bearer grant is the one deliberate difference.
#[cfg(feature = "system-tests")]
#[test]
fn config_acceptance_agrees_with_amtool() {
    let amtool = am_current_bin("amtool");
    let cases = [
        "oauth2: {client_id: a, client_secret: b, token_url: 'http://l/t', scopes: [x], endpoint_params: {k: v}}",
        "oauth2: {client_secret: b, token_url: 'http://l/t'}",
        "oauth2: {client_id: a}",
        "oauth2: {client_id: a, client_secret: b, client_secret_file: /x, token_url: 'http://l/t'}",
        "oauth2: {client_id: a, client_secret_ref: b, token_url: 'http://l/t'}",
        "oauth2: {client_id: a, token_url: 'http://l/t', no_proxy: x}",
        "oauth2: {client_id: a, token_url: 'http://l/t', tls_config: {ca: x, ca_file: y}}",
        "oauth2: {client_id: a, token_url: 'http://l/t', proxy_from_environment: true, proxy_url: 'http://p'}",
        "oauth2: {client_id: a, token_url: 'http://l/t', claims: {a: [1, {b: c}]}}",
        "oauth2: {client_id: a, token_url: 'http://l/t', grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', signature_algorithm: HS256}",
        "oauth2: {client_id: a, token_url: 'http://l/t', bogus: 1}",
        "oauth2: {client_id: a, token_url: 'http://l/t'}\nbasic_auth: {username: u}",
        "oauth2: {client_id: a, token_url: 'http://l/t'}\nauthorization: {credentials: a}",
        "oauth2: {client_id: a, token_url: 'http://l/t'}\nbearer_token: a",
        "http_headers: {X-A: {values: [a], secrets: [b], files: [/tmp/x]}}",
        "http_headers: {authorization: {values: [a]}}",
        "http_headers: {x-prometheus-scrape-timeout-seconds: {values: [a]}}",
        "http_headers: {X-A: {value: [a]}}",
        "http_headers:",
        "basic_auth: {username_ref: a}",
        "basic_auth: {username: u, password_ref: a}",
        "basic_auth: {username: u, username_ref: a}",
        "basic_auth: {username: u, username_file: /x}",
        "authorization: {credentials_ref: a}",
        "authorization: {credentials: a, credentials_ref: b}",
        "tls_config: {ca_ref: a}",
        "tls_config: {ca: x, ca_file: /y}",
        "tls_config: {cert: x, cert_ref: y, key: z}",
        "tls_config: {cert: x, key_ref: y, key: z}",
        "tls_config: {cert: x}",
        "tls_config: {key_file: x}",
        "proxy_connect_header: {X: [a]}",
        "proxy_from_environment: true\nno_proxy: x",
    ];
    for case in cases {
        let yaml = with_http_config(case);
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.yml");
        std::fs::write(&f, &yaml).unwrap();
        let out = std::process::Command::new(&amtool)
            .args(["check-config", f.to_str().unwrap()])
            .output()
            .unwrap();
        let am_ok = out.status.success();
        let am_out = String::from_utf8_lossy(&out.stdout).to_string();
        let (ok, out) = check_config(&yaml);
        assert_eq!(ok, am_ok, "{case}\namtool: {am_out}\nherald: {out}");
        if !am_ok {
            let reason = am_out
                .split("FAILED: ")
                .nth(1)
                .map(|r| r.lines().next().unwrap_or("").trim().to_string())
                .unwrap_or_default();
            // yaml.v2's unknown-field wording differs from serde's; the
            // rest must match word for word.
            if !reason.is_empty() && !reason.starts_with("yaml:") {
                assert!(
                    out.contains(&reason),
                    "{case}\namtool: {reason}\nherald: {out}"
                );
            }
        }
    }
    let jwt = with_http_config(
        "oauth2: {client_id: a, grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', client_certificate_key: b, token_url: 'http://l/t'}",
    );
    let (ok, out) = check_config(&jwt);
    assert!(
        !ok && out.contains("jwt-bearer is not supported by Herald"),
        "{out}"
    );
}
