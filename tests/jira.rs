//! The Jira integration against a fake Jira that keeps one issue per
//! group: what Herald sends, compared with Alertmanager 0.33.1 on the same
//! config and alerts (create on firing, update on a change, resolve,
//! reopen; API v2 and Cloud's v3 with ADF descriptions), and how answers
//! are classified (5xx and 429 retried, 429 after its `Retry-After`, other
//! 4xx permanent, an unknown transition an error).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake::*;
use common::*;
use serde_json::json;
#[cfg(feature = "system-tests")]
use serde_json::Value;

const T: Duration = Duration::from_secs(30);

const TRANSITIONS: &str = r#"{"transitions":[{"id":"11","name":"To Do"},{"id":"31","name":"Done"},{"id":"41","name":"Reopen"}]}"#;

/// Plays Jira from what it was sent before: the group's issue exists once
/// it was created, is done after the last transition posted was `Done`
/// (id 31) and open again after `Reopen`.
fn jira() -> Responder {
    Arc::new(|ex: &Exchange, seen: &[Exchange]| {
        let created = seen
            .iter()
            .any(|e| e.method == "POST" && e.path.ends_with("/issue"));
        let done = seen
            .iter()
            .rev()
            .find(|e| e.method == "POST" && e.path.ends_with("/transitions"))
            .is_some_and(|e| e.body["transition"]["id"] == "31");
        match (ex.method.as_str(), ex.path.rsplit('/').next().unwrap_or("")) {
            ("POST", "search" | "jql") if created => {
                let category = if done { "done" } else { "indeterminate" };
                Reply::json(
                    200,
                    json!({"issues": [{"id": "10000", "key": "OPS-1",
                        "fields": {"status": {"name": "x", "statusCategory": {"key": category}}}}]}),
                )
            }
            ("POST", "search" | "jql") => Reply::json(200, json!({"issues": []})),
            ("POST", "issue") => Reply::json(
                201,
                json!({"id": "10000", "key": "OPS-1", "self": "http://jira/rest/api/2/issue/10000"}),
            ),
            ("GET", "transitions") => Reply::json(200, serde_json::from_str(TRANSITIONS).unwrap()),
            _ => Reply::status(204),
        }
    })
}

fn config(base: &str, jira_config: &str) -> String {
    format!(
        r#"
global:
  jira_api_url: '{base}rest/api/2'
route:
  receiver: jira
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: jira
    jira_configs:
{jira_config}
"#
    )
}

/// The v2 scenario's config: every key that changes the wire.
#[cfg(feature = "system-tests")]
fn full_v2(_base: &str) -> String {
    r#"      - project: '{{ .CommonLabels.team | toUpper }}'
        api_type: datacenter
        issue_type: Incident
        http_config:
          basic_auth: {username: herald, password: s3cret}
        summary:
          template: '{{ .CommonLabels.alertname }}: {{ len .Alerts.Firing }} firing'
          enable_update: false
        labels: ['team-{{ .CommonLabels.team }}', alertmanager]
        resolve_transition: Done
        reopen_transition: Reopen
        reopen_duration: 1h
        wont_fix_resolution: "Won't Do"
        fields:
          customfield_10000: '{{ .CommonLabels.severity }}'
          customfield_10001: {value: '{{ len .Alerts }}', '{{ .CommonLabels.team }}': [a, '{{ .Status }}']}
          customfield_10002: '{{ if eq .Status "firing" }}[1, 2]{{ end }}'
"#
    .to_string()
}

/// The requests both sent, compared one by one: method, path, query, the
/// headers Jira sees, and the body (times and the fake's address aside).
#[cfg(feature = "system-tests")]
fn compare(ours: &[Exchange], theirs: &[Exchange], bases: (&str, &str)) {
    let lines = |x: &[Exchange]| x.iter().map(Exchange::line).collect::<Vec<_>>();
    assert_eq!(lines(ours), lines(theirs));
    for (o, t) in ours.iter().zip(theirs) {
        for h in ["content-type", "accept-language", "authorization"] {
            assert_eq!(o.header(h), t.header(h), "{h} of {}", o.line());
        }
        let text = |x: &Exchange, base: &str| {
            String::from_utf8(x.raw.clone())
                .unwrap()
                .replace(base, "BASE/")
        };
        let (ob, tb) = (text(o, bases.0), text(t, bases.1));
        // Byte for byte where no time is in the body (Go's key order and
        // escapes, its trailing newline).
        if !ob.contains("Z\"") && !tb.contains("Z\"") {
            assert_eq!(ob, tb, "raw body of {}", o.line());
        }
        let parse = |s: &str| -> Value { serde_json::from_str(s).unwrap_or(Value::Null) };
        assert_eq!(
            normalize(&parse(&ob), &[]),
            normalize(&parse(&tb), &[]),
            "body of {}",
            o.line()
        );
    }
}

