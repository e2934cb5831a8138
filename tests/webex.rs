//! The Webex integration against a fake Messages API: what Herald posts
//! compared with Alertmanager 0.33.1 (firing and resolved, a templated
//! room, the bot token of `http_config.authorization`, the byte limit),
//! then the retry rules (5xx retried, 4xx final, 429 after `Retry-After`).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fake::*;
use common::*;
use serde_json::json;

const T: Duration = Duration::from_secs(30);

/// `firing()`'s alerts without `startsAt`, so that each server stamps its
/// own arrival time: both servers start after the alerts are made, and an
/// alert older than `group_wait` makes Alertmanager flush its group before
/// the rest of the request is in it.
#[cfg(feature = "system-tests")]
fn unstamped(mut alerts: serde_json::Value) -> serde_json::Value {
    for a in alerts.as_array_mut().into_iter().flatten() {
        a.as_object_mut().map(|o| o.remove("startsAt"));
    }
    alerts
}

fn route() -> &'static str {
    r#"
route:
  receiver: wx
  group_by: [alertname, team]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
"#
}

fn created(ex: &Exchange, seen: &[Exchange]) -> Reply {
    Reply::json(
        200,
        json!({"id": format!("msg{}", seen.len()), "roomId": ex.body["roomId"],
               "roomType": "group", "markdown": ex.body["markdown"],
               "created": "2026-12-01T18:00:00.000Z"}),
    )
}

#[cfg(feature = "system-tests")]
#[tokio::test(flavor = "multi_thread")]
async fn firing_then_resolved_match_alertmanager() {
    // 2 × 4000 bytes: over Webex's 7439. ASCII: with fewer characters
    // than bytes, Alertmanager 0.33.1 panics (see multibyte_messages_are_cut).
    let long = format!("{{{{ range .Alerts }}}}{}{{{{ end }}}}", "x".repeat(4000));
    let cfg = |base: &str| {
        format!(
            r#"
global:
  webex_api_url: '{base}v1/messages'
{route}
receivers:
  - name: wx
    webex_configs:
      - api_url: '{base}custom/messages'
        room_id: 'room-{{{{ .CommonLabels.team }}}}'
        http_config:
          authorization:
            credentials: bot-token-1
      - room_id: 'long'
        message: '{long}'
        send_resolved: false
        http_config:
          authorization:
            type: Bearer
            credentials: bot-token-2
"#,
            route = route(),
        )
    };
    let alerts = unstamped(firing("DiskFull", &["db1", "db2"]));
    let (mut ours, mut theirs) = differential(cfg, Arc::new(created), &alerts, 2, 3).await;
    assert_eq!((ours.len(), theirs.len()), (3, 3));
    ours.sort_by_key(|e| e.path.clone());
    theirs.sort_by_key(|e| e.path.clone());
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!(o.line(), t.line());
        assert_eq!(o.header("content-type"), t.header("content-type"));
        assert_eq!(o.header("authorization"), t.header("authorization"));
        assert_eq!(
            normalize(&o.body, &[]),
            normalize(&t.body, &[]),
            "{}",
            o.line()
        );
    }
    assert_eq!(ours[0].body["roomId"], "room-db");
    assert_eq!(ours[0].header("authorization"), Some("Bearer bot-token-1"));
    assert!(
        ours[1].body["markdown"]
            .as_str()
            .unwrap()
            .contains("Resolved"),
        "{:?}",
        ours[1].body
    );
    let long = ours[2].body["markdown"].as_str().unwrap();
    assert!(long.len() <= 7439 && long.ends_with('…'), "{}", long.len());
}

fn config(base: &str) -> String {
    format!(
        r#"{route}
receivers:
  - name: wx
    webex_configs:
      - api_url: '{base}v1/messages'
        room_id: r1
        http_config:
          authorization:
            credentials: bot-token
"#,
        route = route()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_retried_refusals_final() {
    let svc = FakeService::with(Arc::new(|ex: &Exchange, seen: &[Exchange]| {
        if seen.len() < 2 {
            Reply::json(503, json!({"message": "Service Unavailable"}))
        } else {
            created(ex, seen)
        }
    }))
    .await;
    let h = start_herald(&config(&svc.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    svc.wait(3, T).await;
    drop(h);

    let svc = FakeService::start(Reply::json(
        404,
        json!({"message": "The requested resource could not be found.", "trackingId": "ROUTER_1"}),
    ))
    .await;
    let h = start_herald(&config(&svc.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    wait_counter(
        &h.base,
        r#"alertmanager_notifications_failed_total{integration="webex",reason="clientError"}"#,
        1.0,
    )
    .await;
    assert_eq!(svc.count(), 1, "a 404 must not be retried");
    let log = h.log.lock().unwrap().clone();
    assert!(log.contains("could not be found"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limits_honour_retry_after() {
    let svc = FakeService::with(Arc::new(move |ex: &Exchange, seen: &[Exchange]| {
        if seen.is_empty() {
            Reply::json(429, json!({"message": "Too Many Requests"}))
                .with_header("retry-after", "2")
        } else {
            created(ex, seen)
        }
    }))
    .await;
    let h = start_herald(&config(&svc.url("")), &[]).await;
    post_alerts(&h.base, &firing("A", &["i1"])).await;
    let at: Vec<_> = svc.wait(2, T).await.iter().map(|e| e.at).collect();
    let gap = at[1] - at[0];
    assert!(gap >= Duration::from_millis(1950), "retried after {gap:?}");
    drop(h);
}

/// A message of 2 × 4000 bytes in 2668 characters: Alertmanager 0.33.1's
/// `TruncateInBytes` slices the characters at byte count and crashes
/// (`slice bounds out of range`); Herald cuts on a character boundary.
#[tokio::test(flavor = "multi_thread")]
async fn multibyte_messages_are_cut() {
    let svc = FakeService::with(Arc::new(created)).await;
    let long = format!("{{{{ range .Alerts }}}}{}x{{{{ end }}}}", "€".repeat(1333));
    let cfg = format!(
        r#"{route}
receivers:
  - name: wx
    webex_configs:
      - api_url: '{base}v1/messages'
        room_id: r1
        message: '{long}'
        http_config:
          authorization:
            credentials: bot-token
"#,
        route = route(),
        base = svc.url(""),
    );
    let h = start_herald(&cfg, &[]).await;
    post_alerts(&h.base, &firing("A", &["i1", "i2"])).await;
    let got = svc.wait(1, T).await;
    let md = got[0].body["markdown"].as_str().unwrap();
    assert!(md.len() <= 7439 && md.len() > 7430, "{}", md.len());
    assert!(md.ends_with('…'));
    assert!(md
        .trim_end_matches('…')
        .chars()
        .all(|c| c == '€' || c == 'x'));
    drop(h);
}
