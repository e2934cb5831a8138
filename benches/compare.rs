//! Herald against the real Alertmanager, side by side in one run: ingest
//! rate and request latency with Prometheus-shaped batches, memory held at
//! 10k and 100k alerts, `GET /api/v2/alerts` and `/alerts/groups` latency
//! at those sizes, and notification latency (post → webhook).
//!
//! `cargo bench --bench compare` (needs the reference Alertmanager, 0.33.1:
//! `scripts/reference.sh` unpacks it).
//! `HERALD_BENCH_SIZES=10000,100000` chooses the sizes; `HERALD_BENCH_BIN`
//! runs another Herald binary (an older build) in this build's place.
//! `HERALD_BENCH_ONLY=silences` (a comma-separated list of `alerts`,
//! `slack`, `silences`, `suppressed`, `integrations`, `tail`, `flood`, `routes`) runs only those
//! sections; the default is all of them. `integrations` is the
//! notification latency through each integration, against one stand-in
//! service that answers as each real one does. `silences` is the silence creation rate: 5,000 POSTs to
//! `/api/v2/silences`, one silence each, 8 in flight and then one at a
//! time, where every POST waits for its change to be durable (Herald:
//! committed to SQLite). `tail` is the notification latency's median and
//! p99 over 300 new groups each: idle, under a background ingest load, and
//! with 100,000 alerts stored.
//! `flood` is the memory ceiling of a flood: 300,000 distinct alerts
//! posted as fast as the ingest loop goes, then each server's peak RSS.
//! `routes` is a 1,000-route tree: the ingest rate, and with 100k alerts
//! stored the time `POST /-/reload` takes to answer. `regex_silences` is
//! 5,000 regex silences over 20,000 alerts, `silences20k` 20,000 silences
//! (half regex) over 100,000 alerts (Alertmanager cut off after 60 s),
//! then in Debian's Chromium the first paint of Herald's alerts and
//! silences pages beside the data requests Alertmanager's UI waits for.
//! `history` (only when asked, `HERALD_BENCH_ONLY=history`; no
//! Alertmanager needed) is Herald against itself: the notification history
//! on (the default) and off (`--notification-history.max-records=0`), for
//! notification throughput (2,000 new groups, `group_wait: 0`, flushing to
//! a local webhook) and ingest; rounds (`HERALD_BENCH_ROUNDS`, default 5)
//! alternate so a noisy machine spreads over both, and medians are shown.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const BATCH: usize = 100;
const IN_FLIGHT: usize = 8;
const SEVERITIES: [&str; 3] = ["critical", "warning", "info"];
const ENVS: [&str; 2] = ["prod", "staging"];

mod support;
use support::{status_kib, Proc};

fn config(hook_port: u16, extra: &str) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1h\n  repeat_interval: 24h\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/'}}]\n{extra}"
    )
}

/// 50 inhibit rules: a critical `AlertK` mutes warnings in its cluster and
/// region (so many alerts are inhibited, as in a real outage).
fn inhibit_rules() -> String {
    let mut out = String::from("inhibit_rules:\n");
    for k in 0..50 {
        out.push_str(&format!(
            "  - source_matchers: ['alertname=\"Alert{k}\"', 'severity=\"critical\"']\n    target_matchers: ['severity=\"warning\"']\n    equal: [cluster, region]\n"
        ));
    }
    out
}

/// Posts `n` silences, `make(i, start, end)` the body of the `i`th (two
/// hours from now), `in_flight` requests at a time; returns silences
/// created per second.
async fn post_silences(
    p: &Proc,
    n: usize,
    in_flight: usize,
    make: impl Fn(usize, &str, &str) -> Value + Send + Sync + 'static,
) -> f64 {
    let client = reqwest::Client::new();
    let url = Arc::new(format!("{}/api/v2/silences", p.base));
    let start = jiff::Timestamp::now();
    let end = start
        .checked_add(jiff::SignedDuration::from_hours(2))
        .unwrap();
    let (start, end) = (Arc::new(start.to_string()), Arc::new(end.to_string()));
    let started = Instant::now();
    support::in_flight(n, in_flight, move |i| {
        let (client, url) = (client.clone(), url.clone());
        let body = make(i, &start, &end);
        async move {
            let r = client.post(url.as_str()).json(&body).send().await.unwrap();
            assert!(
                r.status().is_success(),
                "silence POST failed: {}",
                r.status()
            );
        }
    })
    .await;
    n as f64 / started.elapsed().as_secs_f64()
}

/// Creates `n` silences, one per instance, `in_flight` requests at a
/// time; returns silences created per second.
async fn create_silences(p: &Proc, n: usize, in_flight: usize) -> f64 {
    post_silences(p, n, in_flight, |i, start, end| {
        json!({"matchers": [{"name": "instance", "value": format!("host-{i}.example.com:9100"), "isRegex": false}], "startsAt": start, "endsAt": end, "createdBy": "bench", "comment": "maintenance"})
    })
    .await
}

async fn start(name: &'static str, hook_port: u16, extra: &str) -> Proc {
    start_config(name, &config(hook_port, extra)).await
}

/// A Slack receiver rendering the default title plus a text listing every
/// alert's labels and annotations: the template engine's work grows with
/// the group.
fn slack_config(hook_port: u16) -> String {
    format!(
        r#"route:
  receiver: slack
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1h
receivers:
  - name: slack
    slack_configs:
      - api_url: http://127.0.0.1:{hook_port}/slack
        text: '{{{{ range .Alerts }}}}*{{{{ .Labels.alertname }}}}* on {{{{ .Labels.instance }}}} since {{{{ .StartsAt.Format "2006-01-02 15:04" }}}}{{{{ "
" }}}}{{{{ range .Labels.SortedPairs }}}}{{{{ .Name }}}}={{{{ .Value }}}} {{{{ end }}}}{{{{ "
" }}}}{{{{ .Annotations.summary }}}}{{{{ "
" }}}}{{{{ end }}}}'
"#
    )
}