/// Runs one scenario through Herald and 0.33.1 in phases: each phase
/// posts its alerts and waits for the requests it should cause.
#[cfg(feature = "system-tests")]
async fn phases(
    cfg: impl Fn(&str) -> String,
    steps: &[(Value, usize)],
) -> (Vec<Exchange>, Vec<Exchange>) {
    let ours = FakeService::with(jira()).await;
    let theirs = FakeService::with(jira()).await;
    let h = start_herald(&cfg(&ours.url("")), &[]).await;
    let am = start_alertmanager(&cfg(&theirs.url(""))).await;
    for (alerts, n) in steps {
        // Stamped now: an alert older than group_wait is flushed at once,
        // before the rest of its request is in the group.
        let now = json!(jiff::Timestamp::now().to_string());
        let mut alerts = alerts.clone();
        for a in alerts.as_array_mut().unwrap() {
            let key = if a.get("endsAt").is_some() {
                "endsAt"
            } else {
                "startsAt"
            };
            a[key] = now.clone();
        }
        post_alerts(&h.base, &alerts).await;
        post_alerts(&am.base, &alerts).await;
        ours.wait(*n, T).await;
        theirs.wait(*n, T).await;
    }
    let (o, t) = (ours.requests(), theirs.requests());
    compare(&o, &t, (&ours.url(""), &theirs.url("")));
    drop((h, am));
    (o, t)
}

/// API v2: create on firing, update (without the summary, whose
/// `enable_update` is false) when an alert joins, resolve by the `Done`
/// transition, then reopen when the group fires again.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn v2_lifecycle_matches_alertmanager() {
    let one = firing("DiskFull", &["db1"]);
    let two = firing("DiskFull", &["db1", "db2"]);
    let again = firing("DiskFull", &["db3"]);
    let (ours, _) = phases(
        |base| config(base, &full_v2(base)),
        &[(one, 2), (two.clone(), 4), (resolved(&two), 8), (again, 12)],
    )
    .await;
    let line = |i: usize| ours[i].line();
    assert_eq!(line(0), "POST /rest/api/2/search");
    assert_eq!(line(1), "POST /rest/api/2/issue");
    assert_eq!(line(3), "PUT /rest/api/2/issue/OPS-1");
    assert_eq!(line(6), "GET /rest/api/2/issue/OPS-1/transitions");
    assert_eq!(ours[7].body, json!({"transition": {"id": "31"}}));
    assert_eq!(ours[11].body, json!({"transition": {"id": "41"}}));
    let jql = ours[0].body["jql"].as_str().unwrap();
    assert!(jql.starts_with(r#"(resolution is EMPTY or resolution != "Won't Do") and (resolutiondate is EMPTY OR resolutiondate >= -60m) and project="DB" and labels="ALERT{"#), "{jql}");
    let created = &ours[1].body["fields"];
    assert_eq!(created["summary"], "DiskFull: 1 firing");
    assert_eq!(created["priority"], json!({"name": "High"}));
    assert_eq!(created["customfield_10002"], json!([1, 2]));
    assert!(ours[3].body["fields"].get("summary").is_none());
    assert_eq!(
        ours[0].header("authorization"),
        Some("Basic aGVyYWxkOnMzY3JldA==")
    );
}

/// Jira Cloud: the v3 search endpoint and a description template that
/// renders an ADF document, sent as the document.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn cloud_v3_with_adf_matches_alertmanager() {
    let cfg = |base: &str| {
        config(
            base,
            &format!(
                r#"      - api_url: '{base}rest/api/3'
        api_type: cloud
        project: OPS
        issue_type: Bug
        priority: ''
        resolve_transition: Done
        description: |
          {{"type": "doc", "version": 1, "content": [{{"type": "paragraph", "content": [
            {{"type": "text", "text": {{{{ .CommonAnnotations.description | toJson }}}} }},
            {{"type": "text", "text": "{{{{ .Status }}}} <&>"}}]}}]}}
"#
            ),
        )
    };
    let alerts = firing("DiskFull", &["db1", "db2"]);
    let (ours, theirs) = phases(cfg, &[(alerts.clone(), 2), (resolved(&alerts), 6)]).await;
    assert_eq!(ours[0].line(), "POST /rest/api/3/search/jql");
    let d = &ours[1].body["fields"]["description"];
    assert_eq!(d["type"], "doc");
    assert_eq!(
        d["content"][0]["content"][0]["text"],
        "Disk <95%> full & \"rising\""
    );
    assert!(ours[1].body["fields"].get("priority").is_none());
    // Compacted and escaped as Go's encoder writes a raw message.
    let raw = |x: &Exchange| {
        let s = String::from_utf8(x.raw.clone()).unwrap();
        s[s.find("\"description\"").unwrap()..s.find(",\"issuetype\"").unwrap()].to_string()
    };
    assert_eq!(raw(&ours[1]), raw(&theirs[1]));
}

