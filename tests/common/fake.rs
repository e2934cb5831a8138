//! A stand-in for an integration's real service (PagerDuty, Opsgenie,
//! Telegram, Jira, ...): it records every request whatever its method, and
//! answers through a rule the test gives, so that a test can play the
//! service's protocol (a token endpoint, a search that finds an issue, a
//! `{"ok":true}` body) and then compare what Herald and Alertmanager sent.
//!
//! `differential` runs the same config and alerts through Herald and the
//! reference Alertmanager, each against its own `FakeService`, and returns
//! both request logs for the test to compare.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;
use serde_json::Value;

/// One request as the service saw it.
#[derive(Clone, Debug)]
pub struct Exchange {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`), empty when there is none.
    pub query: String,
    pub headers: HeaderMap,
    pub raw: Vec<u8>,
    /// The body parsed as JSON, `Null` when it is not JSON.
    pub body: Value,
    /// When it arrived: the gap between two is how long a retry waited.
    pub at: Instant,
}

impl Exchange {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query's pairs, decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    /// A form-encoded body's pairs, decoded, in order.
    pub fn form_pairs(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.raw)
            .into_owned()
            .collect()
    }

    /// `POST /v2/alerts?identifierType=alias`: what a test compares first.
    pub fn line(&self) -> String {
        if self.query.is_empty() {
            format!("{} {}", self.method, self.path)
        } else {
            format!("{} {}?{}", self.method, self.path, self.query)
        }
    }
}

/// An answer of the fake service.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: String::new(),
        }
    }

    pub fn json(status: u16, body: Value) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn text(status: u16, body: &str) -> Reply {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// How the service answers: called for each request with the requests
/// seen before it (so a rule can answer the n-th call differently).
pub type Responder = Arc<dyn Fn(&Exchange, &[Exchange]) -> Reply + Send + Sync>;

/// Answers the first `n` requests with `failure`, the rest with `then`:
/// the retry tests' service.
pub fn fail_first(n: usize, failure: Reply, then: Reply) -> Responder {
    Arc::new(move |_, seen| {
        if seen.len() < n {
            failure.clone()
        } else {
            then.clone()
        }
    })
}

#[derive(Clone)]
pub struct FakeService {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Exchange>>>,
    responder: Arc<Mutex<Responder>>,
}

impl FakeService {
    /// A service answering every request with `reply`.
    pub async fn start(reply: Reply) -> FakeService {
        Self::with(Arc::new(move |_, _| reply.clone())).await
    }

    /// A service answering through `responder`.
    pub async fn with(responder: Responder) -> FakeService {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let svc = FakeService {
            addr: listener.local_addr().unwrap(),
            seen: Arc::default(),
            responder: Arc::new(Mutex::new(responder)),
        };
        let app = Router::new().fallback(answer).with_state(svc.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        svc
    }

    /// Replaces the rule for the requests still to come.
    pub fn respond(&self, responder: Responder) {
        *self.responder.lock().unwrap() = responder;
    }

    /// `http://127.0.0.1:port/<path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}/{}", self.addr, path.trim_start_matches('/'))
    }

    pub fn requests(&self) -> Vec<Exchange> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Waits until at least `n` requests arrived and returns them all.
    pub async fn wait(&self, n: usize, timeout: Duration) -> Vec<Exchange> {
        let me = self.clone();
        super::wait_for(
            &format!("{n} requests to the fake service"),
            timeout,
            move || {
                let seen = me.seen.lock().unwrap();
                (seen.len() >= n).then(|| seen.clone())
            },
        )
        .await
    }
}

async fn answer(
    State(svc): State<FakeService>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, String) {
    let ex = Exchange {
        method: method.to_string(),
        path: uri.path().to_string(),
        query: uri.query().unwrap_or("").to_string(),
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        raw: body.to_vec(),
        at: Instant::now(),
    };
    let responder = svc.responder.lock().unwrap().clone();
    let reply = {
        let seen = svc.seen.lock().unwrap();
        responder(&ex, &seen)
    };
    svc.seen.lock().unwrap().push(ex);
    let mut h = HeaderMap::new();
    for (k, v) in &reply.headers {
        h.insert(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    (StatusCode::from_u16(reply.status).unwrap(), h, reply.body)
}

/// Alerts without `startsAt`, so each server stamps them when they arrive
/// (one stamped before the servers started would be older than
/// `group_wait` by then, and Alertmanager flushes such a group before the
/// rest of the request is in it), one per `instance`, all in the group
/// `alertname`/`team` of the configs `differential` expects.
pub fn firing(alertname: &str, instances: &[&str]) -> Value {
    Value::Array(
        instances
            .iter()
            .map(|i| {
                serde_json::json!({
                    "labels": {"alertname": alertname, "instance": i, "team": "db", "severity": "critical"},
                    "annotations": {"summary": format!("{alertname} on {i}"), "description": "Disk <95%> full & \"rising\""},
                    "generatorURL": "http://prometheus.test:9090/graph?g0.expr=up",
                })
            })
            .collect(),
    )
}

/// The same alerts ended now.
pub fn resolved(alerts: &Value) -> Value {
    let now = jiff::Timestamp::now().to_string();
    let mut out = alerts.clone();
    for a in out.as_array_mut().unwrap() {
        a["endsAt"] = Value::String(now.clone());
    }
    out
}

/// Runs one scenario through Herald and the reference Alertmanager 0.33.1:
/// each gets `config(<its fake service's base URL>)` and its own
/// `FakeService` answering through `responder`; the alerts are posted
/// firing, then, once `after_firing` requests arrived, resolved, and the
/// logs are returned once `after_resolved` requests (in all) arrived. A
/// config should use `group_by: [alertname, team]`, `group_wait: 1s`,
/// `group_interval: 1s` so that both send within seconds.
///
/// Returns (Herald's requests, Alertmanager's requests).
#[cfg(feature = "system-tests")]
pub async fn differential(
    config: impl Fn(&str) -> String,
    responder: Responder,
    alerts: &Value,
    after_firing: usize,
    after_resolved: usize,
) -> (Vec<Exchange>, Vec<Exchange>) {
    let t = Duration::from_secs(30);
    let ours = FakeService::with(responder.clone()).await;
    let theirs = FakeService::with(responder).await;
    let h = super::start_herald(&config(&ours.url("")), &[]).await;
    let am = super::start_alertmanager(&config(&theirs.url(""))).await;
    super::post_alerts(&h.base, alerts).await;
    super::post_alerts(&am.base, alerts).await;
    ours.wait(after_firing, t).await;
    theirs.wait(after_firing, t).await;
    if after_resolved > after_firing {
        let done = resolved(alerts);
        super::post_alerts(&h.base, &done).await;
        super::post_alerts(&am.base, &done).await;
    }
    let o = ours.wait(after_resolved, t).await;
    let a = theirs.wait(after_resolved, t).await;
    drop((h, am));
    (o, a)
}

/// Replaces, in a JSON value, every string that looks like a timestamp
/// (RFC 3339) with `<time>` and every value under one of `keys` with
/// `<ignored>`, so that two runs of the same scenario compare equal.
pub fn normalize(v: &Value, keys: &[&str]) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    if keys.contains(&k.as_str()) {
                        (k.clone(), Value::String("<ignored>".into()))
                    } else {
                        (k.clone(), normalize(x, keys))
                    }
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|x| normalize(x, keys)).collect()),
        Value::String(s) if s.parse::<jiff::Timestamp>().is_ok() => Value::String("<time>".into()),
        other => other.clone(),
    }
}