async fn start_config(name: &'static str, config_text: &str) -> Proc {
    support::start_server(name, config_text, None, Duration::from_secs(30))
        .await
        .0
}

fn batch(offset: usize, n: usize, run: &str) -> Value {
    let alerts: Vec<Value> = (offset..offset + n)
        .map(|i| {
            json!({
                "labels": {
                    "alertname": format!("Alert{}", i % 100),
                    "instance": format!("host-{i}.example.com:9100"),
                    "job": "node",
                    "severity": SEVERITIES[i % 3],
                    "team": format!("team-{}", i % 20),
                    "env": ENVS[i % 2],
                    "region": format!("eu-west-{}", i % 3),
                    "service": format!("svc-{}", i % 50),
                    "cluster": format!("k8s-{}", i % 5),
                    "run": run,
                },
                "annotations": {"summary": format!("Something is wrong on host-{i}"), "description": "A longer description of the problem that Prometheus sends with each alert."},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "2099-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph?g0.expr=up%3D%3D0"
            })
        })
        .collect();
    Value::Array(alerts)
}

struct IngestResult {
    alerts_per_sec: f64,
    p99_ms: f64,
}

async fn ingest(p: &Proc, total: usize, run: &str) -> IngestResult {
    let client = reqwest::Client::new();
    let bodies: Vec<Vec<u8>> = (0..total.div_ceil(BATCH))
        .map(|b| serde_json::to_vec(&batch(b * BATCH, BATCH.min(total - b * BATCH), run)).unwrap())
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..IN_FLIGHT {
        let (client, bodies, next, url) = (
            client.clone(),
            bodies.clone(),
            next.clone(),
            format!("{}/api/v2/alerts", p.base),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "POST failed: {}", r.status());
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut lat: Vec<Duration> = Vec::new();
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    let took = started.elapsed();
    lat.sort();
    IngestResult {
        alerts_per_sec: total as f64 / took.as_secs_f64(),
        p99_ms: lat[(lat.len() * 99 / 100).min(lat.len() - 1)].as_secs_f64() * 1e3,
    }
}

async fn get_latency(p: &Proc, path: &str, reps: usize) -> (f64, usize) {
    let client = reqwest::Client::new();
    let mut best = f64::MAX;
    let mut size = 0;
    for _ in 0..reps {
        let t = Instant::now();
        let body = p.get_bytes(&client, path).await;
        best = best.min(t.elapsed().as_secs_f64());
        size = body.len();
    }
    (best * 1e3, size)
}

/// Time from posting a new group of `per_group` alerts (one request) to
/// its Slack message arriving: grouping plus rendering the templates.
async fn slack_latency(p: &Proc, hook: &Hook, groups: usize, per_group: usize) -> f64 {
    let client = reqwest::Client::new();
    let mut lat = Vec::new();
    for g in 0..groups {
        let before = hook.count.load(Ordering::SeqCst);
        let mut body = batch(0, per_group, &format!("slack{g}"));
        let name = format!("Slack{per_group}x{g}-{}", p.name);
        for a in body.as_array_mut().unwrap() {
            a["labels"]["alertname"] = json!(name);
        }
        let t = Instant::now();
        let r = client
            .post(format!("{}/api/v2/alerts", p.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let deadline = Instant::now() + Duration::from_secs(60);
        while hook.count.load(Ordering::SeqCst) == before {
            assert!(
                Instant::now() < deadline,
                "no Slack message from {}",
                p.name
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    lat[lat.len() / 2]
}

#[derive(Clone, Default)]
struct Hook {
    count: Arc<AtomicUsize>,
}

async fn start_hook() -> (Hook, u16) {
    let hook = Hook::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let h = hook.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.count.fetch_add(1, Ordering::SeqCst);
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (hook, port)
}

fn main() {
    support::block_on(run());
}

async fn run() {
    let only = std::env::var("HERALD_BENCH_ONLY").unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s.trim() == section);
    let sizes: Vec<usize> = std::env::var("HERALD_BENCH_SIZES")
        .unwrap_or_else(|_| "10000,100000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    let mut line = |what: String, herald: f64, am: f64| {
        println!(
            "{what:<52} {herald:>12.1} {am:>12.1}   ratio AM/Herald {:>6.2}",
            am / herald
        );
        rows.push((what, herald, am));
    };
    println!("{:<52} {:>12} {:>12}", "measure", "herald", "alertmanager");
    if only.split(',').any(|s| s.trim() == "flood") {
        // Only when asked: it holds 300k alerts in both servers at once.
        let (_hook, hook_port) = start_hook().await;
        let herald = start("herald", hook_port, "").await;
        let am = start("alertmanager", hook_port, "").await;
        const FLOOD: usize = 300_000;
        let hi = ingest(&herald, FLOOD, "flood").await;
        let ai = ingest(&am, FLOOD, "flood").await;
        println!(
            "{:<52} {:>12.0} {:>12.0}   ratio Herald/AM {:>6.2}",
            format!("flood ingest alerts/s @{FLOOD}"),
            hi.alerts_per_sec,
            ai.alerts_per_sec,
            hi.alerts_per_sec / ai.alerts_per_sec
        );
        line(
            format!("flood peak RSS MiB (VmHWM) @{FLOOD}"),
            status_kib(herald.child.id(), "VmHWM:") as f64 / 1024.0,
            status_kib(am.child.id(), "VmHWM:") as f64 / 1024.0,
        );
    }
    if only.split(',').any(|s| s.trim() == "history") {
        history().await;
    }
    for &size in sizes.iter().filter(|_| wanted("alerts")) {
        // The tail section's webhook: it wakes the bench as a notification
        // arrives, where polling rounded each sample up to the timer's
        // millisecond.
        let (mut hook, hook_port) = start_tail_hook().await;
        let herald = start("herald", hook_port, "").await;
        let am = start("alertmanager", hook_port, "").await;
        // Warm-up so connection setup is not measured.
        ingest(&herald, 1000, "warmup").await;
        ingest(&am, 1000, "warmup").await;
        let hi = ingest(&herald, size, "main").await;
        let ai = ingest(&am, size, "main").await;
        // Ingest rate: higher is better, so report Herald/AM as the ratio.
        println!(
            "{:<52} {:>12.0} {:>12.0}   ratio Herald/AM {:>6.2}",
            format!("ingest alerts/s @{size}"),
            hi.alerts_per_sec,
            ai.alerts_per_sec,
            hi.alerts_per_sec / ai.alerts_per_sec
        );
        line(format!("POST p99 latency ms @{size}"), hi.p99_ms, ai.p99_ms);
        line(
            format!("RSS MiB holding {size} alerts"),
            status_kib(herald.child.id(), "VmRSS:") as f64 / 1024.0,
            status_kib(am.child.id(), "VmRSS:") as f64 / 1024.0,
        );
        let (hg, hs) = get_latency(&herald, "/api/v2/alerts", 3).await;
        let (ag, asz) = get_latency(&am, "/api/v2/alerts", 3).await;
        line(
            format!(
                "GET /api/v2/alerts ms @{size} ({} vs {} KiB)",
                hs / 1024,
                asz / 1024
            ),
            hg,
            ag,
        );
        let (hg, _) = get_latency(&herald, "/api/v2/alerts/groups", 3).await;
        let (ag, _) = get_latency(&am, "/api/v2/alerts/groups", 3).await;
        line(format!("GET /api/v2/alerts/groups ms @{size}"), hg, ag);
        line(
            format!("peak RSS MiB (VmHWM) after GETs @{size}"),
            status_kib(herald.child.id(), "VmHWM:") as f64 / 1024.0,
            status_kib(am.child.id(), "VmHWM:") as f64 / 1024.0,
        );
        // What a person waits for when opening the alerts view: Herald's
        // server-rendered page, and the groups Alertmanager's browser UI
        // fetches before it can render anything.
        let (hu, husz) = get_latency(&herald, "/alerts?silenced=true&inhibited=true", 3).await;
        let (au, _) = get_latency(&am, "/api/v2/alerts/groups", 3).await;
        line(
            format!(
                "alerts view ms @{size} (Herald page {} KiB vs AM UI data)",
                husz / 1024
            ),
            hu,
            au,
        );
        // 300 new groups each: the p99 is the third worst sample, not the
        // worst of 30.
        let (hm, hp) = tail_latency(&herald, &mut hook, TAIL_GROUPS, "alerts").await;
        let (am_m, am_p) = tail_latency(&am, &mut hook, TAIL_GROUPS, "alerts").await;
        line(format!("notification latency median ms @{size}"), hm, am_m);
        line(format!("notification latency p99 ms @{size}"), hp, am_p);
    }

    if wanted("slack") {
        slack(&mut line).await;
    }
    if wanted("silences") {
        silences().await;
    }
    if wanted("suppressed") {
        suppressed(&mut line).await;
    }
    if wanted("integrations") {
        integrations(&mut line).await;
    }
    if wanted("regex_silences") {
        regex_silences(&mut line).await;
    }
    if wanted("silences20k") {
        silences20k().await;
    }
    if wanted("tail") {
        tail(&mut line).await;
    }
    if wanted("routes") {
        routes(&mut line).await;
    }
}

/// Each integration's receiver (`{P}` is the stand-in service's port) and
/// the path of the request that delivers a notification (Jira searches
/// before it creates, WeChat fetches a token first). Left out: e-mail (no
/// SMTP server here; `tests/email.rs` covers it) and SNS (needs the AWS
/// emulator; `tests/sns.rs`), and Pushover, whose API URL is fixed.
const INTEGRATIONS: &[(&str, &str, &str)] = &[
    ("webhook", "webhook_configs: [{url: 'http://127.0.0.1:{P}/webhook'}]", "/webhook"),
    ("slack", "slack_configs: [{api_url: 'http://127.0.0.1:{P}/slack'}]", "/slack"),
    ("pagerduty", "pagerduty_configs: [{routing_key: r, url: 'http://127.0.0.1:{P}/v2/enqueue'}]", "/v2/enqueue"),
    ("opsgenie", "opsgenie_configs: [{api_key: k, api_url: 'http://127.0.0.1:{P}/'}]", "/v2/alerts"),
    ("victorops", "victorops_configs: [{api_key: k, routing_key: r, api_url: 'http://127.0.0.1:{P}/victorops/'}]", "/victorops/"),
    ("wechat", "wechat_configs: [{api_secret: s, corp_id: c, to_user: u, agent_id: '1', api_url: 'http://127.0.0.1:{P}/wechat/'}]", "message/send"),
    ("telegram", "telegram_configs: [{bot_token: t, chat_id: 1, api_url: 'http://127.0.0.1:{P}/telegram'}]", "sendMessage"),
    ("discord", "discord_configs: [{webhook_url: 'http://127.0.0.1:{P}/discord'}]", "/discord"),
    ("webex", "webex_configs: [{room_id: r, api_url: 'http://127.0.0.1:{P}/webex', http_config: {authorization: {credentials: c}}}]", "/webex"),
    ("msteams", "msteams_configs: [{webhook_url: 'http://127.0.0.1:{P}/msteams'}]", "/msteams"),
    ("msteamsv2", "msteamsv2_configs: [{webhook_url: 'http://127.0.0.1:{P}/msteamsv2'}]", "/msteamsv2"),
    ("jira", "jira_configs: [{api_url: 'http://127.0.0.1:{P}/jira', project: OPS, issue_type: Bug}]", "/issue"),
    ("rocketchat", "rocketchat_configs: [{token_id: i, token: t, channel: '#a', api_url: 'http://127.0.0.1:{P}/rocketchat/'}]", "chat.postMessage"),
    ("incidentio", "incidentio_configs: [{url: 'http://127.0.0.1:{P}/incidentio', alert_source_token: t}]", "/incidentio"),
    ("mattermost", "mattermost_configs: [{webhook_url: 'http://127.0.0.1:{P}/mattermost'}]", "/mattermost"),
];

/// One receiver per integration, routed by the alert's `kind` label.
fn integrations_config(port: u16) -> String {
    let mut routes = String::new();
    let mut receivers = String::from("  - name: none\n");
    for (kind, receiver, _) in INTEGRATIONS {
        routes.push_str(&format!(
            "    - matchers: ['kind=\"{kind}\"']\n      receiver: {kind}\n"
        ));
        receivers.push_str(&format!(
            "  - name: {kind}\n    {}\n",
            receiver.replace("{P}", &port.to_string())
        ));
    }
    format!(
        "route:\n  receiver: none\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1h\n  routes:\n{routes}receivers:\n{receivers}"
    )
}

/// A stand-in for every service at once: Slack's webhook wants `ok`; the
/// others are content with one JSON body holding what each looks for
/// (Telegram's `ok` and message, Rocket.Chat's `success`, WeChat's token
/// and `errcode`, Jira's empty search and new issue key, Pushover's
/// `status`).
async fn start_services() -> (Arc<std::sync::Mutex<Vec<String>>>, u16) {
    let seen: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let s = seen.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let s = s.clone();
        async move {
            let path = uri.path().to_string();
            s.lock().unwrap().push(path.clone());
            if path == "/slack" {
                return ([("content-type", "text/plain")], "ok".to_string());
            }
            let body = json!({
                "ok": true, "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}},
                "success": true, "errcode": 0, "errmsg": "ok", "access_token": "token", "expires_in": 7200,
                "issues": [], "total": 0, "key": "OPS-1", "id": "1", "status": 1, "request": "r",
            });
            ([("content-type", "application/json")], body.to_string())
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (seen, port)
}

/// Time from posting a new group's alert to the request that delivers
/// it, per integration: `n` groups each, one at a time.
async fn integration_latency(
    p: &Proc,
    seen: &std::sync::Mutex<Vec<String>>,
    kind: &str,
    marker: &str,
    run: &str,
    n: usize,
) -> (f64, f64) {
    let client = reqwest::Client::new();
    let delivered = |from: usize| {
        seen.lock().unwrap()[from..]
            .iter()
            .any(|path| path.contains(marker))
    };
    let mut lat = Vec::new();
    for i in 0..n {
        let from = seen.lock().unwrap().len();
        let body = json!([{"labels": {"alertname": format!("{kind}-{run}{i}-{}", p.name), "kind": kind}, "startsAt": jiff::Timestamp::now().to_string()}]);
        let t = Instant::now();
        let r = client
            .post(format!("{}/api/v2/alerts", p.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while !delivered(from) {
            assert!(
                Instant::now() < deadline,
                "no {kind} notification from {}",
                p.name
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    (
        lat[lat.len() / 2],
        lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
    )
}

/// Notification latency per integration, Herald and Alertmanager on the
/// same config and the same stand-in service.
async fn integrations(line: &mut impl FnMut(String, f64, f64)) {
    let (seen, port) = start_services().await;
    let cfg = integrations_config(port);
    let herald = start_config("herald", &cfg).await;
    let am = start_config("alertmanager", &cfg).await;
    for (kind, _, marker) in INTEGRATIONS {
        // One warm-up notification each: connection and token set-up.
        integration_latency(&herald, &seen, kind, marker, "warmup", 1).await;
        integration_latency(&am, &seen, kind, marker, "warmup", 1).await;
        let (hm, hp) = integration_latency(&herald, &seen, kind, marker, "main", 20).await;
        let (am_m, am_p) = integration_latency(&am, &seen, kind, marker, "main", 20).await;
        line(format!("{kind} notification latency median ms"), hm, am_m);
        line(format!("{kind} notification latency p99 ms"), hp, am_p);
    }
}

/// Slack notifications of large groups: template rendering.
async fn slack(line: &mut impl FnMut(String, f64, f64)) {
    let (hook, hook_port) = start_hook().await;
    let herald = start_config("herald", &slack_config(hook_port)).await;
    let am = start_config("alertmanager", &slack_config(hook_port)).await;
    for per_group in [100, 1000] {
        let h = slack_latency(&herald, &hook, 10, per_group).await;
        let a = slack_latency(&am, &hook, 10, per_group).await;
        line(
            format!("Slack message of a {per_group}-alert group, median ms"),
            h,
            a,
        );
    }
}

/// Silence creation rate, each on a fresh instance: 8 requests in flight
/// (group commit can share a flush among them) and one at a time (every
/// POST waits for its own flush to the disk).
async fn silences() {
    const SILENCES: usize = 5_000;
    let (_hook, hook_port) = start_hook().await;
    for in_flight in [IN_FLIGHT, 1] {
        let mut rate = Vec::new();
        for name in ["herald", "alertmanager"] {
            let p = start(name, hook_port, "").await;
            // Warm-up so connection setup is not measured.
            create_silences(&p, 100, in_flight).await;
            rate.push(create_silences(&p, SILENCES, in_flight).await);
        }
        println!(
            "{:<52} {:>12.0} {:>12.0}   ratio Herald/AM {:>6.2}",
            format!("silences created/s ({SILENCES}, {in_flight} in flight)"),
            rate[0],
            rate[1],
            rate[0] / rate[1]
        );
    }
}

/// With 10k silences and 50 inhibit rules.
async fn suppressed(line: &mut impl FnMut(String, f64, f64)) {
    let size: usize = std::env::var("HERALD_BENCH_SUPPRESSED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let (_hook, hook_port) = start_hook().await;
    let rules = inhibit_rules();
    let herald = start("herald", hook_port, &rules).await;
    let am = start("alertmanager", hook_port, &rules).await;
    create_silences(&herald, 10_000, IN_FLIGHT).await;
    create_silences(&am, 10_000, IN_FLIGHT).await;
    let hi = ingest(&herald, size, "main").await;
    let ai = ingest(&am, size, "main").await;
    println!(
        "{:<52} {:>12.0} {:>12.0}   ratio Herald/AM {:>6.2}",
        format!("ingest alerts/s @{size}, 10k silences, 50 rules"),
        hi.alerts_per_sec,
        ai.alerts_per_sec,
        hi.alerts_per_sec / ai.alerts_per_sec
    );
    let (hg, _) = get_latency(&herald, "/api/v2/alerts", 3).await;
    let (ag, _) = get_latency(&am, "/api/v2/alerts", 3).await;
    line(
        format!("GET /api/v2/alerts ms @{size}, 10k silences, 50 rules"),
        hg,
        ag,
    );
    let (hg, _) = get_latency(&herald, "/api/v2/alerts/groups", 3).await;
    let (ag, _) = get_latency(&am, "/api/v2/alerts/groups", 3).await;
    line(
        format!("GET /api/v2/alerts/groups ms @{size}, 10k silences, 50 rules"),
        hg,
        ag,
    );
}

/// Creates `n` silences shaped as maintenance windows are: silence `i`
/// mutes `team-{i % 20}` on host `i`, by regex (`instance=~"host-i\..*"`)
/// for the indices `regex` picks and by the full instance otherwise; 8
/// requests in flight. The alerts of `batch` with the same index match.
async fn create_host_silences(p: &Proc, n: usize, regex: fn(usize) -> bool) {
    post_silences(p, n, IN_FLIGHT, move |i, start, end| {
        let instance = if regex(i) {
            json!({"name": "instance", "value": format!("host-{i}\\..*"), "isRegex": true})
        } else {
            json!({"name": "instance", "value": format!("host-{i}.example.com:9100"), "isRegex": false})
        };
        json!({"matchers": [{"name": "team", "value": format!("team-{}", i % 20), "isRegex": false}, instance], "startsAt": start, "endsAt": end, "createdBy": "bench", "comment": "maintenance"})
    })
    .await;
}

/// 5,000 regex silences (`team="team-k"` shared by hundreds, each with its
/// own host regex) and 20,000 alerts: ingest, then the answers that ask
/// which silences mute each alert.
async fn regex_silences(line: &mut impl FnMut(String, f64, f64)) {
    const SILENCES: usize = 5_000;
    const ALERTS: usize = 20_000;
    let (_hook, hook_port) = start_hook().await;
    let herald = start("herald", hook_port, "").await;
    let am = start("alertmanager", hook_port, "").await;
    create_host_silences(&herald, SILENCES, |_| true).await;
    create_host_silences(&am, SILENCES, |_| true).await;
    let hi = ingest(&herald, ALERTS, "main").await;
    let ai = ingest(&am, ALERTS, "main").await;
    println!(
        "{:<52} {:>12.0} {:>12.0}   ratio Herald/AM {:>6.2}",
        format!("ingest alerts/s @{ALERTS}, {SILENCES} regex silences"),
        hi.alerts_per_sec,
        ai.alerts_per_sec,
        hi.alerts_per_sec / ai.alerts_per_sec
    );
    for (what, path) in [
        ("GET /api/v2/alerts", "/api/v2/alerts"),
        ("GET /api/v2/alerts/groups", "/api/v2/alerts/groups"),
        ("GET /metrics", "/metrics"),
    ] {
        let (h, _) = get_latency(&herald, path, 3).await;
        let (a, _) = get_latency(&am, path, 3).await;
        line(
            format!("{what} ms @{ALERTS}, {SILENCES} regex silences"),
            h,
            a,
        );
    }
}

/// One GET with a deadline: its time in ms and size, or None when the
/// server did not answer in time.
async fn get_within(p: &Proc, path: &str, limit: Duration) -> Option<(f64, usize)> {
    let client = reqwest::Client::builder().timeout(limit).build().unwrap();
    let t = Instant::now();
    let r = client.get(format!("{}{path}", p.base)).send().await.ok()?;
    let body = r.bytes().await.ok()?;
    Some((t.elapsed().as_secs_f64() * 1e3, body.len()))
}

/// 20,000 silences (half regex) and 100,000 alerts, each server on its
/// own so that its peak RSS is its own: GET alerts, groups, /metrics and
/// Herald's UI pages, each once (a slow answer is cut off after a minute),
/// and how far RSS rises during the GET of the alerts.
async fn silences20k() {
    const SILENCES: usize = 20_000;
    const ALERTS: usize = 100_000;
    const LIMIT: Duration = Duration::from_secs(60);
    let (_hook, hook_port) = start_hook().await;
    // The last two are Herald's own pages (Alertmanager's UI renders in
    // the browser from the API answers above).
    let paths = [
        ("GET /api/v2/alerts", "/api/v2/alerts"),
        ("GET /api/v2/alerts/groups", "/api/v2/alerts/groups"),
        ("GET /metrics", "/metrics"),
        ("UI alerts page", "/alerts?silenced=true&inhibited=true"),
        ("UI silences page", "/silences"),
    ];
    let mut results: Vec<Vec<String>> = Vec::new();
    // Both hold the same data at once, for the browser's side-by-side
    // below; each is measured while the other idles.
    let mut procs = Vec::new();
    for name in ["herald", "alertmanager"] {
        let p = start(name, hook_port, "").await;
        create_host_silences(&p, SILENCES, |i| i % 2 == 1).await;
        ingest(&p, ALERTS, "main").await;
        procs.push(p);
    }
    for p in &procs {
        let name = p.name;
        let pid = p.child.id();
        let resting = status_kib(pid, "VmRSS:");
        // Resets VmHWM to the current RSS (Linux), so the peak read after
        // the GET is the GET's.
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let mut col = Vec::new();
        for (i, (_, path)) in paths.iter().enumerate() {
            if i >= 3 && name != "herald" {
                col.push("-".into());
                continue;
            }
            let got = get_within(p, path, LIMIT).await;
            col.push(match got {
                Some((ms, size)) => format!("{ms:.1} ({} KiB)", size / 1024),
                None => format!(">{} (no answer)", LIMIT.as_millis()),
            });
            if i == 0 {
                let peak = status_kib(pid, "VmHWM:");
                col.push(format!(
                    "{:.1} (rest {:.1})",
                    peak.saturating_sub(resting) as f64 / 1024.0,
                    resting as f64 / 1024.0
                ));
            }
        }
        results.push(col);
    }
    let mut labels: Vec<String> = paths.iter().map(|(what, _)| format!("{what} ms")).collect();
    labels.insert(1, "RSS MiB rise during GET alerts".into());
    for (i, what) in labels.iter().enumerate() {
        println!(
            "{:<52} {:>24} {:>24}",
            format!("{what} @{ALERTS}, {SILENCES} silences"),
            results[0].get(i).map_or("-", String::as_str),
            results[1].get(i).map_or("-", String::as_str),
        );
    }
    browser_paint(&procs[0], &procs[1], ALERTS, SILENCES);
}

/// What a person waits for in a browser: the first paint of Herald's
/// server-rendered pages, and the data requests Alertmanager's UI makes
/// before it can paint (`tests/ui/paint.mjs` in Debian's Chromium).
fn browser_paint(herald: &Proc, am: &Proc, alerts: usize, silences: usize) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/ui/paint.mjs");
    let out = std::process::Command::new("node")
        .args([script, &herald.base, &am.base])
        .output()
        .expect("node: scripts/test.sh installs it and tests/ui's playwright-core");
    assert!(
        out.status.success(),
        "paint.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("paint.mjs prints JSON");
    // None: no answer within the minute paint.mjs waits.
    let ms = |side: &str, what: &str| v[side][what].as_f64();
    for (what, h, a) in [
        (
            "alerts view",
            ms("herald", "alerts"),
            ms("alertmanager", "alerts"),
        ),
        (
            "silences view",
            ms("herald", "silences"),
            ms("alertmanager", "silences"),
        ),
        (
            "silences view, filtered",
            ms("herald", "silences filtered"),
            ms("alertmanager", "silences"),
        ),
    ] {
        let show = |x: Option<f64>| x.map_or(">60000".to_string(), |x| format!("{x:.1}"));
        let ratio = match (h, a) {
            (Some(h), Some(a)) => format!("{:.2}", a / h),
            _ => "-".into(),
        };
        println!(
            "{:<52} {:>12} {:>12}   ratio AM/Herald {ratio:>6}",
            format!("browser: {what} ms @{alerts}, {silences} silences"),
            show(h),
            show(a),
        );
    }
}

/// Groups of the tail section: 300 notifications give a p99 that is the
/// third worst, not the worst.
const TAIL_GROUPS: usize = 300;

/// The tail section's route: its own alerts go to `/`, the background
/// load's and the stored alerts' groups to `/sink`, so that their
/// notifications do not count as the one measured.
fn tail_config(hook_port: u16) -> String {
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1h\n  repeat_interval: 24h\n  routes:\n    - matchers: ['run=~\"load|stored\"']\n      receiver: sink\nreceivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/'}}]\n  - name: sink\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/sink'}}]\n"
    )
}

/// A webhook that wakes the waiting bench at once (no polling, whose
/// timer rounds up to a millisecond): notifications to `/` counted.
async fn start_tail_hook() -> (tokio::sync::watch::Receiver<usize>, u16) {
    let (tx, rx) = tokio::sync::watch::channel(0usize);
    let tx = Arc::new(tx);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let tx = tx.clone();
        async move {
            if uri.path() == "/" {
                tx.send_modify(|n| *n += 1);
            }
            "ok"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (rx, port)
}

/// Median and p99 of the time from posting a new group's alert to its
/// webhook arriving, `n` groups one after another.
async fn tail_latency(
    p: &Proc,
    hook: &mut tokio::sync::watch::Receiver<usize>,
    n: usize,
    run: &str,
) -> (f64, f64) {
    let client = reqwest::Client::new();
    let mut lat = Vec::with_capacity(n);
    for i in 0..n {
        let before = *hook.borrow_and_update();
        let body = json!([{"labels": {"alertname": format!("Tail{i}-{run}-{}", p.name)}, "startsAt": jiff::Timestamp::now().to_string()}]);
        let t = Instant::now();
        let r = client
            .post(format!("{}/api/v2/alerts", p.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "POST failed: {}", r.status());
        tokio::time::timeout(Duration::from_secs(30), hook.wait_for(|c| *c > before))
            .await
            .unwrap_or_else(|_| panic!("no notification from {}", p.name))
            .unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    (
        lat[lat.len() / 2],
        lat[(lat.len() * 99 / 100).min(lat.len() - 1)],
    )
}

/// A background load of the same rate on either server: batches of 100
/// alerts out of a pool of 10,000 (Prometheus re-sending its alerts),
/// one batch every `100 / rate` seconds, one request at a time, until
/// `stop`. Returns the task; it ends soon after `stop` is set.
fn start_load(
    p: &Proc,
    alerts_per_sec: usize,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<usize> {
    const POOL: usize = 10_000;
    let bodies: Vec<Vec<u8>> = (0..POOL / BATCH)
        .map(|b| serde_json::to_vec(&batch(b * BATCH, BATCH, "load")).unwrap())
        .collect();
    let url = format!("{}/api/v2/alerts", p.base);
    let period = Duration::from_secs_f64(BATCH as f64 / alerts_per_sec.max(1) as f64);
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sent = 0;
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            let r = client
                .post(&url)
                .header("Content-Type", "application/json")
                .body(bodies[sent % bodies.len()].clone())
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success(), "load POST failed: {}", r.status());
            sent += 1;
        }
        sent * BATCH
    })
}

/// The notification latency tail, `group_wait: 0`: 300 new groups on an
/// idle server, 300 while a background load ingests alerts into it
/// (`HERALD_BENCH_TAIL_LOAD` alerts/s, 10,000 by default), and 300 with
/// 100,000 alerts stored. One server at a time, so neither slows the
/// other.
async fn tail(line: &mut impl FnMut(String, f64, f64)) {
    let load: usize = std::env::var("HERALD_BENCH_TAIL_LOAD")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    const STORED: usize = 100_000;
    let (mut hook, hook_port) = start_tail_hook().await;
    let cfg = tail_config(hook_port);
    // Per server: quiet, loaded, stored; each (median, p99).
    let mut results: Vec<[(f64, f64); 3]> = Vec::new();
    for name in ["herald", "alertmanager"] {
        let p = start_config(name, &cfg).await;
        tail_latency(&p, &mut hook, 10, "warmup").await;
        let quiet = tail_latency(&p, &mut hook, TAIL_GROUPS, "quiet").await;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let load_task = start_load(&p, load, stop.clone());
        // Let the load reach its steady state (first batches make groups).
        tokio::time::sleep(Duration::from_secs(1)).await;
        let loaded = tail_latency(&p, &mut hook, TAIL_GROUPS, "loaded").await;
        stop.store(true, Ordering::Relaxed);
        load_task.await.unwrap();
        ingest(&p, STORED, "stored").await;
        let stored = tail_latency(&p, &mut hook, TAIL_GROUPS, "stored").await;
        results.push([quiet, loaded, stored]);
    }
    let what = [
        "quiet".to_string(),
        format!("{load} alerts/s load"),
        format!("{STORED} alerts stored"),
    ];
    for (i, w) in what.iter().enumerate() {
        line(
            format!("tail: notification median ms, {w}"),
            results[0][i].0,
            results[1][i].0,
        );
        line(
            format!("tail: notification p99 ms, {w}"),
            results[0][i].1,
            results[1][i].1,
        );
    }
}

/// 1,000 routes under the root, two matchers each, one of them a regex
/// evaluated first (its label name sorts first, and both servers sort a
/// route's matchers): even routes match a pair of `service` values and one
/// `team`, odd ones an `instance` prefix and a `severity`; every tenth has
/// `continue: true`. The bench's alerts spread over them (and the root).
fn routes_config(hook_port: u16, group_interval: &str) -> String {
    let mut s = format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: {group_interval}\n  repeat_interval: 24h\n  routes:\n"
    );
    for i in 0..1000 {
        let (a, b) = if i % 2 == 0 {
            (
                format!("service=~\"svc-{}|svc-{}\"", i % 50, (i / 2 + 7) % 50),
                format!("team=\"team-{}\"", (i / 2) % 20),
            )
        } else {
            (
                format!("instance=~\"host-{i}[0-9]*[.]example[.]com:9100\""),
                format!("severity=\"{}\"", SEVERITIES[i % 3]),
            )
        };
        s.push_str(&format!(
            "    - matchers: ['{a}', '{b}']\n      receiver: hook\n"
        ));
        if i % 10 == 3 {
            s.push_str("      continue: true\n");
        }
    }
    s.push_str(&format!(
        "receivers:\n  - name: hook\n    webhook_configs: [{{url: 'http://127.0.0.1:{hook_port}/'}}]\n"
    ));
    s
}

/// The number of groups and the alerts in them, as `/api/v2/alerts/groups`
/// lists them: what a reload must leave as it was.
async fn group_counts(p: &Proc) -> (usize, usize) {
    let groups: Vec<Value> = reqwest::get(format!("{}/api/v2/alerts/groups", p.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let alerts = groups
        .iter()
        .map(|g| g["alerts"].as_array().map_or(0, Vec::len))
        .sum();
    (groups.len(), alerts)
}

/// A large routing tree: the ingest rate with 1,000 routes, then with the
/// 100k alerts stored the time `POST /-/reload` takes to answer after the
/// file changed (both servers rebuild the tree and route every stored alert
/// into new groups before they answer), 3 reloads, the fastest reported;
/// the groups are counted before and after.
async fn routes(line: &mut impl FnMut(String, f64, f64)) {
    const ALERTS: usize = 100_000;
    let (_hook, hook_port) = start_hook().await;
    let cfg = routes_config(hook_port, "1h");
    let herald = start_config("herald", &cfg).await;
    let am = start_config("alertmanager", &cfg).await;
    ingest(&herald, 1000, "warmup").await;
    ingest(&am, 1000, "warmup").await;
    let hi = ingest(&herald, ALERTS, "main").await;
    let ai = ingest(&am, ALERTS, "main").await;
    println!(
        "{:<52} {:>12.0} {:>12.0}   ratio Herald/AM {:>6.2}",
        format!("ingest alerts/s @{ALERTS}, 1000 routes"),
        hi.alerts_per_sec,
        ai.alerts_per_sec,
        hi.alerts_per_sec / ai.alerts_per_sec
    );
    let client = reqwest::Client::new();
    let mut best = Vec::new();
    for p in [&herald, &am] {
        let before = group_counts(p).await;
        let mut fastest = f64::MAX;
        for (k, interval) in ["2h", "3h", "1h"].iter().enumerate() {
            std::fs::write(
                p._dir.path().join("c.yml"),
                routes_config(hook_port, interval),
            )
            .unwrap();
            let t = Instant::now();
            let r = client
                .post(format!("{}/-/reload", p.base))
                .send()
                .await
                .unwrap();
            let took = t.elapsed().as_secs_f64() * 1e3;
            assert!(
                r.status().is_success(),
                "{} reload {k} failed: {}",
                p.name,
                r.status()
            );
            fastest = fastest.min(took);
        }
        let after = group_counts(p).await;
        println!(
            "{:<52} groups/alerts before {before:?} after {after:?}",
            format!("{} reload @{ALERTS}", p.name)
        );
        assert_eq!(before, after, "{}: a reload changed the groups", p.name);
        best.push(fastest);
    }
    line(
        format!("POST /-/reload ms @{ALERTS} alerts, 1000 routes"),
        best[0],
        best[1],
    );
}

/// Herald with `extra` flags on `config(hook_port)`.
async fn start_herald_with(hook_port: u16, extra: &[&str]) -> Proc {
    support::start_server_with(
        "herald",
        &config(hook_port, ""),
        None,
        Duration::from_secs(30),
        extra,
    )
    .await
    .0
}

/// Notifications per second: `groups` new groups (one alert each, its
/// own alertname) posted 100 to a request, 8 requests in flight, until the
/// webhook has had every group's notification.
async fn notification_rate(p: &Proc, hook: &Hook, groups: usize, run: &str) -> f64 {
    let client = reqwest::Client::new();
    let before = hook.count.load(Ordering::SeqCst);
    let bodies: Vec<Value> = (0..groups.div_ceil(BATCH))
        .map(|b| {
            let mut body = batch(b * BATCH, BATCH.min(groups - b * BATCH), run);
            for (i, a) in body.as_array_mut().unwrap().iter_mut().enumerate() {
                a["labels"]["alertname"] = json!(format!("{run}-{}", b * BATCH + i));
            }
            body
        })
        .collect();
    let bodies = Arc::new(bodies);
    let url = Arc::new(format!("{}/api/v2/alerts", p.base));
    let started = Instant::now();
    let jobs = bodies.len();
    support::in_flight(jobs, IN_FLIGHT, move |i| {
        let (client, bodies, url) = (client.clone(), bodies.clone(), url.clone());
        async move {
            let r = client
                .post(url.as_str())
                .json(&bodies[i])
                .send()
                .await
                .unwrap();
            assert!(r.status().is_success());
        }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    while hook.count.load(Ordering::SeqCst) < before + groups {
        assert!(
            Instant::now() < deadline,
            "notifications missing from {}",
            p.name
        );
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    groups as f64 / started.elapsed().as_secs_f64()
}

/// The history's cost: the same loads with it on and off, alternating.
async fn history() {
    const GROUPS: usize = 2000;
    const ALERTS: usize = 20_000;
    let rounds: usize = std::env::var("HERALD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(5);
    let (hook, hook_port) = start_hook().await;
    let mut notify = [Vec::new(), Vec::new()];
    let mut ingested = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (i, extra) in [&[][..], &["--notification-history.max-records=0"][..]]
            .into_iter()
            .enumerate()
        {
            let p = start_herald_with(hook_port, extra).await;
            notification_rate(&p, &hook, 200, &format!("warm{round}")).await;
            notify[i].push(notification_rate(&p, &hook, GROUPS, &format!("n{round}")).await);
            // Ingest: few groups (the batch's 100 alertnames), so mostly
            // the POST path, whose commits share the writer with history.
            ingested[i].push(
                ingest(&p, ALERTS, &format!("i{round}"))
                    .await
                    .alerts_per_sec,
            );
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("{:<52} {:>12} {:>12}", "history", "on", "off");
    for (what, vals) in [
        (format!("notifications/s, {GROUPS} new groups"), &mut notify),
        (format!("ingest alerts/s @{ALERTS}"), &mut ingested),
    ] {
        let all = format!("on {:?} off {:?}", vals[0], vals[1]);
        let (on, off) = (median(&mut vals[0]), median(&mut vals[1]));
        println!(
            "{what:<52} {on:>12.0} {off:>12.0}   on/off {:>6.3}   ({all})",
            on / off
        );
    }
}