/// A Herald-only Jira whose answers the test scripts by request number;
/// the arrival time of each request is recorded.
async fn scripted(answers: Vec<Reply>) -> (FakeService, Arc<Mutex<Vec<Instant>>>) {
    let times = Arc::new(Mutex::new(Vec::new()));
    let t = times.clone();
    let base = jira();
    let svc = FakeService::with(Arc::new(move |ex: &Exchange, seen: &[Exchange]| {
        t.lock().unwrap().push(Instant::now());
        answers
            .get(seen.len())
            .cloned()
            .unwrap_or_else(|| base(ex, seen))
    }))
    .await;
    (svc, times)
}

fn simple(base: &str, extra: &str) -> String {
    config(
        base,
        &format!("      - project: OPS\n        issue_type: Bug\n{extra}"),
    )
    .replace("group_interval: 1s", "group_interval: 1h")
}

const FAILED: &str = "alertmanager_notifications_failed_total{integration=\"jira\",reason=";

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_and_rate_limits_are_retried() {
    let (svc, times) = scripted(vec![
        Reply::text(503, "down"),
        Reply::text(429, "slow down").with_header("retry-after", "2"),
    ])
    .await;
    let h = start_herald(&simple(&svc.url(""), ""), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let all = svc.wait(4, T).await;
    assert_eq!(
        all.iter().map(Exchange::line).collect::<Vec<_>>(),
        [
            "POST /rest/api/2/search",
            "POST /rest/api/2/search",
            "POST /rest/api/2/search",
            "POST /rest/api/2/issue"
        ]
    );
    let t = times.lock().unwrap().clone();
    // Backoff alone would retry after 0.25–0.75s.
    assert!(
        t[2] - t[1] >= Duration::from_millis(1950),
        "{:?}",
        t[2] - t[1]
    );
    // One notification, three attempts, two of them failed.
    let attempts = "alertmanager_notification_requests_total{integration=\"jira\"}";
    assert_eq!(wait_counter(&h.base, attempts, 3.0).await, 3.0);
    let failed = "alertmanager_notification_requests_failed_total{integration=\"jira\"}";
    assert_eq!(counter(&h.base, failed).await, 2.0);
    let total = "alertmanager_notifications_total{integration=\"jira\"}";
    assert_eq!(counter(&h.base, total).await, 1.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn client_errors_are_permanent() {
    let (svc, _) = scripted(vec![
        Reply::json(200, json!({"issues": []})),
        Reply::json(
            400,
            json!({"errorMessages": [], "errors": {"issuetype": "invalid"}}),
        ),
    ])
    .await;
    let h = start_herald(&simple(&svc.url(""), ""), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(&h.base, &format!("{FAILED}\"clientError\"}}"), 1.0).await;
    assert_eq!(svc.count(), 2, "a 400 is not retried");
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.contains(
            r#"failed to POST request to \"issue\": unexpected status code 400: {\"errorMessages\""#
        ) || log.contains(r#"failed to POST request to "issue": unexpected status code 400"#),
        "{log}"
    );
}

/// A resolved group whose issue is open, with a transition Jira does not
/// offer: the update is sent, the transition fails permanently.
#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_transition_fails() {
    let (svc, _) = scripted(vec![]).await;
    let h = start_herald(
        &simple(&svc.url(""), "        resolve_transition: Close\n")
            .replace("group_interval: 1h", "group_interval: 1s"),
        &[],
    )
    .await;
    let alerts = firing("A", &["i1"]);
    post_alerts(&h.base, &alerts).await;
    svc.wait(2, T).await;
    post_alerts(&h.base, &resolved(&alerts)).await;
    let all = svc.wait(5, T).await;
    assert_eq!(all[3].line(), "PUT /rest/api/2/issue/OPS-1");
    assert_eq!(all[4].line(), "GET /rest/api/2/issue/OPS-1/transitions");
    wait_counter(&h.base, &format!("{FAILED}\"other\"}}"), 1.0).await;
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.contains("can't find transition Close for issue OPS-1"),
        "{log}"
    );
}

/// A group resolved after its issue was closed in Jira (the search for
/// open issues finds none) sends nothing more, and succeeds.
#[tokio::test(flavor = "multi_thread")]
async fn a_resolved_group_without_open_issue_sends_nothing() {
    let (svc, _) = scripted(vec![
        Reply::json(200, json!({"issues": []})),
        Reply::json(201, json!({"key": "OPS-1"})),
        Reply::json(200, json!({"issues": []})),
    ])
    .await;
    let cfg = simple(&svc.url(""), "        resolve_transition: Done\n")
        .replace("group_interval: 1h", "group_interval: 1s");
    let h = start_herald(&cfg, &[]).await;
    let alerts = firing("A", &["i1"]);
    post_alerts(&h.base, &alerts).await;
    svc.wait(2, T).await;
    post_alerts(&h.base, &resolved(&alerts)).await;
    let total = "alertmanager_notifications_total{integration=\"jira\"}";
    wait_counter(&h.base, total, 2.0).await;
    let lines: Vec<String> = svc.requests().iter().map(Exchange::line).collect();
    assert_eq!(
        lines,
        [
            "POST /rest/api/2/search",
            "POST /rest/api/2/issue",
            "POST /rest/api/2/search"
        ]
    );
    assert_eq!(counter(&h.base, &format!("{FAILED}\"other\"}}")).await, 0.0);
}

/// On v3 the description must render as JSON (an ADF document): the
/// default Markdown one is refused, permanently, before anything is
/// created.
#[tokio::test(flavor = "multi_thread")]
async fn a_description_that_is_not_adf_fails_on_v3() {
    let (svc, _) = scripted(vec![]).await;
    let cfg = simple(&svc.url(""), "").replace("rest/api/2", "rest/api/3");
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(&h.base, &format!("{FAILED}\"other\"}}"), 1.0).await;
    let lines: Vec<String> = svc.requests().iter().map(Exchange::line).collect();
    // Not Cloud by host or api_type: the v2 search path under v3.
    assert_eq!(lines, ["POST /rest/api/3/search"]);
    let log = h.log.lock().unwrap().clone();
    assert!(
        log.contains("description template: invalid JSON for API v3"),
        "{log}"
    );
}

/// `/api/v2/status` hides the basic-auth password of a Jira config.
#[tokio::test(flavor = "multi_thread")]
async fn status_hides_the_password() {
    let cfg = simple(
        "http://jira.test/",
        "        http_config:\n          basic_auth: {username: u, password: s3cret}\n",
    );
    let h = start_herald(&cfg, &[]).await;
    let status = get_json(&format!("{}/api/v2/status", h.base)).await;
    let original = status["config"]["original"].as_str().unwrap();
    assert!(original.contains("password: <secret>"), "{original}");
    assert!(!original.contains("s3cret"));
    assert!(original.contains("jira_configs"));
}

/// `GET /api/v2/status` shows a Jira config as 0.33.1 does: defaults
/// filled in, `summary`/`description` as `{template, enable_update}`.
#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn status_shows_the_config_as_alertmanager_does() {
    let cfg = simple(
        "http://jira.test/",
        "        summary: {enable_update: false}\n        labels: [a]\n        reopen_duration: 90m\n        reopen_transition: R\n        fields:\n          customfield_1: {b: '{{ .Status }}', a: [1, x]}\n",
    );
    let herald = start_herald(&cfg, &[]).await;
    let am = start_alertmanager(&cfg).await;
    let section = |v: Value| {
        let s = v["config"]["original"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let from = s.find("  jira_configs:").unwrap_or(0);
        let to = s[from..].find("\ntemplates:").map_or(s.len(), |i| from + i);
        s[from..to].to_string()
    };
    let ours = section(get_json(&format!("{}/api/v2/status", herald.base)).await);
    let theirs = section(get_json(&format!("{}/api/v2/status", am.base)).await);
    // The same keys in the same order and the same values; the quoting
    // style of Herald's YAML writer is its own.
    let keys = |s: &str| {
        s.lines()
            .map(|l| l.split(':').next().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&ours), keys(&theirs));
    let parse = |s: &str| serde_saphyr::from_str::<Value>(s).unwrap();
    assert_eq!(parse(&ours), parse(&theirs));
    assert!(ours.contains("enable_update: false"), "{ours}");
}
